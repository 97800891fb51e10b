"""The soak's continuous work, as a user of the cluster would do it.

* apps on the services framework: ``/soak/web`` (process tasks, HTTP health checks, a
  secret in its environment, a rolling upgrade strategy; the load balancer's clients
  use it) and ``/soak/box`` (Docker tasks on the root-namespace agents) always exist,
  are scaled and rolled out; short-lived ``/soak/tmp-N`` apps are created and deleted;
* batch: a cron job firing every minute, pipeline runs (two dependent steps), gang
  runs and output runs (Docker tasks on the root-namespace agents printing numbered
  lines to stdout and stderr, interleaved, for a few seconds: ``output`` checks every
  finished one's sandbox files line by line); every task appends its attempt id to a
  side file (``exactly once``);
* the secret behind ``/soak/web`` rotated with ``mesoslite secrets update
  --restart-apps``, each time to a fresh canary value (all are kept for the leak scan);
* clients connecting through the load balancer to ``/soak/web`` all the time.

Every HTTP answer is recorded (``http``) for the 5xx check; connection errors are
not answers (a killed component refuses connections by design).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import aiohttp

from mesoslite.testing.soak.checks import HttpRecord
from mesoslite.testing.soak.cluster import IMAGE, SoakCluster, canary
from mesoslite.testing.soak.report import History

SECRET = "soak-db"
WEB, BOX = "/soak/web", "/soak/box"
PIPELINE, GANG, CRON, OUTPUT = "soak-pipe", "soak-gang", "soak-cron", "soak-out"
OUTPUT_LINES = 40  # per stream, 0.1 s apart: agent kills land mid-output
STRATEGY = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5}
TIMEOUT = aiohttp.ClientTimeout(total=20)


def web_app(instances: int, release: int) -> dict[str, Any]:
    return {
        "id": WEB, "instances": instances, "cpus": 0.05, "mem": 32,
        "cmd": "echo ok > index.html && exec /bin/busybox httpd -f -p $PORT0 -h .",
        "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/",
                          "gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 1,
                          "maxConsecutiveFailures": 3, "delaySeconds": 0}],
        "upgradeStrategy": STRATEGY, "taskKillGracePeriodSeconds": 1,
        "secrets": {"pw": {"source": SECRET, "key": "password"}},
        "env": {"PW": {"secret": "pw"}, "RELEASE": str(release)},
        "labels": {"MESOSLITE_DEPLOYMENT_TIMEOUT_SECONDS": "600"},
    }


def box_app(instances: int, release: int) -> dict[str, Any]:
    return {
        "id": BOX, "instances": instances, "cpus": 0.05, "mem": 32,
        "cmd": "echo ok > /www/index.html && exec httpd -f -p 8080 -h /www",
        "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                      "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}]},
        "networks": [{"mode": "container/bridge"}],
        "constraints": [["hostname", "LIKE", "d[12]"]],
        "upgradeStrategy": STRATEGY, "taskKillGracePeriodSeconds": 1,
        "env": {"RELEASE": str(release)},
    }


def tmp_app(n: int, instances: int) -> dict[str, Any]:
    return {"id": f"/soak/tmp-{n}", "instances": instances, "cpus": 0.05, "mem": 16,
            "cmd": "exec sleep 100000", "upgradeStrategy": STRATEGY,
            "taskKillGracePeriodSeconds": 1}


def side(path: str) -> str:
    return f'echo "$BATCH_ATTEMPT_ID" >> {path}/attempts.log'


def pipeline_job(shared: str) -> dict[str, Any]:
    return {"id": PIPELINE, "cpus": 0.05, "mem": 16, "retries": 3,
            "steps": [
                {"name": "prep", "completions": 2, "command": side(shared)},
                {"name": "work", "depends_on": ["prep"], "completions": 3, "parallelism": 2,
                 "command": side(shared) + "; sleep 2"}]}


def gang_job(shared: str) -> dict[str, Any]:
    return {"id": GANG, "cpus": 0.05, "mem": 16, "retries": 3,
            "steps": [{"name": "gang", "completions": 3, "gang": True,
                       "command": side(shared) + "; sleep 3"}]}


def output_job(shared: str) -> dict[str, Any]:
    """Docker tasks (so only the root-namespace agents run them) that write their side
    line through a mount of the shared folder, then ``expected_output``."""
    script = (side("/shared") + f"; i=0; while [ $i -lt {OUTPUT_LINES} ]; do i=$((i+1)); "
              'echo "$BATCH_ATTEMPT_ID o$i"; echo "$BATCH_ATTEMPT_ID e$i" >&2; sleep 0.1; done')
    return {"id": OUTPUT, "cpus": 0.05, "mem": 16, "retries": 3,
            "steps": [{"name": "print", "image": IMAGE, "completions": 2, "parallelism": 2,
                       "command": script,
                       "volumes": [{"container_path": "/shared", "host_path": shared,
                                    "mode": "RW"}]}]}


def expected_output(attempt_id: str) -> tuple[bytes, bytes]:
    """The stdout and stderr an output task's sandbox holds once it FINISHED."""
    def lines(tag: str) -> bytes:
        return "".join(f"{attempt_id} {tag}{i}\n" for i in range(1, OUTPUT_LINES + 1)).encode()

    return lines("o"), lines("e")


