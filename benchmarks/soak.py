"""The chaos soak: a real cluster under continuous work and overlapping faults, its
invariants checked all the time and again at the end (``mesoslite/testing/soak/``).

Three masters on a private PostgreSQL, five agents (three in network namespaces, two
with Docker), the services and batch frameworks and the load balancer, each its own
process.  Faults come from a seeded schedule (printed: replay with ``--seed``):
``kill -9`` of the leader, a follower, an agent, either framework and the load
balancer; PostgreSQL and Docker restarts; full, one-way and flapping partitions; a
full disk.  Prints the faults per kind, the work done, convergence times (p50, p99,
max) and the invariant violations, which must be 0 (exit status 1 otherwise; the
history around each is in WORK/violations/).  Needs root (namespaces, tmpfs), a
Docker engine and PostgreSQL's binaries: run ``scripts/provision`` first.

    .venv/bin/python benchmarks/soak.py --duration 1800           # 30 minutes
    .venv/bin/python benchmarks/soak.py --duration 180 --seed 17  # what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from mesoslite.testing.soak.faults import ALL_KINDS
from mesoslite.testing.soak.run import Options, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=180.0, help="seconds of faults")
    p.add_argument("--seed", type=int, default=None, help="the fault schedule's seed")
    p.add_argument("--work", type=Path, default=None,
                   help="where everything goes (default: a fresh temporary directory, "
                        "kept when a violation was found)")
    p.add_argument("--without", action="append", default=[],
                   choices=[k.value for k in ALL_KINDS], help="leave a fault kind out")
    p.add_argument("--mean-gap", type=float, default=6.0,
                   help="seconds between fault starts, on average")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(
        __import__("os").urandom(3), "big")
    work = args.work or Path(tempfile.mkdtemp(prefix="mesoslite-soak-"))
    kinds = tuple(k for k in ALL_KINDS if k.value not in args.without)
    print(f"soak: seed {seed}, {args.duration:.0f} s of faults, work dir {work}", flush=True)
    report = asyncio.run(run(Options(duration=args.duration, seed=seed, work=work,
                                     kinds=kinds, mean_gap=args.mean_gap)))
    print(report.summary())
    if report.violations:
        print(f"history around each violation: {work / 'violations'}")
        return 1
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
