"""Allocator benchmark in the shape of Mesos' ``HierarchicalAllocator_BENCHMARK_Test.DeclineOffers``.

Every agent is ``cpus:24;mem:4096;disk:4096;ports:[31000-32000]`` and already runs
16 cpus / 2014 MB / 1024 MB disk / 16 ports for framework ``i % frameworks``; every
framework declines everything it is offered with an (effectively) permanent filter.
Each round therefore offers every agent to the next framework in DRF order that has
not declined it yet: the allocator's worst case, agents x frameworks filter checks.

Printed per size: seconds for the first round and the mean of the later rounds (the
``allocate`` call only, as Mesos measures), plus the time to take the declines back
(``recover`` with a filter), next to Apache Mesos' ~1.06 s per round at 10,000 x 1,000.

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


def build(agents: int, frameworks: int) -> tuple[Allocator, float]:
    """The cluster of the benchmark; returns it and the seconds the set-up took."""
    start = time.perf_counter()
    allocator = Allocator()
    ids = [f"framework-{i}" for i in range(frameworks)]
    for framework_id in ids:
        allocator.add_framework(framework_id, ["*"])
    for i in range(agents):
        allocator.add_agent(f"agent-{i}", AGENT, {(ids[i % frameworks], "*"): USED})
    return allocator, time.perf_counter() - start


def decline(allocator: Allocator, offers: list[Allocation], now: float) -> float:
    start = time.perf_counter()
    for offer in offers:
        allocator.recover(offer.framework_id, offer.role, offer.agent_id, offer.resources,
                          now, REFUSE_FOREVER)
    return time.perf_counter() - start


def run(agents: int, frameworks: int, rounds: int) -> dict[str, float]:
    allocator, setup = build(agents, frameworks)
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
    header = (f"{'agents':>7} {'frameworks':>10} {'setup':>7} {'offers':>7} "
              f"{'first':>7} {'later':>7} {'recover':>8}  Mesos (10k x 1k)")
    print(header)
    for agents, frameworks in sizes:
        r = run(agents, frameworks, rounds)
        mesos = f"{MESOS_SECONDS_PER_ROUND:.2f}" if (agents, frameworks) == (10_000, 1_000) else ""
        print(f"{agents:>7} {frameworks:>10} {r['setup']:>7.3f} {r['offers']:>7.0f} "
              f"{r['first']:>7.3f} {r['later']:>7.3f} {r['recover']:>8.3f}  {mesos}",
              flush=True)


if __name__ == "__main__":
    main()
