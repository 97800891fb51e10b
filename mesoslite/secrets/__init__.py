"""Secrets and config maps: names, references, encryption at rest (see docs/secrets.md).

* ``crypto``: the master's key (``--secrets-key-file`` / ``MESOSLITE_SECRETS_KEY``) and
  AES-256-GCM sealing of secret values;
* ``model``: the stored object (secret or config map), name and key rules, sizes;
* ``refs``: how a TaskInfo references them (Mesos' ``Secret.Reference`` in environment
  variables and ``SECRET`` volumes), shared by the master, the agents and frameworks.
"""
