"""The lines of ``mesoslite get``: one plain line per object, with its state.

    app /redis-master  running  1/1 running, 1 healthy  k8s.gcr.io/redis:e2e
    pod /web-and-writer  STABLE  1/1 instances
    job print-greeting  SUCCEEDED  last run print-greeting-2026...
    config greeting  version 1  keys: LEVEL, message
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mesoslite.cli.client import request


def app_lines(servers: Any) -> list[str]:
    data = request("GET", f"{servers.services}/v2/apps")
    lines = []
    for app in data.get("apps", []):
        instances, running = app.get("instances", 0), app.get("tasksRunning", 0)
        if app.get("deployments"):
            state = "deploying"
        elif instances == 0:
            state = "suspended"
        else:
            state = "running" if running >= instances else "waiting"
        counts = f"{running}/{instances} running"
        if app.get("healthChecks"):
            counts += f", {app.get('tasksHealthy', 0)} healthy"
        docker = (app.get("container") or {}).get("docker") or {}
        runs = docker.get("image") or app.get("cmd") or " ".join(app.get("args") or [])
        lines.append(f"app {app['id']}  {state}  {counts}  {runs[:60]}")
    return lines


def pod_lines(servers: Any) -> list[str]:
    statuses = request("GET", f"{servers.services}/v2/pods/::status") or []
    lines = []
    for status in statuses:
        spec = status.get("spec") or {}
        wanted = (spec.get("scaling") or {}).get("instances", 1)
        running = sum(1 for i in status.get("instances", [])
                      if str(i.get("status", "")).upper() in ("STABLE", "RUNNING"))
        lines.append(f"pod {status.get('id')}  {status.get('status', '?')}  "
                     f"{running}/{wanted} instances")
    return lines


def job_lines(servers: Any) -> list[str]:
    jobs = request("GET", f"{servers.batch}/mesoslite/v1/jobs") or []
    runs = request("GET", f"{servers.batch}/mesoslite/v1/runs?limit=200") or []
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:  # newest first
        latest.setdefault(str(run.get("job_id")), run)
    lines = []
    for job in jobs:
        run = latest.get(str(job.get("id")))
        state = "ACTIVE" if job.get("active_runs") else (run or {}).get("state") or "no runs"
        schedules = [s.get("cron") for s in job.get("schedules", []) if s.get("enabled", True)]
        extra = f"  schedule {', '.join(schedules)}" if schedules else ""
        last = f"  last run {run['id']}" if run else ""
        lines.append(f"job {job.get('id')}  {state}{last}{extra}")
    return lines


def _stored_lines(kind: str) -> Callable[[Any], list[str]]:
    def lines(servers: Any) -> list[str]:
        plural = kind + "s"
        items = request("GET", f"{servers.master}/master/{plural}").get(plural, [])
        return [f"{kind} {item['name']}  version {item['version']}  keys: "
                f"{', '.join(item.get('keys', []))}"
                + ("" if item.get("usable", True) else "  (not usable: another key)")
                for item in items]

    return lines


LISTERS: dict[str, Callable[[Any], list[str]]] = {
    "apps": app_lines, "pods": pod_lines, "jobs": job_lines,
    "configs": _stored_lines("config"), "secrets": _stored_lines("secret"),
}
