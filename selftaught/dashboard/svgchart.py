"""The meta-utility curve's geometry, drawn as inline SVG by ``templates/chart.html`` (no JavaScript,
no chart library).

Val is a solid line, test a dashed one; each point has a vertical standard-error bar and a
``<title>`` tooltip; accepted steps are filled dots, rejected ones hollow. Steps with no score
(no candidate came back) are gaps, not zeros. u(s), the initial solution's score on test, is a
grey dotted reference line when it is known. This module computes coordinates and labels only;
the template writes the markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from selftaught.store.reader_records import IterationRow

__all__ = ["Chart", "Point", "Series", "meta_utility_chart"]

_W, _H = 640, 274
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 16, 28, 34  # the legend sits in the top margin, above the curves
_COLOURS = {"val": "#0969da", "test": "#bf3989"}


@dataclass(frozen=True)
class Point:
    """One scored step: its position, its standard-error bar (top and bottom y) if known, its tooltip."""

    x: float
    y: float
    bar: tuple[float, float] | None
    accepted: bool
    tip: str


@dataclass(frozen=True)
class Series:
    """One split's curve: ``path`` is the SVG path data ("" when nothing was scored)."""

    split: str
    colour: str
    dashed: bool
    path: str
    points: list[Point]


@dataclass(frozen=True)
class Chart:
    """Everything ``chart.html`` draws, in SVG user units."""

    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    top: int
    bottom: int  # y of the x axis
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, int]]
    series: list[Series]
    initial: float | None  # u(s) on test
    initial_y: float


def _x(t: int, max_t: int) -> float:
    span = _W - _LEFT - _RIGHT
    return _LEFT + (span * t / max_t if max_t else span / 2)


def _y(score: float) -> float:
    clipped = min(1.0, max(0.0, score))
    return _TOP + (_H - _TOP - _BOTTOM) * (1.0 - clipped)


def _series(rows: list[IterationRow], split: str, max_t: int) -> Series:
    points: list[Point] = []
    path: list[str] = []
    for row in rows:
        value = getattr(row, split)
        if value is None:
            path.append("")  # a gap: the next point starts a new segment
            continue
        se = getattr(row, f"{split}_se")
        x, y = _x(row.t, max_t), _y(value)
        path.append(f"{x:.1f} {y:.1f}")
        tip = f"t={row.t} {split}={value:.4f}" + (f" ± {se:.4f}" if se is not None else " ± n/a")
        tip += " (accepted)" if row.accepted else " (rejected)"
        bar = (_y(value - se), _y(value + se)) if se else None
        points.append(Point(x, y, bar, bool(row.accepted), tip))
    d, pen_down = [], False
    for point in path:
        if not point:
            pen_down = False
            continue
        d.append(("L" if pen_down else "M") + point)
        pen_down = True
    return Series(split, _COLOURS[split], split == "test", " ".join(d), points)


def meta_utility_chart(rows: list[IterationRow], initial: float | None = None) -> Chart | None:
    """The val and test meta-utility over the iterations in ``rows``, with ``initial`` (u(s) on test)
    as a reference line; None when there are no iterations."""
    if not rows:
        return None
    max_t = max(row.t for row in rows)
    step = max(1, -(-max_t // 12))
    return Chart(
        width=_W, height=_H, left=_LEFT, right=_W - _RIGHT, top=_TOP, bottom=_H - _BOTTOM,
        y_ticks=[(_y(tick), f"{tick:.2f}") for tick in (0.0, 0.25, 0.5, 0.75, 1.0)],
        x_ticks=[(_x(t, max_t), t) for t in range(0, max_t + 1, step)],
        series=[_series(rows, "val", max_t), _series(rows, "test", max_t)],
        initial=initial, initial_y=_y(initial) if initial is not None else 0.0,
    )
