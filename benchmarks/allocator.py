"""Allocator benchmark in the shape of Mesos' ``HierarchicalAllocator_BENCHMARK_Test.DeclineOffers``.

Every agent is ``cpus:24;mem:4096;disk:4096;ports:[31000-32000]`` and already runs
16 cpus / 2014 MB / 1024 MB disk / 16 ports for framework ``i % frameworks``; every
framework declines everything it is offered with an (effectively) permanent filter.
Each round therefore offers every agent to the next framework in DRF order that has
not declined it yet: the allocator's worst case, agents x frameworks filter checks.

Printed per size: seconds for the first round and the mean of the later rounds (the
``allocate`` call only, as Mesos measures), plus the time to take the declines back
(``recover`` with a filter), next to Apache Mesos' ~1.06 s per round at 10,000 x 1,000.

Each size runs in three shapes, one after the other in the same process:

* ``plain``: every framework in role ``*`` (Mesos' benchmark);
* ``weights``: the frameworks spread over 10 roles with weights 1-4, no quota;
* ``quota``: the same roles and weights; roles 0-4 have guarantees their running tasks
  already meet and cpu limits that bind after ~200 more agents each, role 5 has a
  guarantee 1,000 cpus above its use (so stage 1 runs and headroom is held back
  every round);

and the ``quota`` round time is printed as a ratio of the ``plain`` one.

    .venv/bin/python benchmarks/allocator.py            # 1,000 x 100 and 10,000 x 1,000
    .venv/bin/python benchmarks/allocator.py --quick    # small sizes, a few rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesoslite.master.allocator import Allocation, Allocator
from mesoslite.resources import Resources

MESOS_SECONDS_PER_ROUND = 1.06  # Apache Mesos' C++ allocator at 10,000 agents x 1,000 fws
REFUSE_FOREVER = 2**31 - 1  # INT_MAX seconds, as the Mesos benchmark declines with
AGENT = Resources.parse("cpus:24;mem:4096;disk:4096;ports:[31000-32000]")
USED = Resources.parse("cpus:16;mem:2014;disk:1024") + Resources(
    ranges={"ports": [(31000 + 61 * i, 31000 + 61 * i) for i in range(16)]}
)


ROLES = 10
SHAPES = ("plain", "weights", "quota")


def build(agents: int, frameworks: int, shape: str = "plain") -> tuple[Allocator, float]:
    """The cluster of the benchmark in one of ``SHAPES``; returns it and the seconds
    the set-up took."""
    start = time.perf_counter()
    allocator = Allocator()
    ids = [f"framework-{i}" for i in range(frameworks)]
    roles = ["*"] * frameworks if shape == "plain" else [
        f"role-{i % ROLES}" for i in range(frameworks)]
    for framework_id, role in zip(ids, roles):
        allocator.add_framework(framework_id, [role])
    for i in range(agents):
        f = i % frameworks
        allocator.add_agent(f"agent-{i}", AGENT, {(ids[f], roles[f]): USED})
    if shape != "plain":
        for r in range(ROLES):
            allocator.set_role_weight(f"role-{r}", 1.0 + r % 4)
    if shape == "quota":
        add_quota(allocator, agents)
    return allocator, time.perf_counter() - start


def add_quota(allocator: Allocator, agents: int) -> None:
    """Quota relative to what each role's running tasks hold (see the docstring)."""
    per_role = agents // ROLES  # agents whose tasks belong to each role
    used_cpus, used_mem = per_role * USED.scalar("cpus"), per_role * USED.scalar("mem")
    spare_cpus = AGENT.scalar("cpus") - USED.scalar("cpus")
    for r in range(5):
        allocator.set_quota(f"role-{r}", {"cpus": used_cpus / 2, "mem": used_mem / 2},
                            {"cpus": used_cpus + spare_cpus * per_role / 5,
                             "mem": 2 * used_mem})
    allocator.set_quota("role-5", {"cpus": used_cpus + spare_cpus * per_role / 8}, {})


def decline(allocator: Allocator, offers: list[Allocation], now: float) -> float:
    start = time.perf_counter()
    for offer in offers:
        allocator.recover(offer.framework_id, offer.role, offer.agent_id, offer.resources,
                          now, REFUSE_FOREVER)
    return time.perf_counter() - start


def run(agents: int, frameworks: int, rounds: int, shape: str = "plain") -> dict[str, float]:
    allocator, setup = build(agents, frameworks, shape)
    now = 0.0
    allocate_times: list[float] = []
    recover_times: list[float] = []
    offers: list[Allocation] = []
    counts: list[int] = []
    for _ in range(rounds):
        if offers:
            recover_times.append(decline(allocator, offers, now))
        now += 1.0
        start = time.perf_counter()
        offers = allocator.allocate(now)
        allocate_times.append(time.perf_counter() - start)
        counts.append(len(offers))
    later = allocate_times[1:] or allocate_times
    return {
        "setup": setup,
        "first": allocate_times[0],
        "later": statistics.mean(later),
        "recover": statistics.mean(recover_times) if recover_times else 0.0,
        "offers": statistics.mean(counts),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per size")
    parser.add_argument("--size", action="append", default=None, metavar="AGENTSxFRAMEWORKS",
                        help="e.g. 10000x1000 (repeatable)")
    args = parser.parse_args(argv)
    if args.size:
        sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.size]
    elif args.quick:
        sizes = [(1_000, 100), (2_000, 200)]
    else:
        sizes = [(1_000, 100), (10_000, 1_000)]
    rounds = args.rounds or (3 if args.quick else 6)
    print(f"DeclineOffers shape, {rounds} rounds per size; seconds per allocate() round")
    header = (f"{'agents':>7} {'frameworks':>10} {'shape':>8} {'setup':>7} {'offers':>7} "
              f"{'first':>7} {'later':>7} {'recover':>8} {'x plain':>8}  Mesos (10k x 1k)")
    print(header)
    for agents, frameworks in sizes:
        plain = None
        for shape in SHAPES:
            r = run(agents, frameworks, rounds, shape)
            plain = plain or r
            mesos = (f"{MESOS_SECONDS_PER_ROUND:.2f}"
                     if (agents, frameworks) == (10_000, 1_000) else "")
            print(f"{agents:>7} {frameworks:>10} {shape:>8} {r['setup']:>7.3f} "
                  f"{r['offers']:>7.0f} {r['first']:>7.3f} {r['later']:>7.3f} "
                  f"{r['recover']:>8.3f} {r['later'] / plain['later']:>8.2f}  {mesos}",
                  flush=True)


if __name__ == "__main__":
    main()