def cron_job(shared: str) -> dict[str, Any]:
    return {"id": CRON, "cpus": 0.05, "mem": 16, "command": side(shared),
            "schedule": {"cron": "* * * * *", "timezone": "UTC",
                         "concurrency_policy": "ALLOW"}}


@dataclass
class Workload:
    """Drives the work on ``cluster``; ``http`` and ``lb_samples`` are what it saw."""

    cluster: SoakCluster
    history: History
    rng: random.Random
    http: list[HttpRecord] = field(default_factory=list)
    lb_samples: list[tuple[float, bool]] = field(default_factory=list)
    answers: list[tuple[str, bytes]] = field(default_factory=list)  # for the leak scan
    secret_values: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    web_instances: int = 3
    box_instances: int = 2
    release: int = 0
    tmp_apps: list[str] = field(default_factory=list)
    cron_created_at: float | None = None
    _tmp_seq: int = 0
    _session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------ HTTP, recorded

    async def call(self, component: str, method: str, url: str,
                   body: Any = None) -> tuple[int, Any] | None:
        """One request; (status, JSON or text), or None when nothing answered."""
        assert self._session is not None
        try:
            async with self._session.request(method, url, json=body, timeout=TIMEOUT,
                                             allow_redirects=True) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None
        self.http.append(HttpRecord(time.time(), component, method, url, resp.status))
        self.answers.append((f"{method} {url} -> {resp.status}", raw))
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    async def master(self, method: str, path: str, body: Any = None) -> tuple[int, Any] | None:
        url = await self.cluster.leader_url()
        return None if url is None else await self.call("master", method, url + path, body)

    async def services(self, method: str, path: str,
                       body: Any = None) -> tuple[int, Any] | None:
        return await self.call("services", method, self.cluster.services.url + path, body)

    async def batch(self, method: str, path: str, body: Any = None) -> tuple[int, Any] | None:
        return await self.call("batch", method, self.cluster.batch.url + path, body)

    # ------------------------------------------------------------ set-up

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def setup(self) -> None:
        value = canary()
        self.secret_values.append(value)
        answer = await self.master("POST", "/master/secrets",
                                   {"name": SECRET, "string_data": {"password": value}})
        _expect(answer, (201,), "creating the secret")
        _expect(await self.services("POST", "/v2/apps", web_app(self.web_instances, 0)),
                (201,), "creating /soak/web")
        _expect(await self.services("POST", "/v2/apps", box_app(self.box_instances, 0)),
                (201,), "creating /soak/box")
        shared = str(self.cluster.shared)
        for job in (pipeline_job(shared), gang_job(shared), cron_job(shared),
                    output_job(shared)):
            _expect(await self.batch("PUT", f"/mesoslite/v1/jobs/{job['id']}", job),
                    (200, 201), f"creating job {job['id']}")
        self.cron_created_at = time.time()
        self.history.add(time.time(), "action", "set up: secret, 2 apps, 4 jobs")

    # ------------------------------------------------------------ the actions

    async def step(self) -> str:
        """One action chosen at random; returns its name."""
        actions = [self.scale_web, self.roll_web, self.roll_box, self.scale_box,
                   self.create_tmp, self.delete_tmp, self.run_pipeline, self.run_gang,
                   self.run_output, self.rotate_secret]
        weights = [3, 3, 2, 1, 2, 2, 3, 2, 2, 1]
        action = self.rng.choices(actions, weights)[0]
        name = action.__name__
        try:
            detail = await action()
        except Exception as exc:  # noqa: BLE001 - a failed action is recorded, not fatal
            detail = f"failed: {exc!r}"
        self.counts[name] += 1
        self.history.add(time.time(), "action", f"{name}: {detail}")
        return name

    async def scale_web(self) -> str:
        self.web_instances = self.rng.randint(2, 4)
        answer = await self.services("PUT", f"/v2/apps{WEB}?force=true",
                                     {"instances": self.web_instances})
        return f"{self.web_instances} instances -> {_status(answer)}"

    async def scale_box(self) -> str:
        self.box_instances = self.rng.randint(1, 3)
        answer = await self.services("PUT", f"/v2/apps{BOX}?force=true",
                                     {"instances": self.box_instances})
        return f"{self.box_instances} instances -> {_status(answer)}"

    async def roll_web(self) -> str:
        self.release += 1
        answer = await self.services("PUT", f"/v2/apps{WEB}?force=true",
                                     {"env": {"PW": {"secret": "pw"},
                                              "RELEASE": str(self.release)}})
        return f"release {self.release} -> {_status(answer)}"

    async def roll_box(self) -> str:
        self.release += 1
        answer = await self.services("PUT", f"/v2/apps{BOX}?force=true",
                                     {"env": {"RELEASE": str(self.release)}})
        return f"release {self.release} -> {_status(answer)}"

    async def create_tmp(self) -> str:
        if len(self.tmp_apps) >= 2:
            return "enough"
        self._tmp_seq += 1
        app = tmp_app(self._tmp_seq, self.rng.randint(1, 2))
        answer = await self.services("POST", "/v2/apps", app)
        if answer is not None and answer[0] == 201:
            self.tmp_apps.append(app["id"])
        return f"{app['id']} -> {_status(answer)}"

    async def delete_tmp(self) -> str:
        if not self.tmp_apps:
            return "none"
        app_id = self.tmp_apps[0]
        answer = await self.services("DELETE", f"/v2/apps{app_id}?force=true")
        if answer is not None and answer[0] in (200, 404):
            self.tmp_apps.remove(app_id)
        return f"{app_id} -> {_status(answer)}"

    async def run_pipeline(self) -> str:
        return f"-> {_status(await self.batch('POST', f'/mesoslite/v1/jobs/{PIPELINE}/runs'))}"

    async def run_gang(self) -> str:
        return f"-> {_status(await self.batch('POST', f'/mesoslite/v1/jobs/{GANG}/runs'))}"

    async def run_output(self) -> str:
        return f"-> {_status(await self.batch('POST', f'/mesoslite/v1/jobs/{OUTPUT}/runs'))}"

    async def rotate_secret(self) -> str:
        leader = await self.cluster.leader_url()
        if leader is None:
            return "no leader"
        value = canary()
        self.secret_values.append(value)
        path = self.cluster.work / "secret-value"
        path.write_text(value)
        path.chmod(0o600)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mesoslite.cli.main", "secrets", "update", SECRET,
            "--from-file", f"password={path}", "--restart-apps", "--master", leader,
            "--services", self.cluster.services.url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
            path.unlink(missing_ok=True)
        # the CLI's output is kept for the leak scan, not shown here
        await asyncio.to_thread(_append, self.cluster.work / "cli-output.log", out)
        return f"exit {proc.returncode}"

    # ------------------------------------------------------------ load balancer clients

    async def service_port(self) -> int | None:
        answer = await self.services("GET", f"/v2/apps{WEB}")
        if answer is None or answer[0] != 200:
            return None
        app = answer[1]["app"]
        ports = app.get("ports") or [p.get("port") for p in app.get("portDefinitions", [])]
        return ports[0] if ports and ports[0] else None

    async def lb_clients(self, stop: asyncio.Event, interval: float = 0.2) -> None:
        """One short HTTP/1.0 request through the load balancer every ``interval`` s
        until ``stop``; each sample is (time, answered 200)."""
        port = None
        while not stop.is_set():
            if port is None:
                port = await self.service_port()
            if port is not None:
                self.lb_samples.append((time.time(), await _get_ok(port)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


async def _get_ok(port: int) -> bool:
    try:
        async with asyncio.timeout(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET / HTTP/1.0\r\n\r\n")
                head = await reader.readline()
            finally:
                writer.close()
        return b" 200 " in head
    except (OSError, TimeoutError):
        return False


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def _status(answer: tuple[int, Any] | None) -> str:
    return "no answer" if answer is None else str(answer[0])


def _expect(answer: tuple[int, Any] | None, ok: tuple[int, ...], what: str) -> None:
    if answer is None or answer[0] not in ok:
        raise RuntimeError(f"{what}: {answer!r}")
