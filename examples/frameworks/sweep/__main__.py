"""``python examples/frameworks/sweep --master URL [--points N]`` (or, with
examples/frameworks on PYTHONPATH, ``python -m sweep``): evaluate N points on the
cluster, print the best one; exits 0 when every point has a result."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

if not __package__:  # run as a directory: import the rest as the package it is
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from mesoslite.framework import FrameworkRunner  # after the path is set
from mesoslite.messages.mesos import FrameworkInfo
from sweep.points import grid
from sweep.scheduler import Sweep


def main() -> int:
    parser = argparse.ArgumentParser(description="A parameter sweep with its own executor.")
    parser.add_argument("--master", default="http://127.0.0.1:5050", help="URL(s): a,b")
    parser.add_argument("--points", type=int, default=100, choices=range(1, 100_001),
                        metavar="N", help="points to evaluate (one task each)")
    args = parser.parse_args()
    sweep = Sweep(grid(args.points))
    info = FrameworkInfo(user=getpass.getuser(), name="sweep")
    asyncio.run(FrameworkRunner(sweep, info, args.master).run())
    if sweep.results:
        best = min(sweep.results, key=sweep.results.__getitem__)
        point = grid(args.points)[best]
        print(f"{len(sweep.results)}/{sweep.total} points, {sweep.by_message} results first "
              f"by message; best f({point.x:g}, {point.y:g}) = {sweep.results[best]:g}")
    return 0 if len(sweep.results) == sweep.total else 1


if __name__ == "__main__":
    raise SystemExit(main())
