"""Fixtures for tests against the real Docker engine.

No engine: skipped on a developer's machine, a failure with CI=true.  The busybox test
image is built once per session (``scripts/build-test-image``, fast when it exists).
Everything a test starts is namespaced by its agents' runtime ids, and only those
containers are cleaned up afterwards: other agents on the same engine (other tests,
other engineers) are never touched.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import docker
import pytest

from mesoslite.agent.containerizers import docker_available
from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID, LABEL_TASK_ID
from mesoslite.master.core import MasterConfig
from mesoslite.messages.mesos import (
    CommandURI,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    DurationInfo,
    HealthCheck,
    KillPolicy,
    LimitScalar,
    Offer,
    Parameter,
    PortMapping,
    TaskInfo,
    TaskState,
    Volume,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.poll import CLUSTER_LIMIT, SERVER_LIMIT, wait_for, within
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "mesoslite/busybox:latest"
# A port range of its own, away from the other suites' 31000-31899.
DOCKER_RESOURCES = Resources.parse("cpus:8;mem:4096;disk:1024;ports:[21000-21899]")
DOCKER_RESOURCES_TEXT = "cpus:8;mem:4096;disk:1024;ports:[21000-21099]"


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    """A client of the engine, with the test image built."""
    require(docker_available(), "A Docker engine")
    built = subprocess.run([str(ROOT / "scripts" / "build-test-image")], check=False,
                           capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"scripts/build-test-image failed:\n{built.stdout}{built.stderr}")
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _engine(docker_engine: docker.DockerClient) -> None:
    """Every test here needs the engine (and skips or fails without it)."""


def fast_config(**overrides: object) -> MasterConfig:
    config = MasterConfig(allocation_interval=0.05, agent_ping_timeout=0.2,
                          max_agent_ping_timeouts=3, heartbeat_interval=0.5, offer_timeout=30.0,
                          agent_reregister_timeout=2.0)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def runtime_id(work_dir: Path) -> str:
    return (work_dir / "runtime_id").read_text().strip()


def remove_runtime_containers(client: docker.DockerClient, rid: str) -> None:
    for c in client.containers.list(all=True, filters={"label": f"{LABEL_RUNTIME_ID}={rid}"}):
        c.remove(force=True, v=True)


@pytest.fixture
async def docker_cluster_factory(tmp_path: Path, docker_engine: docker.DockerClient,
                                 framework_factory: object,
                                 ) -> AsyncIterator[Callable[..., Awaitable[LocalCluster]]]:
    """Clusters whose agents run docker; stopped (tasks killed) before the frameworks
    are (hence the dependency), so the final updates are acknowledged at once."""
    clusters: list[LocalCluster] = []

    async def make(agents: int = 1, containerizers: Sequence[str] = ("docker", "process"),
                   **master_config: object) -> LocalCluster:
        spec = ClusterSpec(work_dir=tmp_path / f"cluster{len(clusters)}", agents=agents,
                           agent_resources=DOCKER_RESOURCES,
                           master_config=fast_config(**master_config),
                           containerizers=list(containerizers), status_update_retry=0.2,
                           allowed_host_paths=[str(tmp_path)])  # host-path volumes' allow-list
        cluster = LocalCluster(spec)
        clusters.append(cluster)
        await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
        return cluster

    yield make
    for cluster in clusters:
        await within(CLUSTER_LIMIT, "the cluster to stop", cluster.stop())
    for work_dir in tmp_path.glob("cluster*/agent*"):
        if (work_dir / "runtime_id").exists():
            remove_runtime_containers(docker_engine, runtime_id(work_dir))


@pytest.fixture
async def docker_cluster(docker_cluster_factory) -> LocalCluster:
    return await docker_cluster_factory()


@pytest.fixture
async def framework_factory() -> AsyncIterator[Callable[..., Awaitable[RecordingFramework]]]:
    frameworks: list[RecordingFramework] = []

    async def make(master: str, **kwargs: object) -> RecordingFramework:
        fw = RecordingFramework(master, **kwargs)  # type: ignore[arg-type]
        frameworks.append(fw)
        return await within(SERVER_LIMIT, "the test framework to subscribe", fw.start())

    yield make
    for fw in frameworks:
        await within(SERVER_LIMIT, "the test framework to stop", fw.stop())


@pytest.fixture
async def framework(docker_cluster, framework_factory) -> RecordingFramework:
    return await framework_factory(docker_cluster.master_url)


async def launch_docker(
    fw: RecordingFramework,
    task_id: str,
    cmd: str | None,
    *,
    image: str = IMAGE,
    cpus: float = 0.1,
    mem: float = 32.0,
    network: DockerNetwork = DockerNetwork.BRIDGE,
    container_ports: Sequence[int] = (),
    extra_ports: int = 0,
    parameters: Sequence[tuple[str, str]] = (),
    volumes: Sequence[Volume] = (),
    health_check: HealthCheck | None = None,
    grace: float | None = 0.0,
    agent_id: str | None = None,
    force_pull: bool = False,
    mappings: Callable[[list[int]], list[PortMapping]] | None = None,
    uris: Sequence[str | CommandURI] = (),
    limits: dict[str, float | str] | None = None,
) -> TaskInfo:
    """Launch one docker task into the next fitting offer.  Host ports are taken from
    the offer: one per ``container_ports`` entry (mapped in order) plus ``extra_ports``;
    ``mappings`` may build the port mappings itself from the chosen host ports.  The
    kill grace period defaults to 0 (tests' ``sleep`` tasks ignore SIGTERM as pid 1)."""
    need = Resources.of(cpus=cpus, mem=mem)
    n_ports = len(container_ports) + extra_ports

    def fits(o: Offer) -> bool:
        free = offer_resources(o)
        return need <= free and len(free.port_list()) >= n_ports

    offer = await wait_for(lambda: next(
        (o for o in fw.sched.open_offers.values()
         if (agent_id is None or o.agent_id.value == agent_id) and fits(o)), None),
        message=f"an offer fitting {task_id}")
    hosts = offer_resources(offer).take_ports(n_ports).port_list() if n_ports else []
    port_mappings = (mappings(hosts) if mappings is not None else
                     [PortMapping(host_port=h, container_port=c)
                      for h, c in zip(hosts, container_ports, strict=False)])
    container = ContainerInfo(type=ContainerType.DOCKER, volumes=list(volumes), docker=DockerInfo(
        image=image, network=network, port_mappings=port_mappings, force_pull_image=force_pull,
        parameters=[Parameter(key=k, value=v) for k, v in parameters]))
    task = task_info(task_id, task_id, offer.agent_id, cmd=cmd, cpus=cpus, mem=mem, ports=hosts,
                     container=container, health_check=health_check, uris=uris)
    task.limits = {k: LimitScalar(value=v) for k, v in (limits or {}).items()}
    if grace is not None:
        task.kill_policy = KillPolicy(grace_period=DurationInfo(nanoseconds=int(grace * 1e9)))
    await fw.launch(offer, [task], refuse_seconds=0)  # the rest is re-offered at once
    return task


def task_container(client: docker.DockerClient, task_id: str, rid: str | None = None
                   ) -> docker.models.containers.Container | None:
    """The (single) container of ``task_id``, optionally of one agent's runtime id."""
    labels = [f"{LABEL_TASK_ID}={task_id}"] + ([f"{LABEL_RUNTIME_ID}={rid}"] if rid else [])
    found = client.containers.list(all=True, filters={"label": labels})
    assert len(found) <= 1, f"{len(found)} containers for task {task_id}"
    return found[0] if found else None


def unique_states(fw: RecordingFramework, task_id: str) -> list[TaskState]:
    """The task's states in order, each update once: the agent resends updates until
    they are acknowledged (at-least-once), and a resend carries the same uuid."""
    seen: dict[bytes | None, TaskState] = {}
    for status in fw.sched.updates:
        if status.task_id.value == task_id:
            seen.setdefault(status.uuid or id(status), status.state)
    return list(seen.values())
