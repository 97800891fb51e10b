"""Benchmark of the placement engine against its greedy baseline.

    .venv/bin/python benchmarks/placement.py            # full run (about 4 minutes)
    .venv/bin/python benchmarks/placement.py --quick    # smaller sizes, fewer seeds

Seeded instance families (tasks x agents: 50x20, 200x60, 1000x200, 5000x1000):

* ``uniform``: identical agents, independent uniform cpu/mem/disk/port demands;
* ``anticorr``: anti-correlated cpu and memory (cpu-heavy vs memory-heavy tasks);
* ``small``: many small tasks;
* ``hetero``: three agent sizes (8/16/64 cores);
* ``triplets``: Falkenauer-style triplets: one dimension, every pair of triplets
  fills an agent exactly, so the optimum equals the volume bound;
* ``constrained``: UNIQUE / MAX_PER / GROUP_BY / CLUSTER / LIKE groups, gangs and
  running tasks, generated around a planted complete placement on tight agents
  (so a placement of every task exists).

For each family and size: the lower bound, greedy and engine agents, the ratios
engine/lower bound and engine/greedy, tasks placed by each, p50/p99 wall time of
``place``.  Every answer is checked by the test suite's independent validator.
Then the latency checks of the targets: p99 at 100x100 (with the default 1 s budget,
and with 0.1 s) and at 1000x1000.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mesoslite.placement import Agent, Placement, Problem, Running, Task, place
from tests.unit.placement.validator import validate

PORTS = ((31000, 31999),)
SIZES = ((50, 20), (200, 60), (1000, 200), (5000, 1000))


def _agents(n: int, cpus: float, mem: float, rng: np.random.Generator | None = None,
            racks: int = 0) -> list[Agent]:
    out = []
    for i in range(n):
        attrs = {"hostname": f"h{i}"}
        if racks:
            attrs["rack"] = f"r{i % racks}"
            attrs["zone"] = f"z{(i % racks) % 3}"
        out.append(Agent(f"a{i}", {"cpus": cpus, "mem": mem, "disk": 500_000}, PORTS, attrs))
    return out


def _round(x: np.ndarray, step: float) -> np.ndarray:
    return np.maximum(step, np.round(x / step) * step)


def uniform(n_tasks: int, n_agents: int, rng: np.random.Generator) -> Problem:
    cpus = _round(rng.uniform(0.5, 8, n_tasks), 0.1)
    mem = _round(rng.uniform(512, 32768, n_tasks), 128)
    disk = _round(rng.uniform(100, 20_000, n_tasks), 100)
    ports = rng.integers(0, 3, n_tasks)
    tasks = [Task(f"t{i}", {"cpus": float(cpus[i]), "mem": float(mem[i]), "disk": float(disk[i])},
                  ports=int(ports[i])) for i in range(n_tasks)]
    return Problem(_agents(n_agents, 32, 131072), tasks)


def anticorr(n_tasks: int, n_agents: int, rng: np.random.Generator) -> Problem:
    r = rng.uniform(0, 1, n_tasks)
    cpus = _round(0.25 + 7.75 * r, 0.1)
    mem = _round(512 + 32256 * (1 - r) + rng.normal(0, 1024, n_tasks), 128)
    tasks = [Task(f"t{i}", {"cpus": float(cpus[i]), "mem": float(mem[i])})
             for i in range(n_tasks)]
    return Problem(_agents(n_agents, 32, 131072), tasks)


def small(n_tasks: int, n_agents: int, rng: np.random.Generator) -> Problem:
    cpus = _round(rng.uniform(0.1, 1.0, n_tasks), 0.05)
    mem = _round(rng.uniform(64, 2048, n_tasks), 64)
    tasks = [Task(f"t{i}", {"cpus": float(cpus[i]), "mem": float(mem[i])}, ports=1)
             for i in range(n_tasks)]
    # Smaller agents, so that even the small sizes need several of them.
    return Problem(_agents(n_agents, 8, 16384), tasks)


def hetero(n_tasks: int, n_agents: int, rng: np.random.Generator) -> Problem:
    shapes = [(8, 32768), (16, 65536), (64, 262144)]
    agents = []
    for i in range(n_agents):
        c, m = shapes[int(rng.integers(0, 3))]
        agents.append(Agent(f"a{i}", {"cpus": c, "mem": m}, PORTS, {"hostname": f"h{i}"}))
    cpus = _round(rng.uniform(0.5, 6, n_tasks), 0.1)
    mem = _round(rng.uniform(512, 24576, n_tasks), 128)
    tasks = [Task(f"t{i}", {"cpus": float(cpus[i]), "mem": float(mem[i])})
             for i in range(n_tasks)]
    return Problem(agents, tasks)


def triplets(n_tasks: int, n_agents: int, rng: np.random.Generator) -> Problem:
    """Falkenauer's u/t construction: items 250..500 of a 1000 bin, three per bin.

    Agents hold 2000, so each agent of an optimal answer takes two triplets exactly.
    """
    sizes = []
    for _ in range((n_tasks // 6) * 2):
        first = int(rng.integers(380, 491))
        space = 1000 - first
        second = int(rng.integers(250, space // 2 + 1))
        sizes += [first, second, space - second]
    sizes = rng.permutation(np.array(sizes))
    tasks = [Task(f"t{i}", {"mem": float(s)}) for i, s in enumerate(sizes)]
    agents = [Agent(f"a{i}", {"mem": 2000}, (), {"hostname": f"h{i}"}) for i in range(n_agents)]
    return Problem(agents, tasks)


@dataclass
class _Planted:
    """A complete placement under construction, so the instance is feasible."""

    agents: list[Agent]
    left: np.ndarray  # (A, 2) cpus, mem left

    def room(self, need: np.ndarray) -> np.ndarray:
        return (self.left >= need).all(axis=1)


KINDS = ("unique", "maxper", "groupby", "like", "gang", "cluster")
CONSTRAINTS = {
    "unique": [["hostname", "UNIQUE"]],
    "maxper": [["rack", "MAX_PER", "2"]],
    "groupby": [["rack", "GROUP_BY"]],
    "like": [["zone", "LIKE", "z[01]"], ["hostname", "UNIQUE"]],
    "gang": [["rack", "CLUSTER"]],
    "cluster": [["rack", "CLUSTER", "r0"]],
}
PLANT_FILL = 0.95  # agents of the planted answer are filled up to this


def constrained(n_tasks: int, n_agents: int, rng: np.random.Generator) -> Problem:
    """Constrained groups and gangs planted on agents filled to about 95 %.

    Task sizes scale with tasks per agent, so the planted answer uses nearly every
    agent: placing everything is possible (the planted answer proves it) but tight.
    """
    return planted(n_tasks, n_agents, rng)[0]


def planted(n_tasks: int, n_agents: int, rng: np.random.Generator
            ) -> tuple[Problem, dict[str, str]]:
    """The ``constrained`` problem and its planted answer (task id -> agent id)."""
    racks = max(3, n_agents // 10)
    agents = _agents(n_agents, 32, 131072, racks=racks)
    cap = np.array([32.0, 131072.0])
    plant = _Planted(agents, np.tile(cap * PLANT_FILL, (n_agents, 1)))
    rack_of = np.array([i % racks for i in range(n_agents)])
    mean = np.minimum(0.85 * PLANT_FILL * cap * n_agents / n_tasks, 0.4 * cap)
    tasks: list[Task] = []
    gangs: list[tuple[str, ...]] = []
    running: list[Running] = []
    answer: dict[str, str] = {}
    g = 0
    misses = dict.fromkeys(KINDS, 0)  # a kind that keeps missing (its rack is full) retires
    while len(tasks) < n_tasks and min(misses.values()) < 3:
        kind = KINDS[g % len(KINDS)]
        if misses[kind] >= 3:
            g += 1
            continue
        size = int(min(n_tasks - len(tasks), rng.integers(3, 9)))
        need = np.maximum(mean * rng.uniform(0.4, 1.6, 2), [0.1, 128])
        for _ in range(3):  # shrink until the group fits the planted answer
            need = np.array([_round(need[0], 0.1), _round(need[1], 128)])
            hosts = _planted_hosts(kind, size, need, plant, rack_of, rng, f"g{g}", running)
            if len(hosts) >= min(size, 2):
                break
            need = need / 2
        else:
            misses[kind] += 1
            g += 1
            continue
        made = []
        for a in hosts:
            plant.left[a] -= need
            answer[f"t{len(tasks) + len(made)}"] = agents[a].id
            made.append(Task(f"t{len(tasks) + len(made)}",
                             {"cpus": float(need[0]), "mem": float(need[1])}, group=f"g{g}",
                             constraints=tuple(tuple(c) for c in CONSTRAINTS[kind])))
        tasks += made
        if kind == "gang":
            gangs.append(tuple(t.id for t in made))
        g += 1
    return Problem(agents, tasks, running, gangs), answer


def _planted_hosts(kind, size, need, plant, rack_of, rng, name, running) -> list[int]:
    """Agents for ``size`` tasks honouring the group's constraint (fewer if no room).

    Each agent gets at most one task of the group here; capacity is re-checked as
    the caller subtracts.
    """
    order = rng.permutation(len(plant.agents))
    fits = plant.room(need)
    if kind in ("unique", "like"):
        if kind == "unique" and rng.uniform() < 0.5:  # one already runs somewhere
            host = int(order[-1])
            running.append(Running(name, plant.agents[host].id))
            order = order[:-1]
        ok = [int(a) for a in order if fits[a] and (kind == "unique" or rack_of[a] % 3 < 2)]
        return ok[:size]
    if kind == "maxper":
        per_rack: dict[int, int] = {}
        out = []
        for a in order:
            if fits[a] and per_rack.get(rack_of[a], 0) < 2 and len(out) < size:
                per_rack[rack_of[a]] = per_rack.get(rack_of[a], 0) + 1
                out.append(int(a))
        return out
    if kind == "groupby":  # round robin over racks: counts never differ by more than one
        out = []
        racks = rng.permutation(int(rack_of.max()) + 1)
        while len(out) < size:
            r = racks[len(out) % len(racks)]
            cand = [int(a) for a in order if rack_of[a] == r and fits[a] and int(a) not in out]
            if not cand:
                break
            out.append(cand[0])
        return out
    # CLUSTER: one rack, r0 or that of a random agent with room.
    with_room = order[fits[order]]
    if len(with_room) == 0:
        return []
    rack = 0 if kind == "cluster" else int(rack_of[with_room[0]])
    return [int(a) for a in order if rack_of[a] == rack and fits[a]][:size]


FAMILIES = {
    "uniform": uniform,
    "anticorr": anticorr,
    "small": small,
    "hetero": hetero,
    "triplets": triplets,
    "constrained": constrained,
}


def with_options(problem: Problem, **options) -> Problem:
    fields = {f: getattr(problem, f) for f in problem.__dataclass_fields__}
    fields.update(options)
    return Problem(**fields)


def run_one(problem: Problem) -> tuple[Placement, float]:
    start = time.perf_counter()
    answer = place(problem)
    elapsed = (time.perf_counter() - start) * 1000
    errors = validate(problem, answer)
    if errors:
        raise AssertionError(f"invalid answer: {errors[:3]}")
    return answer, elapsed


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q, method="higher")) if values else float("nan")


def bench_family(name: str, n_tasks: int, n_agents: int, seeds: int, limit: float) -> dict:
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng([zlib.crc32(name.encode()), n_tasks, seed])
        problem = with_options(FAMILIES[name](n_tasks, n_agents, rng), time_limit_s=limit,
                               seed=seed)
        answer, ms = run_one(problem)
        rows.append((problem, answer, ms))
    lb = [a.lower_bound for _, a, _ in rows]
    ours = [a.agents_used for _, a, _ in rows]
    greedy = [a.greedy_agents_used for _, a, _ in rows]
    ms = [m for _, _, m in rows]
    return {
        "family": name,
        "size": f"{len(rows[0][0].tasks)}x{n_agents}",
        "lb": float(np.mean(lb)),
        "greedy": float(np.mean(greedy)),
        "ours": float(np.mean(ours)),
        "ours/lb": float(np.mean([o / max(b, 1) for o, b in zip(ours, lb, strict=True)])),
        "ours/greedy": float(np.mean([o / max(g, 1) for o, g in zip(ours, greedy, strict=True)])),
        "placed": sum(len(a.assignments) for _, a, _ in rows),
        "greedy_placed": sum(a.greedy_placed for _, a, _ in rows),
        "tasks": sum(len(p.tasks) for p, _, _ in rows),
        "optimal": sum(a.status == "optimal" for _, a, _ in rows),
        "n": len(rows),
        "p50": _pct(ms, 50),
        "p99": _pct(ms, 99),
        "worse": sum(
            (len(a.assignments), -a.agents_used) < (a.greedy_placed, -a.greedy_agents_used)
            for _, a, _ in rows
        ),
        "over": sum(m > 1100 * limit for m in ms),
    }


HEADER = (f"{'family':<12}{'size':>14}{'LB':>8}{'greedy':>8}{'ours':>8}{'ours/LB':>9}"
          f"{'ours/gr':>9}{'placed':>12}{'greedy pl.':>12}{'opt':>7}{'p50 ms':>9}{'p99 ms':>9}")


def fmt(row: dict) -> str:
    placed = f"{row['placed']}/{row['tasks']}"
    return (f"{row['family']:<12}{row['size']:>14}{row['lb']:>8.1f}{row['greedy']:>8.1f}"
            f"{row['ours']:>8.1f}{row['ours/lb']:>9.3f}{row['ours/greedy']:>9.3f}"
            f"{placed:>12}{row['greedy_placed']:>12}{row['optimal']:>4}/{row['n']:<2}"
            f"{row['p50']:>9.0f}{row['p99']:>9.0f}")


def latency(n_tasks: int, n_agents: int, runs: int, limit: float) -> dict:
    """Wall ms of ``place`` over seeded uniform and constrained instances (alternating):
    p50/p90/p99, how many took over 100 ms and over the limit + 10 %, how many were
    proven optimal."""
    ms, optimal = [], 0
    for seed in range(runs):
        family = (uniform, constrained)[seed % 2]
        rng = np.random.default_rng([n_tasks, n_agents, seed])
        problem = with_options(family(n_tasks, n_agents, rng), time_limit_s=limit, seed=seed)
        answer, elapsed = run_one(problem)
        ms.append(elapsed)
        optimal += answer.status == "optimal"
    return {"p50": _pct(ms, 50), "p90": _pct(ms, 90), "p99": _pct(ms, 99),
            "over100": sum(m > 100 for m in ms), "late": sum(m > 1100 * limit for m in ms),
            "optimal": optimal}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer seeds")
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append")
    parser.add_argument("--time-limit", type=float, default=1.0, help="seconds per instance")
    parser.add_argument("--large-limit", type=float, default=5.0,
                        help="also run the largest size with this budget (0: skip)")
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
    seeds = {50: 3, 200: 3} if args.quick else {50: 20, 200: 20, 1000: 5, 5000: 2}
    print(f"time_limit_s={args.time_limit}; workers={len(os.sched_getaffinity(0))}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(HEADER)
    worse = over = 0
    runs = [(n, a, args.time_limit) for n, a in sizes]
    if not args.quick and args.large_limit:
        runs.append((*SIZES[-1], args.large_limit))
    for name in args.family or FAMILIES:
        for n_tasks, n_agents, limit in runs:
            row = bench_family(name, n_tasks, n_agents, seeds[n_tasks], limit)
            if limit != args.time_limit:
                row["size"] += f"@{limit:g}s"
            worse, over = worse + row["worse"], over + row["over"]
            print(fmt(row), flush=True)
    print(f"\nanswers worse than greedy: {worse}; over time_limit_s + 10 %: {over}")
    few = args.quick
    checks = [(100, 100, 20 if few else 100, 1.0), (100, 100, 20 if few else 100, 0.1),
              (1000, 1000, 4 if few else 20, 1.0)]
    for n_tasks, n_agents, count, limit in checks:
        row = latency(n_tasks, n_agents, count, limit)
        print(f"latency {n_tasks}x{n_agents} time_limit_s={limit}: runs {count}, "
              f"p50 {row['p50']:.0f} ms, p90 {row['p90']:.0f} ms, p99 {row['p99']:.0f} ms, "
              f"over 100 ms: {row['over100']}, over limit+10 %: {row['late']}, "
              f"optimal: {row['optimal']}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[2]:.1f} (15 min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
