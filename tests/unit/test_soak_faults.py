"""The soak's fault schedule: the same seed gives the same schedule, faults overlap but
never two on one component at once, each ends inside the phase, and every kind comes
up in a long enough run."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.testing.soak.faults import ALL_KINDS, Fault, FaultRunner, Kind, _busy_keys, schedule
from mesoslite.testing.soak.report import History


@given(seed=st.integers(0, 2**31 - 1), duration=st.floats(10, 600))
@settings(max_examples=200, deadline=None)
def test_schedules_are_replayable_and_never_hit_a_component_twice_at_once(seed, duration):
    faults = schedule(seed, duration)
    assert faults == schedule(seed, duration)
    for f in faults:
        assert 0 < f.start < f.end <= duration + 1e-6
        assert f.duration >= min(3.0, duration - f.start) - 1e-6
    for i, a in enumerate(faults):
        for b in faults[i + 1:]:
            if a.start <= b.start < a.end:  # b starts while a is active
                assert not (_busy_keys(a.kind, a.target) & _busy_keys(b.kind, b.target)), (a, b)


def test_faults_overlap_and_every_kind_comes_up_in_thirty_minutes():
    faults = schedule(17, 1800)
    assert {f.kind for f in faults} == set(ALL_KINDS)
    overlapping = sum(1 for i, a in enumerate(faults) for b in faults[i + 1:]
                      if a.start <= b.start < a.end)
    assert overlapping > len(faults) // 4
    assert schedule(18, 1800) != faults


def test_a_kind_left_out_never_comes_up():
    kinds = tuple(k for k in ALL_KINDS if k is not Kind.RESTART_DOCKER)
    assert all(f.kind is not Kind.RESTART_DOCKER for f in schedule(5, 1800, kinds))


class _Cluster:
    """Stands in for ``SoakCluster`` where only kills and revivals are asked for: as
    in the soak, the load balancer counts as revived once it has synced with the
    services framework, so it cannot come back while that framework is down."""

    def __init__(self, lb_revival: float = 0.0) -> None:
        self.services_up = asyncio.Event()
        self.services_up.set()
        self.lb_revival = lb_revival  # how long the load balancer takes to come back
        self.calls: list[str] = []

    def kill(self, name: str) -> None:
        self.calls.append(f"kill {name}")
        if name == "services":
            self.services_up.clear()

    async def revive(self, name: str) -> None:
        if name == "lb":
            await asyncio.wait_for(self.services_up.wait(), 5)  # as Process.start(60)
            await asyncio.sleep(self.lb_revival)  # a slow start, not a wait for a condition
        else:
            self.services_up.set()
        self.calls.append(f"revived {name}")


async def _run(cluster: _Cluster, faults: list[Fault]) -> FaultRunner:
    runner = FaultRunner(cluster, History(), time.time)  # type: ignore[arg-type]
    await asyncio.wait_for(runner.run(faults, asyncio.get_running_loop().time()), 20)
    return runner


async def test_a_revival_waiting_on_another_fault_does_not_hold_up_that_faults_heal():
    # The load balancer's fault ends while the services framework is still held down:
    # its revival waits for services, whose own revival comes 0.1 s later by the
    # schedule.  Run one after the other, the first waited out its bound (5 s here,
    # 60 s in the soak) and failed: 4 of 20 load balancer restarts in a 30-minute run.
    cluster = _Cluster()
    runner = await _run(cluster, [Fault(0.0, Kind.KILL_LB, "lb", 0.05, 1),
                                  Fault(0.02, Kind.KILL_SERVICES, "services", 0.13, 2)])
    assert runner.errors == []
    assert cluster.calls == ["kill lb", "kill services", "revived services", "revived lb"]
    assert [e.kind for e in runner.history.events].count("heal") == 2


async def test_faults_on_one_component_still_run_in_order():
    # The second kill is due while the first revival is still under way: it waits
    # for it, so the component is never killed twice or revived twice at once.
    cluster = _Cluster(lb_revival=0.2)
    runner = await _run(cluster, [Fault(0.0, Kind.KILL_LB, "lb", 0.02, 1),
                                  Fault(0.05, Kind.KILL_LB, "lb", 0.02, 2)])
    assert runner.errors == []
    assert cluster.calls == ["kill lb", "revived lb", "kill lb", "revived lb"]
    assert runner.active == {}
