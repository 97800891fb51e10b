"""Kubernetes ``Job`` and ``CronJob`` -> batch framework jobs (its native document,
docs/batch.md).

A Job is a one-step job: the pod template's container (image, command, env with
stored references, resources, volumes) runs ``completions`` times, at most
``parallelism`` at once; ``backoffLimit`` is the retries (per task here, per job in
Kubernetes: the same for one completion; Kubernetes' default of 6 applies),
``activeDeadlineSeconds`` the timeout.  A CronJob adds the schedule (``schedule``,
``timeZone``, ``concurrencyPolicy``, ``startingDeadlineSeconds``, ``suspend``).
A Job is started when it is created (``BatchJob.run``); a CronJob waits for its
schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frameworks.services.kube_fields import ManifestError, Reader
from frameworks.services.kube_podspec import Container, Context, PodSpec, StoredRef, read_pod

POLICIES = {"Allow": "ALLOW", "Forbid": "FORBID", "Replace": "REPLACE"}
DEFAULT_BACKOFF_LIMIT = 6  # Kubernetes' default


@dataclass
class BatchJob:
    job: dict[str, Any]  # the batch framework's native job document
    run: bool  # start a run when the job is created (a Job, unless suspended)


def batch_job(r: Reader, ctx: Context) -> BatchJob:
    cron = ctx.kind == "CronJob"
    spec = "spec.jobTemplate.spec" if cron else "spec"
    pod = read_pod(r, f"{spec}.template.spec", ctx)
    r.take(f"{spec}.selector")
    r.get(f"{spec}.manualSelector")
    labels = {str(k): str(v) for k, v in (r.take("metadata.labels") or {}).items()}
    labels.update(pod.labels)
    job: dict[str, Any] = {"id": ctx.names.flat(ctx.name), "labels": labels}
    _task(pod, job, ctx)
    completions = r.get(f"{spec}.completions")
    parallelism = r.get(f"{spec}.parallelism")
    for name, value in (("completions", completions), ("parallelism", parallelism)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ManifestError(f"{ctx.where}: {spec}.{name} must be a whole number >= 0")
    if parallelism == 0:
        ctx.warn(f"{spec}.parallelism 0 (paused) is not honoured; 1 runs")
    job["completions"] = completions or 1
    job["parallelism"] = max(1, min(parallelism or 1, job["completions"]))
    if completions is None and (parallelism or 1) > 1:
        ctx.warn(f"{spec}.parallelism without completions (a work queue): one task runs")
    job["retries"] = int(r.get(f"{spec}.backoffLimit", DEFAULT_BACKOFF_LIMIT))
    deadline = r.get(f"{spec}.activeDeadlineSeconds")
    if deadline is not None:
        job["timeout"] = deadline
    suspended = bool(r.get("spec.suspend"))
    if cron:
        job["schedule"] = _schedule(r, suspended, ctx)
    return BatchJob(job, run=not cron and not suspended)


def _schedule(r: Reader, suspended: bool, ctx: Context) -> dict[str, Any]:
    cron = r.get("spec.schedule")
    if not cron:
        raise ManifestError(f"{ctx.where}: spec.schedule is required")
    policy = str(r.get("spec.concurrencyPolicy", "Allow"))
    if policy not in POLICIES:
        raise ManifestError(f"{ctx.where}: spec.concurrencyPolicy must be Allow, Forbid or "
                            "Replace")
    schedule: dict[str, Any] = {"cron": str(cron), "concurrency_policy": POLICIES[policy],
                                "enabled": not suspended}
    if r.get("spec.timeZone") is not None:
        schedule["timezone"] = str(r.get("spec.timeZone"))
    if r.get("spec.startingDeadlineSeconds") is not None:
        schedule["starting_deadline_seconds"] = r.get("spec.startingDeadlineSeconds")
    return schedule


def _task(pod: PodSpec, job: dict[str, Any], ctx: Context) -> None:
    c = pod.containers[0]
    if len(pod.containers) > 1:
        ctx.warn("a job's task runs one container; not run: "
                 + ", ".join(x.name for x in pod.containers[1:]))
    for probe in (c.liveness, c.readiness, c.startup):
        if probe is not None:
            ctx.warn(f"{probe.path} is not honoured for jobs")
    if c.ports:
        ctx.warn(f"{c.path}.ports are not honoured for jobs")
    job["image"] = c.image
    line = c.shell_line(ctx)
    if line:
        job["command"] = line
    elif c.args:
        job["args"] = c.args
    env: dict[str, Any] = {}
    for name, value in c.env.items():
        if isinstance(value, str):
            env[name] = value
        elif isinstance(value, StoredRef):
            env[name] = {("config" if value.is_config else "secret"): value.name,
                         **({"key": value.key} if value.key else {})}
    if env:
        job["env"] = env
    if c.cpus is not None:
        job["cpus"] = c.cpus
    if c.mem is not None:
        job["mem"] = c.mem
    if c.gpus is not None:
        job["gpus"] = c.gpus
    _mounts(pod, c, job)
    if pod.constraints:
        job["constraints"] = pod.constraints


def _mounts(pod: PodSpec, c: Container, job: dict[str, Any]) -> None:
    for mount in c.mounts:
        volume = pod.volumes[mount.volume]
        mode = "RO" if mount.read_only else "RW"
        if volume.kind in ("secret", "configMap"):
            kind = "secret" if volume.kind == "secret" else "config"
            job.setdefault("secret_files", []).append({"path": mount.path,
                                                       kind: volume.source})
            continue
        # emptyDir: a directory of the task's sandbox (a relative host path).
        host = volume.source if volume.kind == "hostPath" else f"emptydir-{volume.name}"
        job.setdefault("volumes", []).append({"container_path": mount.path,
                                              "host_path": host, "mode": mode})
