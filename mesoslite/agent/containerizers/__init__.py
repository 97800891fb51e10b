"""Containerizers: how an agent runs tasks (see ``base.py`` for the contract).

``make_containerizers`` builds the ones named; each is namespaced by the agent's
*runtime id*, a uuid kept in the work dir, so two agents on one host (or one engine)
never touch each other's tasks, whatever ids the master gives them.
``wait_for_docker`` lets an agent started while the engine restarts (an upgrade, a
boot where both start together) wait for it rather than exit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mesoslite.agent.checkpoint import atomic_write
from mesoslite.agent.containerizers.base import Containerizer

if TYPE_CHECKING:  # container_policy imports containerizers.base
    from mesoslite.agent.container_policy import ContainerPolicy

KNOWN = ("docker", "process")
NO_ENGINE = "the docker containerizer needs a Docker engine; none answers through " \
            "DOCKER_HOST or /var/run/docker.sock"

log = logging.getLogger(__name__)


def runtime_id(work_dir: Path) -> str:
    path = work_dir / "runtime_id"
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = uuid.uuid4().hex[:16]
    atomic_write(path, value.encode())
    return value


def docker_available() -> bool:
    """True when a Docker engine answers through DOCKER_HOST or the default socket."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
            return True
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def wait_for_docker(timeout: float, interval: float = 0.5, *,
                    probe: Callable[[], bool] | None = None,
                    sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> bool:
    """True as soon as a Docker engine answers, False when none has within
    ``timeout`` seconds (asked every ``interval`` s; one log line when it has to
    wait, one when the engine answers).  Blocking: for start-up, before the agent
    serves anything."""
    probe = probe or docker_available
    began = clock()
    if probe():
        return True
    log.warning("no Docker engine answers yet; waiting up to %g s for one", timeout)
    while clock() - began < timeout:
        sleep(min(interval, max(0.0, timeout - (clock() - began))))
        if probe():
            log.info("the Docker engine answered after %.1f s", clock() - began)
            return True
    return False


def available_containerizers() -> list[str]:
    return ["docker", "process"] if docker_available() else ["process"]


def make_containerizers(names: list[str], work_dir: Path,
                        policy: ContainerPolicy | None = None) -> dict[str, Containerizer]:
    """Build the named containerizers; ValueError names what cannot be built.
    ``policy`` hardens Docker containers (default: ``ContainerPolicy()``)."""
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise ValueError(f"unknown containerizer(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(KNOWN)}")
    work_dir.mkdir(parents=True, exist_ok=True)
    rid = runtime_id(work_dir)
    out: dict[str, Containerizer] = {}
    if "process" in names:
        from mesoslite.agent.containerizers.process import ProcessContainerizer

        out["process"] = ProcessContainerizer(rid, work_dir)
    if "docker" in names:
        if not docker_available():
            raise ValueError(NO_ENGINE)
        from mesoslite.agent.containerizers.docker import DockerContainerizer

        out["docker"] = DockerContainerizer(rid, work_dir, policy=policy)
    return out
