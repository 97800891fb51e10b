"""The batch/CI framework: jobs, retries, deadlines, cron, DAG pipelines, gangs.

Pure cores (``model``, ``dag``, ``cron``, ``fairshare``, ``reconcile``) decide; the
edges (``store``, ``scheduler``, ``api``, ``server``) translate.  See docs/batch.md.
"""
