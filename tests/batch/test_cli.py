"""``mesoslite batch ...`` as a user runs it: a real process against a real batch
server, exit codes, plain output for CI logs, ``--json``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from mesoslite.testing.poll import wait_for
from tests.batch.conftest import get_run

ROOT = Path(__file__).resolve().parents[2]


async def cli(server_url: str, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    """Run the CLI (stdout is a pipe: plain output); returns (exit code, out, err)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mesoslite.cli.main", "batch", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MESOSLITE_BATCH": server_url}, cwd=ROOT)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def server(batch_env):
    return await batch_env.server(await batch_env.cluster())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


PIPELINE = """
id: cli-ci
cpus: 0.2
steps:
  - name: lint
    command: echo linted
  - name: test
    depends_on: [lint]
    completions: 3
    command: echo "shard $BATCH_TASK_INDEX"
  - name: package
    depends_on: [test]
    command: {package}
"""


async def test_submit_wait_succeeds_with_plain_progress(server, tmp_path):
    job = write(tmp_path, "ci.yaml", PIPELINE.format(package="echo packaged"))
    code, out, err = await cli(server.url, "submit", str(job), "--wait")
    assert code == 0, err
    assert "\x1b[" not in out  # no terminal codes in a CI log
    assert "test: SUCCEEDED (0 pending, 0 running, 3 done, 0 failed)" in out
    assert out.strip().splitlines()[-1].split()[2] == "SUCCEEDED"


async def test_submit_wait_exits_1_when_the_run_fails(server, tmp_path):
    job = write(tmp_path, "ci.yaml", PIPELINE.format(package="exit 5"))
    code, out, _ = await cli(server.url, "submit", str(job), "--wait")
    assert code == 1
    last = out.strip().splitlines()[-1]
    assert "FAILED" in last and "package" in last and "status 5" in last


async def test_json_output(server, tmp_path):
    job = write(tmp_path, "ci.yaml", PIPELINE.format(package="'true'"))
    code, out, _ = await cli(server.url, "submit", str(job), "--wait", "--json")
    assert code == 0
    run = json.loads(out)
    assert run["state"] == "SUCCEEDED" and [s["name"] for s in run["steps"]] == [
        "lint", "test", "package"]
    code, out, _ = await cli(server.url, "status", run["id"], "--json")
    assert code == 0 and json.loads(out)["id"] == run["id"]
    code, out, _ = await cli(server.url, "list", "--json")
    listed = json.loads(out)
    assert [j["id"] for j in listed["jobs"]] == ["cli-ci"]
    assert listed["runs"][0]["id"] == run["id"]


async def test_errors_are_one_plain_line(server, tmp_path):
    bad = write(tmp_path, "bad.yaml", "id: x\ncommand: 'true'\nretires: 3\n")
    code, _, err = await cli(server.url, "submit", str(bad))
    assert code == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "retires" in err and "retries" in err
    cyclic = write(tmp_path, "cyc.yaml", "id: x\ncommand: 'true'\nsteps:\n"
                   "  - {name: a, depends_on: [b]}\n  - {name: b, depends_on: [a]}\n")
    code, _, err = await cli(server.url, "submit", str(cyclic))
    assert code == 2 and "steps[0].depends_on[0]" in err and "cycle" in err
    code, _, err = await cli(server.url, "status", "no-such-run")
    assert code == 2 and "404" in err and "Traceback" not in err
    code, _, err = await cli("http://127.0.0.1:9", "list")
    assert code == 2 and "cannot reach" in err
    code, _, err = await cli(server.url, "submit", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in err
    broken = write(tmp_path, "broken.yaml", "id: [unclosed\n")
    code, _, err = await cli(server.url, "submit", str(broken))
    assert code == 2 and "line" in err


async def test_run_prints_the_output_and_logs_fetch_it_again(server):
    code, out, err = await cli(server.url, "run", "--", "echo hello from $BATCH_STEP")
    assert code == 0, err
    assert "hello from main" in out
    run_id = out.split()[2]
    code, out, _ = await cli(server.url, "logs", run_id)
    assert code == 0 and out.strip() == "hello from main"
    code, out, _ = await cli(server.url, "run", "--", "sh", "-c", "echo argv; exit 9")
    assert code == 1 and "argv" in out


async def test_logs_of_one_task_and_follow(server, tmp_path):
    go = tmp_path / "go"
    job = write(tmp_path, "slow.yaml", f"""
id: slow
completions: 2
command: 'echo "task $BATCH_TASK_INDEX"; while [ ! -f {go} ]; do sleep 0.05; done; echo end'
""")
    code, out, _ = await cli(server.url, "submit", str(job))
    assert code == 0
    run_id = out.split()[-1]

    async def running() -> bool:
        run = await get_run(server, run_id)
        return sum(a["state"] == "RUNNING" for a in run["attempts"]) == 2

    await wait_for(running, 30)
    follower = asyncio.create_task(cli(server.url, "logs", run_id, "--task", "1", "--follow"))
    go.touch()
    code, out, _ = await follower
    assert code == 0 and out.split() == ["task", "1", "end"]
    code, out, _ = await cli(server.url, "logs", run_id)
    assert "==> main[0]" in out and "==> main[1]" in out


async def test_cancel_rerun_and_graph(server, tmp_path):
    flag = tmp_path / "ok"
    job = write(tmp_path, "p.yaml", f"""
id: p
steps:
  - {{name: build, command: 'true'}}
  - {{name: test, depends_on: [build], command: 'test -f {flag}'}}
""")
    code, out, _ = await cli(server.url, "graph", str(job))
    assert code == 0 and out.splitlines()[0] == "build" and "test" in out.splitlines()[1]
    code, out, _ = await cli(server.url, "submit", str(job), "--wait", "--json")
    assert code == 1
    failed = json.loads(out)
    code, out, _ = await cli(server.url, "status", failed["id"])
    assert code == 1 and "failed attempts:" in out
    flag.touch()
    code, out, _ = await cli(server.url, "rerun", failed["id"], "--failed-only", "--wait")
    assert code == 0, out
    code, out, _ = await cli(server.url, "graph", failed["id"])
    assert "build" in out and "SUCCEEDED" in out and "FAILED" in out
    long = write(tmp_path, "long.yaml", "id: long\ncommand: exec sleep 600\nkill_grace: 0\n")
    code, out, _ = await cli(server.url, "submit", str(long))
    run_id = out.split()[-1]
    code, out, _ = await cli(server.url, "cancel", run_id)
    assert code == 0
    code, out, _ = await cli(server.url, "status", run_id, "--json")
    assert json.loads(out)["cancel_requested"]
