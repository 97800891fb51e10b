"""One soak run: the cluster, the work, the faults, the checks, the report.

Phases:

1. **Up**: the cluster starts (``cluster.py``), the work is set up (``workload.py``)
   and the apps reach their targets.
2. **Faults** (``duration`` s): the seeded schedule (``faults.py``) runs while the
   work goes on and the load balancer's clients connect; every ``check_every`` s the
   live copies, the acknowledgement logs and the HTTP answers are checked, and a
   fault-free moment when everything is back at its target records a convergence
   time (since the last heal).
3. **Convergence**: every fault healed and every part running, the cluster must reach
   its targets within ``converge_limit`` s (every agent active, every app running
   and healthy at its instance count, no deployment open); the time is printed.
4. **Final checks**: the same invariants once more, then batch (every attempt ran
   exactly once; every finished output task's sandbox holds its whole output; every
   cron tick run or recorded as missed) and the leak scan (no secret value in any
   log, file or recorded answer).

Every violation is recorded with the history around it (``violations/*.jsonl`` in
the work dir); the run's whole history is in ``history.jsonl``, the load balancer
clients' samples in ``lb-samples.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mesoslite.testing.soak import checks, observe
from mesoslite.testing.soak.acks import ack_violations, read_ack_log
from mesoslite.testing.soak.cluster import ROOT_AGENTS, SoakCluster
from mesoslite.testing.soak.faults import ALL_KINDS, FaultRunner, Kind, schedule
from mesoslite.testing.soak.report import History, Report, Violation
from mesoslite.testing.soak.workload import (
    BOX,
    CRON,
    OUTPUT,
    OUTPUT_LINES,
    WEB,
    Workload,
    expected_output,
)


@dataclass
class Options:
    duration: float = 180.0  # seconds of faults
    seed: int = 17
    work: Path = Path("/tmp/mesoslite-soak")
    kinds: tuple[Kind, ...] = ALL_KINDS
    mean_gap: float = 6.0  # between fault starts, on average
    action_every: float = 3.0  # a workload action, on average
    check_every: float = 2.0
    converge_limit: float = 240.0
    copies_grace: float = 30.0  # a healed agent's old copies must be gone by then
    clock: Callable[[], float] = field(default=time.time)


async def run(options: Options) -> Report:
    """Run the soak; the report holds every violation (none: the run passed)."""
    report = Report(seed=options.seed, duration=options.duration)
    history = History()
    rng = random.Random(options.seed)
    faults = schedule(options.seed, options.duration, options.kinds, options.mean_gap)
    options.work.mkdir(parents=True, exist_ok=True)
    async with SoakCluster(options.work) as cluster, Workload(cluster, history, rng) as work:
        runner = FaultRunner(cluster, history, options.clock)
        soak = _Soak(options, cluster, work, runner, history, report)
        await work.setup()
        history.add(options.clock(), "observe", "waiting for the first convergence")
        if await soak.converged_within(options.converge_limit) is None:
            report.notes.append("the cluster never reached its targets before the faults")
        await soak.fault_phase(faults)
        await soak.final_phase()
    _dump(history, report, options.work)
    return report


@dataclass
class _Soak:
    options: Options
    cluster: SoakCluster
    work: Workload
    runner: FaultRunner
    history: History
    report: Report
    copies: checks.CopiesChecker = field(init=False)
    limits_seen: dict[str, tuple[float, int]] = field(default_factory=dict)
    measured: float = 0.0  # heals up to here have their recovery time
    observations: int = 0
    most_copies: int = 0

    def __post_init__(self) -> None:
        self.copies = checks.CopiesChecker(grace=self.options.copies_grace)

    # ------------------------------------------------------------ phases

    async def fault_phase(self, faults: list) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        began = loop.time()
        jobs = [asyncio.create_task(self.work.lb_clients(stop)),
                asyncio.create_task(self._act(stop)),
                asyncio.create_task(self._watch(stop))]
        try:
            await self.runner.run(faults, began)
            remaining = began + self.options.duration - loop.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), remaining)
        finally:
            await self.runner.heal_all()
            stop.set()
            await asyncio.gather(*jobs, return_exceptions=True)
        for fault in faults:
            self.report.faults[fault.kind.value] += 0  # listed even when none ran
        for event in self.history.events:
            if event.kind == "fault" and "fault" in event.data:
                self.report.faults[event.data["fault"]] += 1
        self.report.actions.update(self.work.counts)
        for error in self.runner.errors:
            self.report.notes.append(f"fault error: {error}")

    async def final_phase(self) -> None:
        for name in list(self.cluster.held):
            with contextlib.suppress(Exception):
                await self.cluster.revive(name)
        await self.cluster.revive_exited()
        took = await self.converged_within(self.options.converge_limit)
        self.report.final_convergence = took
        if took is None:
            self._violate(Violation("convergence", self.options.clock(),
                                    f"not back to every target within "
                                    f"{self.options.converge_limit:.0f} s after the faults",
                                    {"why": await self._why_not_converged()}))
        await self._check_now(final=True)
        await self._check_batch()
        await self._check_secrets()
        samples = self._lb_samples()
        self.report.lb = checks.lb_figures(samples)
        self.report.lb_by_fault = checks.lb_errors_by_fault(self.work.lb_samples,
                                                            self.runner.kinds)
        _write_lb_samples(self.options.work / "lb-samples.jsonl", samples)
        acks = sum(len(read_ack_log(log)) for log in self.cluster.ack_logs())
        self.report.notes.append(
            f"checked: {self.observations} observations of live copies (at most "
            f"{self.most_copies} tasks live), {acks} acknowledgements, "
            f"{len(self.work.http)} API answers")

    # ------------------------------------------------------------ background loops

    async def _act(self, stop: asyncio.Event) -> None:
        rng = self.work.rng
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.expovariate(1 / self.options.action_every))
            if not stop.is_set():
                await self.work.step()

    async def _watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.check_every)
            revived = await self.cluster.revive_exited()
            for name in revived:
                self.history.add(self.options.clock(), "observe", f"{name} exited; started again")
            await self._check_now()
            await self._note_convergence()

    async def _note_convergence(self) -> None:
        """For every heal since the last recovery, the time until the cluster was
        whole again: every agent active and every app with at least its instance
        count running and healthy (other faults may be active meanwhile)."""
        heals = [e.at for e in self.history.events if e.kind == "heal" and e.at > self.measured]
        if not heals or not await self._recovered():
            return
        now = self.options.clock()
        self.report.convergence.extend(now - t for t in heals)
        self.measured = max(heals)

    # ------------------------------------------------------------ checks

    def _violate(self, violation: Violation) -> None:
        self.report.violations.append(violation)
        self.history.add(violation.at, "violation", f"[{violation.invariant}] "
                         f"{violation.message}", **violation.details)
        folder = self.options.work / "violations"
        folder.mkdir(exist_ok=True)
        self.history.dump(folder / f"{len(self.report.violations):03d}-"
                          f"{violation.invariant}.jsonl", violation.at)

    async def _check_now(self, final: bool = False) -> None:
        now = self.options.clock()
        copies = await asyncio.to_thread(self._live_copies)
        limits = await self._limits(now)
        self.observations += 1
        self.most_copies = max(self.most_copies, sum(len(t) for t in copies.values()))
        self.history.add(now, "observe", "live copies", cut=sorted(self.runner.cut),
                         copies={a: len(t) for a, t in copies.items()}, limits=limits)
        if limits is not None:
            for v in self.copies.observe(now, copies, limits, set(self.runner.cut),
                                         dict(self.runner.healed)):
                self._violate(v)
        if final:
            for v in self.copies.finish():
                self._violate(v)
        seen = {(v.invariant, v.message) for v in self.report.violations}
        for log in self.cluster.ack_logs():
            for v in ack_violations(log):
                if (v.invariant, v.message) not in seen:
                    self._violate(v)
        for v in checks.check_http(self.work.http, self.runner.windows):
            if (v.invariant, v.message) not in seen:
                self._violate(v)
                seen.add((v.invariant, v.message))

    def _live_copies(self) -> dict[str, set[str]]:
        dirs = {n: self.cluster.agent_dir(n) for n in self.cluster.agent_names()}
        copies = observe.live_process_tasks(dirs)
        with contextlib.suppress(Exception):  # the engine may be restarting
            import docker

            client = docker.from_env(timeout=10)
            try:
                runtime = {n: (dirs[n] / "runtime_id").read_text().strip()
                           for n in ROOT_AGENTS if (dirs[n] / "runtime_id").exists()}
                for agent, tasks in observe.live_docker_tasks(client, runtime).items():
                    copies.setdefault(agent, set()).update(tasks)
            finally:
                client.close()
        return copies

    async def _limits(self, now: float) -> dict[str, int] | None:
        """The most live copies each app may have now (None: the services framework
        did not answer).  An app deleted a moment ago keeps its last limit for the
        grace period while its tasks are killed."""
        apps = await self.work.services("GET", "/v2/apps?embed=apps.counts")
        deployments = await self.work.services("GET", "/v2/deployments")
        if apps is None or apps[0] != 200 or deployments is None or deployments[0] != 200:
            return None
        deploying = {a for d in deployments[1] for a in d.get("affectedApps", [])}
        limits: dict[str, int] = {}
        for app in apps[1]["apps"]:
            strategy = app.get("upgradeStrategy") or {}
            before = self.limits_seen.get(app["id"], (now, app["instances"]))[1]
            limit = checks.allowed_copies(
                before, app["instances"], strategy.get("minimumHealthCapacity", 1.0),
                strategy.get("maximumOverCapacity", 1.0), app["id"] in deploying)
            # while it deploys, the largest count of the last minute is the "before"
            kept = self.limits_seen.get(app["id"])
            if app["id"] in deploying and kept is not None and now - kept[0] < 60:
                limit = max(limit, kept[1])
            limits[app["id"]] = limit
            if app["id"] not in deploying:
                self.limits_seen[app["id"]] = (now, app["instances"])
        for app_id, (at, count) in self.limits_seen.items():
            if app_id not in limits and now - at < self.options.copies_grace:
                limits[app_id] = count
        return limits

    async def _check_batch(self) -> None:
        db = self.cluster.batch.db
        # the side file before and after one snapshot of the store (observe.batch_view)
        view = await asyncio.to_thread(observe.batch_view,
                                       self.cluster.shared / "attempts.log", db)
        for v in checks.check_exactly_once(view.side_after, view.attempts,
                                           side_ids_before=view.side_before, runs=view.runs,
                                           now=self.options.clock()):
            self._violate(v)
        await self._check_output(view)
        # the cron job from the store: the API pages runs, and the job's own creation
        # time (not the harness's) is where its schedule starts
        job = await asyncio.to_thread(observe.batch_job, db, CRON)
        runs = await asyncio.to_thread(observe.batch_runs, db, CRON)
        if job is None:
            self._violate(Violation("cron", self.options.clock(), "the cron job is gone"))
            return
        spec = job.get("spec", job)
        schedules = spec.get("schedules") or [spec.get("schedule") or {}]
        sched = schedules[0]
        sid = sched.get("id", "default")
        result = checks.check_cron(
            sched.get("cron", "* * * * *"), sched.get("timezone", "UTC"),
            float(job.get("created_at", 0.0)), self.options.clock(), runs,
            job.get("skips", []), sid, cursor=(job.get("cursors") or {}).get(sid))
        for v in result.violations:
            self._violate(v)
        self.report.notes.append(
            f"cron: {result.ticks} ticks checked, {result.pending} not yet due"
            + (f", {result.unverifiable} unverifiable (skip entries dropped)"
               if result.unverifiable else ""))

    async def _check_output(self, view: observe.BatchView) -> None:
        runs = {r["id"] for r in view.runs if r.get("job_id") == OUTPUT}
        finished = [a for a in view.attempts
                    if a["run_id"] in runs and a["state"] == "FINISHED"]
        dirs = [self.cluster.agent_dir(name) for name in self.cluster.agent_names()]
        outputs = await asyncio.to_thread(observe.sandbox_outputs, dirs,
                                          [a["id"] for a in finished])
        for v in checks.check_output(finished, outputs, expected_output):
            self._violate(v)
        self.report.notes.append(
            f"output: {len(finished)} finished Docker tasks' stdout and stderr checked "
            f"line by line ({2 * OUTPUT_LINES * len(finished)} lines)")

    async def _check_secrets(self) -> None:
        def scan() -> list[Violation]:
            roots = [self.options.work]
            if self.cluster.pg is not None:
                roots.append(self.cluster.pg.dir)
            scanned = Counter()

            def counted() -> Iterator[tuple[str, bytes]]:
                for where, content in observe.file_chunks(roots):
                    scanned["files"] += 1
                    yield where, content
                for where, content in self.work.answers:
                    scanned["answers"] += 1
                    yield where, content

            found = checks.scan_for_secrets(counted(), self.work.secret_values)
            self.report.notes.append(
                f"leak scan: {len(self.work.secret_values)} secret values looked for in "
                f"{scanned['files']} files and {scanned['answers']} API answers")
            return found

        for v in await asyncio.to_thread(scan):
            self._violate(v)

    # ------------------------------------------------------------ convergence

    async def converged_within(self, limit: float) -> float | None:
        start = self.options.clock()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            await self.cluster.revive_exited()
            if await self._converged():
                return self.options.clock() - start
            await asyncio.sleep(1.0)  # polling the cluster, bounded by the deadline
        return None

    async def _converged(self) -> bool:
        return not await self._why_not_converged()

    async def _recovered(self) -> bool:
        state = await self.cluster.master_state()
        if state is None:
            return False
        active = {a["hostname"] for a in state["slaves"] if a.get("active")}
        if not set(self.cluster.agent_names()) <= active:
            return False
        apps = await self.work.services("GET", "/v2/apps?embed=apps.counts")
        if apps is None or apps[0] != 200:
            return False
        for app in apps[1]["apps"]:
            ready = app.get("tasksHealthy", 0) if app.get("healthChecks") else app.get(
                "tasksRunning", 0)
            if ready < app["instances"]:
                return False
        return True

    async def _why_not_converged(self) -> list[str]:
        why = []
        state = await self.cluster.master_state()
        if state is None:
            return ["no leading master"]
        active = {a["hostname"] for a in state["slaves"] if a.get("active")}
        missing = set(self.cluster.agent_names()) - active
        if missing:
            why.append(f"agents not active: {sorted(missing)}")
        apps = await self.work.services("GET", "/v2/apps?embed=apps.counts")
        deployments = await self.work.services("GET", "/v2/deployments")
        if apps is None or apps[0] != 200 or deployments is None or deployments[0] != 200:
            return [*why, "the services framework does not answer"]
        if deployments[1]:
            why.append(f"{len(deployments[1])} deployments open")
        for app in apps[1]["apps"]:
            want = app["instances"]
            healthy = app.get("tasksHealthy", 0) if app.get("healthChecks") else app.get(
                "tasksRunning", 0)
            if app.get("tasksRunning") != want or healthy != want:
                why.append(f"{app['id']}: {app.get('tasksRunning')} running, "
                           f"{healthy} healthy of {want}")
        for app_id in (WEB, BOX):
            if not any(a["id"] == app_id for a in apps[1]["apps"]):
                why.append(f"{app_id} is gone")
        return why

    def _lb_samples(self) -> list[tuple[float, bool, bool, bool]]:
        """Each client sample tagged: during a rolling upgrade of /soak/web, during a
        fault."""
        rolls = [e.at for e in self.history.events
                 if e.kind == "action" and e.what.startswith(("roll_web", "rotate_secret",
                                                              "scale_web"))]
        windows = self.runner.windows

        def in_fault(t: float) -> bool:
            return any(a <= t <= b for a, b, _ in windows)

        def in_roll(t: float) -> bool:
            return any(r <= t <= r + 30 for r in rolls)

        return [(t, ok, in_roll(t), in_fault(t)) for t, ok in self.work.lb_samples]


def _write_lb_samples(path: Path, samples: list[tuple[float, bool, bool, bool]]) -> None:
    """The load balancer clients' samples as JSON lines, for a closer look."""
    with open(path, "w") as f:
        f.writelines(json.dumps({"at": t, "ok": ok, "upgrade": roll, "fault": fault}) + "\n"
                     for t, ok, roll, fault in samples)


def _dump(history: History, report: Report, work: Path) -> None:
    history.dump(work / "history.jsonl")
    (work / "report.txt").write_text(report.summary() + "\n")
