"""The meta-utility curve as inline SVG, drawn on the server (no JavaScript, no chart library).

Val is a solid line, test a dashed one; each point has a vertical standard-error bar and a
``<title>`` tooltip; accepted steps are filled dots, rejected ones hollow. Steps with no score
(no candidate came back) are gaps, not zeros. u(s), the initial solution's score on test, is a
grey dotted reference line when it is known.
"""

from __future__ import annotations

from selftaught.dashboard.html import esc
from selftaught.store.reader_records import IterationRow

__all__ = ["meta_utility_svg"]

_W, _H = 640, 274
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 16, 28, 34  # the legend sits in the top margin, above the curves
_COLOURS = {"val": "#0969da", "test": "#bf3989"}


def _x(t: int, max_t: int) -> float:
    span = _W - _LEFT - _RIGHT
    return _LEFT + (span * t / max_t if max_t else span / 2)


def _y(score: float) -> float:
    clipped = min(1.0, max(0.0, score))
    return _TOP + (_H - _TOP - _BOTTOM) * (1.0 - clipped)


def _series(rows: list[IterationRow], split: str, max_t: int) -> str:
    colour = _COLOURS[split]
    parts: list[str] = []
    path: list[str] = []
    for row in rows:
        value = getattr(row, split)
        if value is None:
            path.append("")  # a gap: the next point starts a new segment
            continue
        se = getattr(row, f"{split}_se")
        x, y = _x(row.t, max_t), _y(value)
        path.append(f"{x:.1f} {y:.1f}")
        if se:
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_y(value - se):.1f}" y2="{_y(value + se):.1f}" '
                         f'stroke="{colour}" stroke-width="1"/>')
        fill = colour if row.accepted else "#fff"
        tip = f"t={row.t} {split}={value:.4f}" + (f" ± {se:.4f}" if se is not None else " ± n/a")
        tip += " (accepted)" if row.accepted else " (rejected)"
        parts.append(f'<circle class="point-{split}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{fill}" '
                     f'stroke="{colour}" stroke-width="1.5"><title>{esc(tip)}</title></circle>')
    d, pen_down = [], False
    for point in path:
        if not point:
            pen_down = False
            continue
        d.append(("L" if pen_down else "M") + point)
        pen_down = True
    dash = ' stroke-dasharray="5 3"' if split == "test" else ""
    line = (f'<path class="series-{split}" d="{" ".join(d)}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
            if d else "")
    return line + "".join(parts)


def _axes(max_t: int) -> str:
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
                     f"{tick:.2f}</text>")
    step = max(1, -(-max_t // 12))
    for t in range(0, max_t + 1, step):
        x = _x(t, max_t)
        parts.append(f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" font-size="11" text-anchor="middle" fill="#555">'
                     f"{t}</text>")
    parts.append(f'<text x="{(_W + _LEFT) / 2:.1f}" y="{_H - 4}" font-size="11" text-anchor="middle" fill="#555">'
                 "iteration t</text>")
    parts.append(f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_H - _BOTTOM}" stroke="#888"/>'
                 f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_H - _BOTTOM}" y2="{_H - _BOTTOM}" stroke="#888"/>')
    for i, split in enumerate(("val", "test")):
        legend_x, y = _W - _RIGHT - 200 + 100 * i, _TOP - 14
        dash = ' stroke-dasharray="5 3"' if split == "test" else ""
        parts.append(f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="{y}" y2="{y}" stroke="{_COLOURS[split]}" '
                     f'stroke-width="2"{dash}/><text x="{legend_x + 28}" y="{y + 4}" font-size="11" fill="#333">'
                     f"{split} ± se</text>")
    return "".join(parts)


def _reference(initial: float | None) -> str:
    if initial is None:
        return ""
    y = _y(initial)
    return (f'<line class="initial" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#777" '
            f'stroke-width="1.2" stroke-dasharray="2 3"><title>{esc(f"u(s) on test = {initial:.4f}")}</title></line>'
            f'<text x="{_LEFT + 6}" y="{y - 4:.1f}" font-size="10" fill="#555">u(s) {initial:.3f}</text>')


def meta_utility_svg(rows: list[IterationRow], initial: float | None = None) -> str:
    """An ``<svg>`` element plotting val and test meta-utility over the iterations in ``rows``, with
    ``initial`` (u(s) on test) as a reference line."""
    if not rows:
        return '<p class="muted">No iterations yet.</p>'
    max_t = max(row.t for row in rows)
    return (f'<svg class="chart" role="img" aria-label="meta-utility per iteration" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg">'
            f"{_axes(max_t)}{_reference(initial)}{_series(rows, 'val', max_t)}{_series(rows, 'test', max_t)}</svg>")
