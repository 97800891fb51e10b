"""Process containerizer: running, environment, launch errors, signals, exec, usage."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import signal
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from mesoslite.agent.containerizers.base import LaunchError, LaunchSpec, StopKind
from mesoslite.agent.containerizers.process import ProcessContainerizer
from mesoslite.testing.poll import wait_for
from tests.unit.containerizers.process.conftest import (
    PY,
    ended,
    pid_alive,
    read_pid,
    stopped,
    task_info,
)

SpecFactory = Callable[..., LaunchSpec]

# A task that is ready to be killed once it has written "ready" (so the test knows
# its SIGTERM trap is installed), then idles.
IDLE = "while :; do sleep 0.05; done"
TERM, KILL = StopKind.TERM, StopKind.KILL


# ---------------------------------------------------------------- running


async def test_runs_to_completion(containerizer: ProcessContainerizer, make_spec: SpecFactory):
    container = await containerizer.launch(make_spec("exit 0"))
    term = await ended(container)
    assert term.exit_code == 0 and term.signal is None and term.succeeded
    assert not term.oom_killed
    assert term.message == "Command exited with status 0"


async def test_nonzero_exit_is_a_termination(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    container = await containerizer.launch(make_spec("exit 42"))
    term = await ended(container)
    assert term.exit_code == 42 and not term.succeeded


async def test_missing_shell_command_exits_127(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    container = await containerizer.launch(make_spec("/no/such/binary --flag"))
    assert (await ended(container)).exit_code == 127


async def test_stdout_stderr_and_cwd(containerizer: ProcessContainerizer, make_spec: SpecFactory):
    spec = make_spec("echo out; echo err >&2; pwd; touch created-here")
    await ended(await containerizer.launch(spec))
    sandbox = Path(spec.sandbox)
    assert (sandbox / "stdout").read_text() == f"out\n{sandbox}\n"
    assert (sandbox / "stderr").read_text() == "err\n"
    assert (sandbox / "created-here").exists()


async def test_shell_false_uses_argv_without_a_shell(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    # argv[0] is arguments[0]; "a b;c" stays one argument (no shell word splitting).
    code = (
        "import sys; print(open('/proc/self/cmdline').read().split(chr(0))[0]); print(sys.argv[1])"
    )
    spec = make_spec(PY, shell=False, arguments=["renamed-argv0", "-c", code, "a b;c"])
    term = await ended(await containerizer.launch(spec))
    assert term.exit_code == 0
    assert (Path(spec.sandbox) / "stdout").read_text() == "renamed-argv0\na b;c\n"


async def test_shell_false_looks_up_path_of_task_env(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec("echo", shell=False, arguments=["echo", "$HOME", "x"])
    assert (await ended(await containerizer.launch(spec))).exit_code == 0
    assert (Path(spec.sandbox) / "stdout").read_text() == "$HOME x\n"


async def test_shell_false_without_arguments_runs_value(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec("/bin/pwd", shell=False)
    assert (await ended(await containerizer.launch(spec))).exit_code == 0
    assert (Path(spec.sandbox) / "stdout").read_text() == f"{spec.sandbox}\n"


async def test_environment_applied_and_agent_env_not_leaked(
    containerizer: ProcessContainerizer, make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MESOSLITE_AGENT_SECRET", "leak")
    monkeypatch.setenv("HOME", "/agent/home")
    spec = make_spec("env", env={"FOO": "bar baz", "HOME": "/task/home"})
    assert (await ended(await containerizer.launch(spec))).exit_code == 0
    env = dict(
        line.split("=", 1) for line in (Path(spec.sandbox) / "stdout").read_text().splitlines()
    )
    assert env["FOO"] == "bar baz"
    assert env["HOME"] == "/task/home"  # the agent's env wins over the inherited one
    assert env["PATH"] == os.environ["PATH"]  # inherited
    assert "MESOSLITE_AGENT_SECRET" not in env
    assert set(env) <= {"FOO", "HOME", "PATH", "LANG", "PWD", "SHLVL", "_", "OLDPWD"}


async def test_several_waiters_get_the_same_termination(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec("while [ ! -e go ]; do sleep 0.02; done; exit 5")
    container = await containerizer.launch(spec)
    waiters = [asyncio.create_task(container.wait()) for _ in range(3)]
    (Path(spec.sandbox) / "go").touch()
    terms = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert {t.exit_code for t in terms} == {5}
    assert (await container.wait()).exit_code == 5  # and later callers too


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_runs_as_command_user(containerizer: ProcessContainerizer, make_spec: SpecFactory):
    nobody = pwd.getpwnam("nobody")
    spec = make_spec("id -u; echo hi > mine", user="nobody")
    assert (await ended(await containerizer.launch(spec))).exit_code == 0
    assert (Path(spec.sandbox) / "stdout").read_text() == f"{nobody.pw_uid}\n"
    assert (Path(spec.sandbox) / "mine").stat().st_uid == nobody.pw_uid


# ---------------------------------------------------------------- launch errors


async def test_missing_executable_is_a_launch_error(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec("/no/such/exe", shell=False, arguments=["exe"])
    with pytest.raises(LaunchError, match="/no/such/exe.*no such file"):
        await containerizer.launch(spec)
    # Nothing is left behind: no registry entry, no cgroup.
    assert list(containerizer.runtime_dir.glob("*.json")) == []
    assert containerizer.cgroups.list_containers(containerizer.agent_id) == set()


async def test_missing_sandbox_is_a_launch_error(
    containerizer: ProcessContainerizer, make_spec: SpecFactory, tmp_path: Path
):
    spec = make_spec("true", sandbox=tmp_path / "does-not-exist")
    with pytest.raises(LaunchError, match="does-not-exist"):
        await containerizer.launch(spec)


async def test_task_without_command_is_a_launch_error(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec("true")
    bare = dataclasses.replace(spec, task=msgspec.structs.replace(task_info("x"), command=None))
    with pytest.raises(LaunchError, match="no command"):
        await containerizer.launch(bare)


async def test_unknown_user_is_a_launch_error(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    with pytest.raises(LaunchError, match="no such user"):
        await containerizer.launch(make_spec("true", user="no-such-user-xyz"))


async def test_same_container_id_twice_is_a_launch_error(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec(IDLE)
    container = await containerizer.launch(spec)
    with pytest.raises(LaunchError, match="already"):
        await containerizer.launch(spec)
    await stopped(container)


# ---------------------------------------------------------------- signals


async def test_term_lets_the_task_exit_cleanly(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec(f"trap 'echo bye; exit 0' TERM; touch ready; {IDLE}")
    container = await containerizer.launch(spec)
    await wait_for(lambda: (Path(spec.sandbox) / "ready").exists(), message="trap installed")
    term = await stopped(container, TERM)
    assert term.exit_code == 0 and term.signal is None
    assert (Path(spec.sandbox) / "stdout").read_text() == "bye\n"


async def test_a_task_may_survive_term_but_not_kill(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec(
        "trap 'touch termed' TERM; touch ready; "
        "while :; do [ -e termed ] && touch survived; sleep 0.05; done"
    )
    container = await containerizer.launch(spec)
    sandbox = Path(spec.sandbox)
    await wait_for(lambda: (sandbox / "ready").exists(), message="trap installed")
    await container.signal(TERM)
    await wait_for(lambda: (sandbox / "survived").exists(), message="the task to outlive TERM")
    term = await stopped(container, KILL)
    assert term.signal == signal.SIGKILL and term.exit_code is None
    assert "Killed" in term.message


async def test_default_sigterm_kill_reports_the_signal(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    container = await containerizer.launch(make_spec(f"exec {PY} -c 'import time; time.sleep(60)'"))
    assert (await stopped(container, TERM)).signal == signal.SIGTERM


async def test_signals_after_the_exit_change_nothing(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    container = await containerizer.launch(make_spec("exit 3"))
    await ended(container)
    await container.signal(TERM)
    await container.signal(KILL)
    assert (await container.wait()).exit_code == 3


@pytest.mark.parametrize("cgroups", ["auto", "none"])
async def test_kill_takes_the_process_group_down(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    make_spec: SpecFactory,
    cgroups: str,
):
    containerizer = make_containerizer(agent_id, cgroups=cgroups)
    spec = make_spec("sleep 300 & echo $! > c1; sleep 300 & echo $! > c2; touch ready; wait")
    container = await containerizer.launch(spec)
    sandbox = Path(spec.sandbox)
    await wait_for(lambda: (sandbox / "ready").exists(), message="children started")
    children = [read_pid(sandbox / "c1"), read_pid(sandbox / "c2")]
    assert all(pid_alive(p) for p in children)
    await stopped(container, TERM)
    await wait_for(lambda: not any(pid_alive(p) for p in children), message="children gone")


async def test_children_left_behind_are_killed_when_task_exits(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec("sleep 300 & echo $! > child; exit 0")
    term = await ended(await containerizer.launch(spec))
    assert term.exit_code == 0
    child = read_pid(Path(spec.sandbox) / "child")
    await wait_for(lambda: not pid_alive(child), message="orphaned child killed")


# ---------------------------------------------------------------- exec and usage


async def test_exec_runs_in_task_env_and_sandbox(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec(IDLE, env={"CHECK_VAR": "yes"})
    container = await containerizer.launch(spec)
    code, output = await container.exec(["sh", "-c", "echo $CHECK_VAR; pwd; exit 3"], 5)
    assert (code, output) == (3, f"yes\n{spec.sandbox}\n")
    code, output = await container.exec(["sh", "-c", "echo oops >&2"], 5)
    assert (code, output) == (0, "oops\n")
    await stopped(container)


async def test_exec_timeout_missing_command_and_truncation(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    container = await containerizer.launch(make_spec(IDLE))
    started = time.monotonic()
    code, output = await container.exec(["sh", "-c", "echo started; sleep 60"], 0.3)
    assert code == 124 and output.startswith("started") and "0.3s" in output
    assert time.monotonic() - started < 5
    assert (await container.exec(["/no/such/check"], 5))[0] == 127
    code, output = await container.exec([PY, "-c", "print('x' * 100000, end='END')"], 10)
    assert code == 0 and len(output) == 4096 and output.endswith("END")
    code, _ = await container.exec(["sh", "-c", "kill -9 $$"], 5)
    assert code == 128 + signal.SIGKILL
    await stopped(container)


@pytest.mark.parametrize("cgroups", ["auto", "none"])
async def test_usage_reports_cpu_and_memory(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    make_spec: SpecFactory,
    cgroups: str,
):
    containerizer = make_containerizer(agent_id, cgroups=cgroups)
    busy = f"exec {PY} -c 'b = bytearray(20 * 2**20)\nwhile True: pass'"
    container = await containerizer.launch(make_spec(busy))

    async def busy_enough() -> bool:
        usage = await container.usage()
        return usage is not None and usage.cpu_seconds > 0.05 and usage.mem_bytes > 20 * 2**20

    await wait_for(busy_enough, timeout=10, message="cpu and memory usage")
    usage = await container.usage()
    assert usage is not None and usage.timestamp > 0
    await stopped(container)
    assert await container.usage() is None


async def test_supervisor_that_never_answers_is_a_launch_error(
    tmp_path: Path, agent_id: str, work_dir: Path, make_spec: SpecFactory
):
    fake_python = tmp_path / "hung-python"
    fake_python.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/hung.pid\nexec sleep 300\n")
    fake_python.chmod(0o755)
    containerizer = ProcessContainerizer(
        agent_id, work_dir, cgroups="none", python=str(fake_python), launch_timeout=0.3
    )
    with pytest.raises(LaunchError, match="did not start within 0.3s"):
        await containerizer.launch(make_spec("true"))
    hung = read_pid(tmp_path / "hung.pid")
    await wait_for(lambda: not pid_alive(hung), message="hung supervisor killed")
    assert list(containerizer.runtime_dir.glob("*.json")) == []


async def test_supervisor_dying_early_is_a_launch_error(
    tmp_path: Path, agent_id: str, work_dir: Path, make_spec: SpecFactory
):
    fake_python = tmp_path / "broken-python"
    fake_python.write_text("#!/bin/sh\necho 'boom: interpreter broken' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    containerizer = ProcessContainerizer(agent_id, work_dir, python=str(fake_python))
    with pytest.raises(LaunchError, match="boom: interpreter broken"):
        await containerizer.launch(make_spec("true"))
    assert containerizer.cgroups.list_containers(agent_id) == set()
    containerizer.cgroups.remove_agent_namespace(agent_id)


def test_a_stop_signal_before_the_task_exists_is_delivered_once_it_does():
    # The supervisor installs its handlers before forking the task; a SIGTERM that
    # lands in that window must reach the task's process group afterwards, not vanish.
    from mesoslite.agent.containerizers.supervisor import Supervisor

    sup = Supervisor({"meta_dir": "/nonexistent"})
    sup.on_term(signal.SIGTERM, None)
    sup.on_force(signal.SIGUSR1, None)
    assert sup.pending == [signal.SIGTERM, signal.SIGUSR1]
