"""Container hardening (``agent/container_policy.py``, docs/security.md): what a
container gets by default, what is refused, and what an allowed principal gets, on the
real engine (``docker inspect`` and the task's own view of /proc), plus the policy's
pure decisions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import docker
import pytest
from click.testing import CliRunner

from mesoslite.agent.container_policy import (
    DEFAULT_CAPABILITIES,
    ContainerPolicy,
    PolicyError,
    Request,
    build_policy,
    harden,
)
from mesoslite.cli.main import cli
from mesoslite.messages.mesos import (
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    Parameter,
    Reason,
    TaskState,
)
from mesoslite.testing.cluster import LocalCluster
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.poll import wait_for
from tests.docker.conftest import IMAGE, launch_docker, task_container

pytestmark = pytest.mark.docker

# capabilities(7) numbers, to read the task's effective set from /proc/self/status.
CAP_NUMBERS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5,
               "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10,
               "NET_ADMIN": 12, "NET_RAW": 13, "SYS_CHROOT": 18, "SYS_ADMIN": 21,
               "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}


def _caps(names: list[str] | None) -> set[str]:
    return {n.upper().removeprefix("CAP_") for n in names or []}


def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


Start = Callable[..., Awaitable[tuple[LocalCluster, RecordingFramework]]]


@pytest.fixture
async def hardened(docker_cluster_factory) -> AsyncIterator[Start]:
    """An agent with a given container policy and a framework with a given principal
    (no authentication on this master: the principal is taken as declared)."""
    frameworks: list[RecordingFramework] = []

    async def start(policy: ContainerPolicy, principal: str | None = None
                    ) -> tuple[LocalCluster, RecordingFramework]:
        cluster = await docker_cluster_factory(agents=0)
        cluster.spec.container_policy = policy
        await cluster.start_agent(0)
        await cluster.wait_registered()
        fw = RecordingFramework(cluster.master_url)
        fw.info.principal = principal
        frameworks.append(await fw.start())
        return cluster, fw

    yield start
    for fw in frameworks:
        await fw.stop()


async def launch_raw(fw: RecordingFramework, task_id: str, cmd: str, docker_info: DockerInfo
                     ) -> None:
    """A docker task with ``docker_info`` as given (launch_docker cannot ask for
    privileged)."""
    await fw.run_task(task_id, cmd, container=ContainerInfo(type=ContainerType.DOCKER,
                                                            docker=docker_info))


async def test_default_container_is_hardened(hardened, docker_engine: docker.DockerClient):
    cluster, fw = await hardened(ContainerPolicy())
    await launch_docker(fw, "plain", "cat /proc/self/status > /mnt/mesos/sandbox/status; "
                        "sleep 300")
    await fw.wait_state("plain", TaskState.TASK_RUNNING)
    container = await asyncio.to_thread(task_container, docker_engine, "plain")
    assert container is not None
    host = container.attrs["HostConfig"]
    assert host["Privileged"] is False
    assert _caps(host["CapDrop"]) == {"ALL"}
    assert _caps(host["CapAdd"]) == set(DEFAULT_CAPABILITIES)
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["NetworkMode"] != "host"
    # What the task itself can do: the kernel's view, not only the engine's record.
    agent = cluster.agents[0]
    sandbox = agent.cp.sandbox(fw.id, "plain")
    status = await wait_for(lambda: _status((sandbox / "status").read_text())
                            if (sandbox / "status").exists() else None)
    effective = int(status["CapEff"], 16)
    for name in DEFAULT_CAPABILITIES:
        assert effective & (1 << CAP_NUMBERS[name]), name
    for name in ("NET_RAW", "MKNOD", "SYS_ADMIN", "NET_ADMIN", "SETFCAP", "SYS_CHROOT"):
        assert not effective & (1 << CAP_NUMBERS[name]), name
    assert status["NoNewPrivs"].strip() == "1"


async def test_privileged_host_network_and_cap_add_are_refused(
        hardened, docker_engine: docker.DockerClient):
    _, fw = await hardened(ContainerPolicy(privileged_principals=("ops",),
                                           host_network_principals=("ops",)), "web")
    await launch_raw(fw, "priv", "true", DockerInfo(image=IMAGE, network=DockerNetwork.BRIDGE,
                                                     privileged=True))
    await launch_docker(fw, "hostnet", "true", network=DockerNetwork.HOST)
    await launch_docker(fw, "admin", "true", parameters=[("cap-add", "NET_ADMIN")])
    expected = {"priv": "Privileged containers are not allowed for principal 'web'",
                "hostnet": "Host networking is not allowed for principal 'web'",
                "admin": "Adding capabilities NET_ADMIN is not allowed for principal 'web'"}
    for task_id, text in expected.items():
        status = await fw.wait_state(task_id, TaskState.TASK_FAILED)
        assert status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
        assert text in (status.message or ""), status.message
        assert TaskState.TASK_RUNNING not in fw.sched.states(task_id)
        # Refused, not downgraded: nothing was created for it.
        assert await asyncio.to_thread(task_container, docker_engine, task_id) is None


async def test_an_allowed_principal_gets_its_exceptions(hardened,
                                                       docker_engine: docker.DockerClient):
    policy = build_policy(privileged=["ops"], host_network=["ops"],
                          grants=["ops=NET_ADMIN"])
    _, fw = await hardened(policy, "ops")
    await launch_raw(fw, "priv", "sleep 300", DockerInfo(
        image=IMAGE, network=DockerNetwork.BRIDGE, privileged=True))
    await launch_raw(fw, "hostnet", "sleep 300", DockerInfo(
        image=IMAGE, network=DockerNetwork.HOST,
        parameters=[Parameter(key="cap-add", value="NET_ADMIN")]))
    await fw.wait_state("hostnet", TaskState.TASK_RUNNING)
    priv_state = await wait_for(lambda: next((s for s in fw.sched.states("priv") if s in (
        TaskState.TASK_RUNNING, TaskState.TASK_FAILED)), None))
    if priv_state == TaskState.TASK_RUNNING:
        priv = await asyncio.to_thread(task_container, docker_engine, "priv")
        assert priv is not None and priv.attrs["HostConfig"]["Privileged"] is True
    else:
        # An engine that may not grant every capability itself (Docker in a
        # restricted container, as on some CI hosts) cannot start privileged
        # containers at all: the policy let it through, the engine said no.
        message = fw.sched.last("priv").message or ""
        assert "Docker could not start the container" in message, message
        assert "not allowed" not in message
    hostnet = await asyncio.to_thread(task_container, docker_engine, "hostnet")
    assert hostnet is not None
    host = hostnet.attrs["HostConfig"]
    assert host["NetworkMode"] == "host" and host["Privileged"] is False
    assert _caps(host["CapAdd"]) == {*DEFAULT_CAPABILITIES, "NET_ADMIN"}
    assert "no-new-privileges" in host["SecurityOpt"]  # the rest of the hardening stays


# ------------------------------------------------------------------ the pure policy


def test_policy_decisions():
    assert build_policy() == ContainerPolicy()  # `mesoslite agent` without flags
    policy = ContainerPolicy(read_only_rootfs=True, capability_grants=(("ci-*", ("ALL",)),))
    base = harden(policy, None, Request())
    assert base == {"privileged": False, "cap_drop": ["ALL"], "cap_add":
                    list(DEFAULT_CAPABILITIES), "security_opt": ["no-new-privileges"],
                    "read_only": True}
    with pytest.raises(PolicyError, match="read-only root filesystem"):
        harden(policy, None, Request(read_only=False))
    # Dropping more is always allowed; dropping ALL leaves nothing to add back.
    fewer = harden(policy, None, Request(cap_drop=["CHOWN", "KILL"]))
    assert "CHOWN" not in fewer["cap_add"] and "KILL" not in fewer["cap_add"]
    assert "cap_add" not in harden(policy, None, Request(cap_drop=["ALL"]))
    everything = harden(policy, "ci-7", Request(cap_add=["ALL"], cap_drop=["NET_RAW"]))
    assert (everything["cap_add"], everything["cap_drop"]) == (["ALL"], ["NET_RAW"])
    with pytest.raises(PolicyError, match="principal 'web'"):
        harden(policy, "web", Request(cap_add=["SYS_PTRACE"]))
    with pytest.raises(PolicyError, match="frameworks without a principal"):
        harden(policy, None, Request(host_network=True))
    # An allowed privileged principal gets exactly what it asked for.
    assert harden(ContainerPolicy(privileged_principals=("ops",)), "ops",
                  Request(privileged=True)) == {"privileged": True}
    with pytest.raises(PolicyError, match="--allow-privileged-principal"):
        harden(ContainerPolicy(privileged_principals=("ops",)), "opsx", Request(privileged=True))
    # '*' covers frameworks without a principal too (local_dev: in-process clusters).
    assert harden(ContainerPolicy.local_dev(), None, Request(host_network=True))[
        "cap_drop"] == ["ALL"]


@pytest.mark.parametrize("args, text", [
    (["--allow-capability", "ops"], "expected PRINCIPAL=CAP"),
    (["--allow-capability", "ops=SYS_MAGIC"], "unknown capability 'SYS_MAGIC'"),
    (["--container-capabilities", "CHOWN,ALL"], "cannot be ALL"),
])
def test_agent_policy_flags_are_checked(args, text, tmp_path):
    result = CliRunner().invoke(cli, ["agent", "--work-dir", str(tmp_path), *args])
    assert result.exit_code != 0
    assert text in result.output
