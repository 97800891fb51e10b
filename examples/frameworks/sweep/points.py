"""What both halves of the sweep share: the grid, the function evaluated at each of
its points, and the JSON a task's ``data`` and a result carry."""

from __future__ import annotations

import math

import msgspec


class Point(msgspec.Struct, frozen=True):
    """One task's work: evaluate the function at (x, y)."""

    index: int
    x: float
    y: float


class Result(msgspec.Struct, frozen=True):
    index: int
    value: float


def grid(count: int, x_range: tuple[float, float] = (-2.0, 2.0),
         y_range: tuple[float, float] = (-1.0, 3.0)) -> list[Point]:
    """``count`` points on a square-ish grid over the ranges, row by row."""
    side = max(1, math.ceil(math.sqrt(count)))

    def at(lo_hi: tuple[float, float], i: int) -> float:
        lo, hi = lo_hi
        return lo + (hi - lo) * i / max(1, side - 1)

    return [Point(index=i, x=at(x_range, i % side), y=at(y_range, i // side))
            for i in range(count)]


def evaluate(point: Point) -> float:
    """Rosenbrock's function: its valley is easy to find, its minimum (0 at (1, 1))
    is not; a stand-in for a simulation run with one set of parameters."""
    return (1.0 - point.x) ** 2 + 100.0 * (point.y - point.x ** 2) ** 2


encode = msgspec.json.encode
decode_point = msgspec.json.Decoder(Point).decode
decode_result = msgspec.json.Decoder(Result).decode
