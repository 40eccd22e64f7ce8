"""The paper's Table 1 as a figure: per task, u(s) and each improver's test score as grouped bars.

Bars carry ±1 se error bars (over the transfer command's independent runs); u(s), the task's initial
solution, is the grey bar first in each group, so a bar above it is an improvement. Rows come from
the ``transfer`` table (``transfer`` and ``baseline`` runs); with several runs of the same
improver and task, the last one stored is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.report.plots import figure, save
from selftaught.store.reader_records import TransferRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_transfer", "transfer_figure"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"]


def plot_transfer(rows: list[TransferRow], out_base: Path) -> list[Path]:
    """``transfer_figure`` written as PNG and SVG; [] (nothing written) when there are no rows."""
    fig = transfer_figure(rows)
    return [] if fig is None else save(fig, out_base)


def transfer_figure(rows: list[TransferRow]) -> Figure | None:
    """Grouped bars (task groups; u(s) then one bar per improver) with se error bars; None when no rows."""
    if not rows:
        return None
    tasks = list(dict.fromkeys(r.task for r in rows))
    improvers = list(dict.fromkeys(r.improver or str(r.program_id) for r in rows))
    cell = {(r.task, r.improver or str(r.program_id)): r for r in rows}
    initial = {r.task: (r.initial, r.initial_se) for r in rows if r.initial is not None}
    groups = 1 + len(improvers)
    width = 0.8 / groups
    runs = max((r.runs for r in rows), default=0)
    with figure(max(7.0, 1.5 + 0.5 * len(tasks) * groups), 4.0) as (fig, axes):
        ax = axes[0]
        xs = list(range(len(tasks)))
        series: list[tuple[str, str, list[float], list[float]]] = [
            ("u(s) initial solution", "#9e9e9e", [float(initial.get(t, (0.0, 0.0))[0] or 0.0) for t in tasks],
             [float(initial.get(t, (0.0, 0.0))[1] or 0.0) for t in tasks])]
        for index, name in enumerate(improvers):
            values = [float(cell[(t, name)].score or 0.0) if (t, name) in cell else float("nan") for t in tasks]
            errors = [float(cell[(t, name)].se or 0.0) if (t, name) in cell else 0.0 for t in tasks]
            series.append((name, _COLORS[index % len(_COLORS)], values, errors))
        for offset, (name, color, values, errors) in enumerate(series):
            positions = [x - 0.4 + width * (offset + 0.5) for x in xs]
            ax.bar(positions, values, width=width * 0.92, yerr=errors, capsize=2, color=color, label=name)
            for x, v in zip(positions, values, strict=True):
                if v == v:  # not NaN
                    ax.text(x, v + 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=6.5, rotation=90)
        ax.set_xticks(xs, tasks)
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("test score (mean ± se)")
        suffix = f", mean ± se over {runs} runs" if runs else ""
        ax.set_title(f"transfer (cf. the paper's Table 1)\ntest score per task{suffix}; grey: u(s)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7, ncols=min(4, len(series)), loc="upper center")
        return fig
