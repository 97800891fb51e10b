"""The services framework as a real process (``python -m mesoslite.cli.main services``)
killed with SIGKILL in the middle of a rolling deployment and started again: it adopts
the running tasks through reconciliation and finishes the deployment, with no
duplicate launch and no healthy task killed outside the rolling rule."""

from __future__ import annotations

import sys

import pytest

from frameworks.services.model import BRIDGE
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import Process, free_port
from tests.services.conftest import IMAGE, Api

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]

SERVER = f"{sys.executable} -m http.server $PORT0 --bind 127.0.0.1"
HTTPD = "echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"
CHECK = {"protocol": "HTTP", "portIndex": 0, "path": "/", "gracePeriodSeconds": 3,
         "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3,
         "delaySeconds": 0}


def services_process(master: str, work_dir, port: int) -> Process:
    work_dir.mkdir(parents=True, exist_ok=True)
    args = ["services", "--master", master, "--port", str(port), "--work-dir", str(work_dir),
            "--reconcile-interval", "2", "--log-level", "debug"]
    return Process(args, work_dir / "services.log", port)


async def framework_tasks(master_url: str) -> dict[str, dict]:
    """Every task of the services framework the master knows, running or completed."""
    state = await get_json(master_url + "/master/state")
    out = {}
    for fw in state["frameworks"]:
        if fw["name"] == "mesoslite-services":
            for task in fw["tasks"] + fw["completed_tasks"]:
                out[task["id"]] = task
    return out


def web_app(docker: bool) -> dict:
    strategy = {"minimumHealthCapacity": 0.75, "maximumOverCapacity": 0.0}
    app = {"id": "/web", "cmd": SERVER, "instances": 4, "cpus": 0.1, "mem": 32,
           "healthChecks": [CHECK], "upgradeStrategy": strategy}
    if docker:
        app.update(cmd=HTTPD, taskKillGracePeriodSeconds=0, networks=[{"mode": BRIDGE}],
                   container={"type": "DOCKER", "docker": {"image": IMAGE},
                              "portMappings": [{"containerPort": 8080, "hostPort": 0}]})
    return app


async def test_kill9_mid_deployment_then_restart_resumes(cluster, tmp_path) -> None:
    await kill9_mid_deployment(cluster, tmp_path, docker=False)


@pytest.mark.docker
async def test_kill9_mid_deployment_with_docker_containers(dcluster, tmp_path) -> None:
    await kill9_mid_deployment(dcluster, tmp_path, docker=True)


async def kill9_mid_deployment(cluster, tmp_path, docker: bool) -> None:
    port = free_port()
    proc = await services_process(cluster.master_url, tmp_path / "svc", port).start()
    api = Api(proc.url)
    try:
        app = web_app(docker)
        await api.ok("POST", "/v2/apps", app)
        await api.no_deployments(timeout=90)
        old = {t["id"] for t in await api.running("/web", 4, healthy=True, timeout=30)}
        new_version = (await api.ok("PUT", "/v2/apps/web", {"env": {"RELEASE": "2"}}))["version"]

        async def mid_deployment() -> set[str] | None:
            tasks = await api.tasks("/web")
            healthy_new = {t["id"] for t in tasks if t["version"] == new_version
                           and t["state"] == "TASK_RUNNING"
                           and t.get("healthCheckResults", [{}])[0].get("alive")}
            remaining_old = {t["id"] for t in tasks} & old
            return healthy_new if healthy_new and len(remaining_old) >= 2 else None

        adopted = await wait_for(mid_deployment, 60, interval=0.05,
                                 message="a new task healthy while old ones remain")
        proc.kill9()

        proc = await services_process(cluster.master_url, tmp_path / "svc", port).start()
        api = Api(proc.url)
        samples: list[int] = []

        async def finished() -> bool:
            app_now = await api.app("/web")
            samples.append(app_now["tasksHealthy"])
            return not app_now["deployments"]

        await wait_for(finished, 90, interval=0.1, message="the deployment to finish")
        final = await api.running("/web", 4, healthy=True, timeout=30)
        assert {t["version"] for t in final} == {new_version}
        assert adopted <= {t["id"] for t in final}, "tasks adopted, not replaced"
        assert min(samples) >= 3, f"below the healthy floor after the restart: {samples}"
        seen = await framework_tasks(cluster.master_url)
        new = set(seen) - old
        assert len(new) == 4, f"duplicate launches: {sorted(new)}"
        assert all(seen[t]["state"] == "TASK_RUNNING" for t in new)
        assert all(seen[t]["state"] == "TASK_KILLED" for t in old)
    finally:
        # Remove the app, then stop the cluster while the framework still acknowledges
        # the last updates.
        await api.call("DELETE", "/v2/apps/web", force=True)

        async def no_tasks() -> bool:
            return (await api.ok("GET", "/v2/tasks"))["tasks"] == []

        await wait_for(no_tasks, 15, interval=0.1)
        await cluster.stop()
        await proc.stop()
