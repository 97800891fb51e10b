"""``mesoslite apply``, ``apps ...`` and ``deploy status`` against the framework's API:
what a user sees, one plain line on errors, never a traceback."""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest
from click.testing import CliRunner

from mesoslite.cli.main import cli

pytestmark = pytest.mark.asyncio


async def run(*args: str, env: dict[str, str] | None = None):
    """The CLI in a worker thread (it blocks; the server shares this event loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli, list(args), env=env,
                                   catch_exceptions=False)


def one_line_error(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


async def test_apply_files_and_directories(offline, tmp_path) -> None:
    (tmp_path / "apps.yaml").write_text(textwrap.dedent("""\
        id: /one
        cmd: sleep 100
        cpus: 0.1
        mem: 16
        instances: 2
        storeUrls: ["http://example.com/x"]
        ---
        id: /two
        cmd: sleep 200
        """))
    (tmp_path / "k8s.yaml").write_text(textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: three, annotations: {note: x}}
        spec:
          replicas: 2
          template:
            metadata: {labels: {app: three}}
            spec:
              containers: [{name: c, image: "mesoslite/busybox:latest"}]
        """))
    result = await run("apply", "-f", str(tmp_path), "--server", offline.url)
    assert result.exit_code == 0, result.output
    assert "app /one configured" in result.output and "app /three configured" in result.output
    assert "warning: Deployment three: metadata.annotations.note is not honoured" in \
        result.output
    assert "warning: /one: storeUrls are ignored" in result.output
    assert (await offline.app("/one"))["instances"] == 2
    assert (await offline.app("/three"))["container"]["docker"]["image"] == \
        "mesoslite/busybox:latest"
    again = await run("apply", "-f", str(tmp_path / "apps.yaml"), "--server", offline.url)
    assert again.exit_code != 0 and "409" in again.output, "a deployment still holds /one"
    forced = await run("apply", "-f", str(tmp_path / "apps.yaml"), "--force",
                       "--server", offline.url)
    assert forced.exit_code == 0, forced.output


async def test_apply_errors_are_one_line(offline, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: /bad\ncmd: x\ninstances: -1\n")
    line = one_line_error(await run("apply", "-f", str(bad), "--server", offline.url))
    assert line == "Error: 422: Object is not valid (/instances: got -1, expected 0 or more)"
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    assert "broken.yaml" in one_line_error(await run("apply", "-f", str(broken),
                                                     "--server", offline.url))
    missing = one_line_error(await run("apply", "-f", str(tmp_path / "nope.yaml"),
                                       "--server", offline.url))
    assert "no such file" in missing
    unreachable = one_line_error(await run("apps", "list", "--server", "http://127.0.0.1:9"))
    assert "cannot reach" in unreachable


async def test_apps_commands(offline) -> None:
    await offline.ok("POST", "/v2/apps", {"id": "/web", "cmd": "sleep 100", "instances": 1,
                                          "healthChecks": [{"protocol": "COMMAND",
                                                            "command": {"value": "true"}}]})
    env = {"MESOSLITE_SERVICES": offline.url}
    listed = await run("apps", "list", env=env)
    assert listed.exit_code == 0
    header, row = listed.output.splitlines()
    assert header.split() == ["ID", "INSTANCES", "RUNNING", "HEALTHY", "DEPLOYING", "RUNS",
                              "WAITING", "/", "LAST", "FAILURE"]
    assert row.split()[:5] == ["/web", "1", "0", "0", "yes"]
    shown = await run("apps", "show", "web", env=env)
    assert json.loads(shown.output)["id"] == "/web"
    status = await run("deploy", "status", env=env)
    assert "/web" in status.output and "StartApplication" not in status.output
    assert "ScaleApplication" in status.output
    scaled = await run("apps", "scale", "/web", "3", "--force", env=env)
    assert "scaling to 3" in scaled.output and (await offline.app("/web"))["instances"] == 3
    # a deployment is in progress: rollback undoes it
    rolled = await run("apps", "rollback", "web", env=env)
    assert "rolled back" in rolled.output, rolled.output
    assert (await offline.app("/web"))["instances"] == 1
    restarted = await run("apps", "restart", "web", "--force", env=env)
    assert "restarting" in restarted.output
    back = await run("apps", "rollback", "web", "--force", env=env)
    assert "rolling back to" in back.output
    deleted = await run("apps", "delete", "web", "--force", env=env)
    assert "deleted" in deleted.output
    assert "404: App '/web' does not exist" in one_line_error(
        await run("apps", "show", "web", env=env))
