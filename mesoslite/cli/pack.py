"""``mesoslite pack INSTANCE.json``: run the placement engine on a JSON instance.

Prints the answer as JSON (see docs/placement.md).  ``solve_ms`` is the wall time
of the whole ``place`` call as measured here (the engine itself reads no clock).
An unreadable or invalid instance prints one line naming the field and exits 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.command("pack")
@click.argument("instance", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--time-limit", type=float, default=None,
              help="Seconds for the answer (overrides the instance's time_limit_s).")
@click.option("--seed", type=int, default=None, help="Solver seed (overrides the instance's).")
@click.option("--reasons", is_flag=True, help="Also print each unplaced task's counted reasons.")
def pack(instance: Path, time_limit: float | None, seed: int | None, reasons: bool) -> None:
    """Place the tasks of INSTANCE.json on its agents and print the answer as JSON."""
    # Imported here so `mesoslite --help` does not load numpy and OR-Tools.
    from mesoslite.placement import PlacementInputError, place, problem_from_json

    try:
        text = instance.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{instance}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{instance}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if isinstance(data, dict):
        if time_limit is not None:
            data["time_limit_s"] = time_limit
        if seed is not None:
            data["seed"] = seed
    try:
        problem = problem_from_json(data)
    except PlacementInputError as exc:
        _fail(str(exc))
    started = time.perf_counter()
    answer = place(problem)
    elapsed_ms = (time.perf_counter() - started) * 1000
    out = answer.to_json()
    out["solve_ms"] = round(elapsed_ms, 3)
    out["search_ms"] = round(answer.solve_ms, 3)
    if reasons:
        out["reasons"] = {
            task: [{"reason": r.reason.value if hasattr(r.reason, "value") else r.reason,
                    "agents": r.agents, "detail": r.detail} for r in why]
            for task, why in answer.why.items()
        }
    click.echo(json.dumps(out, indent=2, sort_keys=False))
