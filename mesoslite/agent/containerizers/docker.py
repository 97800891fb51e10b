"""The DOCKER containerizer: tasks whose TaskInfo has ``container.type = DOCKER`` run as
Docker containers on the local engine (DOCKER_HOST or the default socket).

* What a container looks like (name, labels, command, env, network, ports, limits,
  volumes, allowed parameters) is decided in ``docker_spec`` (pure).
* Images: used from the engine when present; pulled only when absent or when
  ``force_pull_image`` is set, within ``pull_timeout`` seconds.  An image that is
  absent and cannot be pulled fails the launch at once, saying so.  When a forced pull
  fails but a local copy exists, the local copy is used and a note goes to the task's
  stderr (there may be no registry at all; failing would make the flag unusable).
* Watching, logs, signals, usage and exec are in ``docker_container``; the records of a
  container (log position, how it ended) are in ``<sandbox>/.mesoslite/<container_id>/``.
* Every container carries the label ``mesoslite.runtime_id=<this agent's runtime id>``;
  recovery and orphan cleanup only ever look at containers with that label, so agents
  sharing an engine never touch each other's containers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

from docker.errors import APIError, ImageNotFound, NotFound
from docker.utils import parse_repository_tag

from mesoslite.agent.container_policy import ContainerPolicy
from mesoslite.agent.containerizers.base import (
    Container,
    Containerizer,
    LaunchError,
    LaunchSpec,
    StopKind,
    Termination,
)
from mesoslite.agent.containerizers.docker_container import (
    DockerContainer,
    Engine,
    read_termination,
)
from mesoslite.agent.containerizers.docker_spec import (
    LABEL_CONTAINER_ID,
    LABEL_RUNTIME_ID,
    CreateArgs,
    build_create_args,
    docker_info,
)

log = logging.getLogger(__name__)

META_DIR = ".mesoslite"  # in the sandbox, as for the process containerizer
RECORD_VERSION = 1


def _explain(exc: APIError) -> str:
    return str(exc.explanation or exc)


IMAGE_FRESH_S = 30.0  # how long an image seen on the engine is taken to be there


class _ImageGone(Exception):
    """The create found no image although it was there a moment ago."""


class DockerContainerizer(Containerizer):
    """Runs DOCKER tasks on the local engine; see the module docstring.

    ``runtime_id`` namespaces this agent's containers on the engine; ``policy`` hardens
    them (``agent/container_policy.py``; default: fully hardened).
    """

    name: ClassVar[str] = "docker"

    def __init__(self, runtime_id: str, work_dir: str | Path, *, pull_timeout: float = 60.0,
                 engine: Engine | None = None, policy: ContainerPolicy | None = None) -> None:
        self.runtime_id = runtime_id
        self.policy = policy or ContainerPolicy()
        self.work_dir = Path(work_dir)
        self.pull_timeout = pull_timeout
        self.engine = engine or Engine()
        self._present: dict[str, float] = {}  # image -> when last seen on the engine
        self._containers: dict[str, DockerContainer] = {}
        self._launching: set[str] = set()

    # ------------------------------------------------------------ launch

    async def launch(self, spec: LaunchSpec) -> Container:
        """Create and start the container; returns once it runs.  LaunchError (with the
        engine's explanation) when the task's container cannot be built or started."""
        cid = spec.container_id
        if cid in self._containers or cid in self._launching:
            raise LaunchError(f"Container {cid} is already running")
        args = build_create_args(spec, self.runtime_id, self.policy)
        meta = _prepare_sandbox(spec)
        self._launching.add(cid)
        try:
            force_pull = docker_info(spec)[1].force_pull_image
            await self._ensure_image(args.image, force_pull, spec)
            try:
                docker_id = await self._create_and_start(args)
            except _ImageGone:  # removed since we last saw it: look (and pull) again
                self._present.pop(args.image, None)
                await self._ensure_image(args.image, force_pull, spec)
                docker_id = await self._create_and_start(args)
        finally:
            self._launching.discard(cid)
        record = {
            "version": RECORD_VERSION,
            "containerizer": self.name,
            "container_id": cid,
            "docker_id": docker_id,
            "name": args.name,
            "runtime_id": self.runtime_id,
            "image": args.image,
            "sandbox": str(spec.sandbox),
            "meta_dir": str(meta),
            "mem_limit_bytes": args.host_config.get("mem_limit"),
        }
        return self._adopt(spec, record, resume_logs=False)

    async def _ensure_image(self, image: str, force_pull: bool, spec: LaunchSpec) -> None:
        """The image is on the engine (pulled if it is not, or if ``force_pull``).

        An image seen less than IMAGE_FRESH_S ago is not inspected again: the raw SDK
        creates straight away, and so do we (a create that finds it gone comes back
        here through ``_ImageGone``)."""
        if not force_pull and time.monotonic() - self._present.get(image, -IMAGE_FRESH_S) < (
                IMAGE_FRESH_S):
            return
        present = await self._image_present(image)
        if present and not force_pull:
            self._present[image] = time.monotonic()
            return
        try:
            await asyncio.wait_for(self.engine.call(self._pull, image), self.pull_timeout)
            if await self._image_present(image):
                self._present[image] = time.monotonic()
                return
            error = "the engine reported no error, yet the image is not there"
        except TimeoutError:
            error = f"the pull did not finish within {self.pull_timeout:g}s"
        except APIError as exc:
            error = _explain(exc)
        if present:
            note = (f"mesoslite: force_pull_image: pulling '{image}' failed ({error}); "
                    "using the engine's local copy\n")
            log.warning(note.strip())
            await self.engine.call(_append, Path(spec.sandbox) / "stderr", note)
            return
        raise LaunchError(f"Docker image '{image}' is not on this agent's engine and could "
                          f"not be pulled: {error}")

    async def _image_present(self, image: str) -> bool:
        try:
            await self.engine.api_call("inspect_image", image)
            return True
        except (ImageNotFound, NotFound):
            return False

    def _pull(self, image: str) -> None:
        """Blocking pull; raises APIError with the engine's message on failure."""
        repo, tag = parse_repository_tag(image)
        for event in self.engine.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                raise APIError(str(event["error"]), explanation=str(event["error"]))

    async def _create_and_start(self, args: CreateArgs) -> str:
        task = asyncio.ensure_future(self.engine.call(self._create_and_start_blocking, args))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelled while the engine works: remove what it makes, so that nothing
            # runs unrecorded.
            task.add_done_callback(self._remove_if_started)
            raise

    def _remove_if_started(self, task: asyncio.Future[str]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.engine.submit(_remove_quietly, self.engine.api, task.result())

    def _create_and_start_blocking(self, args: CreateArgs) -> str:
        api = self.engine.api
        for name, driver in args.named_volumes:
            try:
                api.create_volume(name, driver=driver)
            except APIError as exc:
                raise LaunchError(f"Cannot create docker volume '{name}' "
                                  f"(driver {driver}): {_explain(exc)}") from None
        try:
            host_config = api.create_host_config(**args.host_config)
            created = api.create_container(**args.create_kwargs(), host_config=host_config)
        except ImageNotFound:
            raise _ImageGone from None
        except (APIError, ValueError, TypeError) as exc:
            text = _explain(exc) if isinstance(exc, APIError) else str(exc)
            raise LaunchError(f"Docker could not create the container: {text}") from None
        docker_id = created["Id"]
        try:
            api.start(docker_id)
        except APIError as exc:
            _remove_quietly(api, docker_id)
            raise LaunchError(f"Docker could not start the container: {_explain(exc)}") from None
        return str(docker_id)

    # ------------------------------------------------------------ bookkeeping

    def _adopt(self, spec: LaunchSpec, record: dict[str, Any], resume_logs: bool
               ) -> DockerContainer:
        container = DockerContainer(self.engine, spec, record, self._finished, resume_logs)
        self._containers[spec.container_id] = container
        return container

    def _finished(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    # ------------------------------------------------------------ recovery

    async def recover(self, spec: LaunchSpec, record: dict[str, Any]) -> Container | Termination:
        """Re-attach to the same container (by its docker id: never a new one) after an
        agent restart, resuming the log copy where it stopped.  Returns the Termination
        when it ended while the agent was down (its remaining output copied first)."""
        cid = spec.container_id
        if cid in self._containers:
            return self._containers[cid]
        meta = Path(record["meta_dir"])
        try:
            info = await self.engine.api_call("inspect_container", record["docker_id"])
        except NotFound:
            return read_termination(meta) or Termination(
                message=f"The task's container {record.get('name')} is gone: it was removed "
                        "while the agent was down")
        labels = info.get("Config", {}).get("Labels") or {}
        if labels.get(LABEL_RUNTIME_ID) != self.runtime_id:
            return Termination(message=f"Container {record['docker_id'][:12]} belongs to "
                                       "another agent; not re-attached")
        container = self._adopt(spec, dict(record), resume_logs=True)
        state = info.get("State", {})
        if state.get("Running") or state.get("Paused"):
            return container
        return await container.wait()  # ended meanwhile: the watcher finishes it at once

    async def cleanup_orphans(self, known: set[str]) -> list[str]:
        """Remove (force: SIGKILL) this agent's containers that no task is attached to.

        Only containers labelled with this agent's runtime id are looked at.  Besides
        those whose container id is not in ``known``, containers of known tasks that
        ``recover`` did not re-attach are removed too: their launch was never recorded
        (the agent died between ``docker create`` and its checkpoint) and the task has
        been reported LOST, so they would otherwise run forever unseen.  Call it after
        ``recover``.  Returns the removed container ids.
        """
        found = await self.engine.api_call(
            "containers", all=True, filters={"label": f"{LABEL_RUNTIME_ID}={self.runtime_id}"})
        removed: list[str] = []
        for entry in found:
            cid = (entry.get("Labels") or {}).get(LABEL_CONTAINER_ID, "")
            if cid in self._launching:
                continue
            attached = self._containers.get(cid)
            if attached is not None:
                if cid not in known:
                    await attached.signal(StopKind.KILL)
                    await attached.wait()
                    removed.append(cid)
                continue
            await self.engine.call(_remove_quietly, self.engine.api, entry["Id"])
            removed.append(cid or entry["Id"])
        return removed

    async def close(self) -> None:
        """Stop watching containers; they keep running (re-attached by ``recover``)."""
        for container in list(self._containers.values()):
            container.close()
        self._containers.clear()
        self.engine.close()


def _prepare_sandbox(spec: LaunchSpec) -> Path:
    sandbox = Path(spec.sandbox)
    if not sandbox.is_dir():
        raise LaunchError(f"Sandbox {sandbox} does not exist or is not a directory")
    meta = sandbox / META_DIR / spec.container_id
    try:
        meta.mkdir(parents=True)
        for name in ("stdout", "stderr"):
            (sandbox / name).touch()
    except FileExistsError:
        raise LaunchError(f"Container {spec.container_id} was already launched in sandbox "
                          f"{sandbox}") from None
    except OSError as exc:
        raise LaunchError(f"Sandbox {sandbox} is not usable: {exc}") from None
    return meta


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _remove_quietly(api: Any, docker_id: str) -> None:
    try:
        api.remove_container(docker_id, v=True, force=True)
    except NotFound:
        pass
    except APIError as exc:
        log.warning("cannot remove container %s: %s", docker_id, exc)
