"""The report's figures, each written as PNG and SVG with matplotlib's Agg renderer.

Drawn the way a paper would show them: runs are labelled by task, model and seed; u(s), the
initial solution's score, is a dashed reference line; adopted steps are filled circles and
rejected ones crosses; with several runs of one task their mean is a black line in a shaded ±1 se
band. Panels with nothing to show (dollar cost of a local model) are left out and the figure says
so. The safety chart keeps "did not parse" apart from the security categories and names what was
scanned. The transfer figure is the paper's Table 1 as grouped bars (``plots_transfer``).

matplotlib is imported lazily, only when a figure is drawn, and pyplot is never used: figures are
built with ``matplotlib.figure.Figure`` so no global backend or state is touched. Missing values
(None scores, None standard errors, runs with no iterations) are left out of the plot, not drawn
as zero.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftaught.errors import ConfigError
from selftaught.stats import mean_se, wilson_interval
from selftaught.store.reader_records import IterationRow, SafetyCount, StepCost

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "INFORMATIONAL",
    "cost_figure",
    "figure",
    "labels_for",
    "meta_utility_figure",
    "plot_cost",
    "plot_meta_utility",
    "plot_models",
    "plot_safety",
    "run_label",
    "safety_figure",
    "save",
]

INFORMATIONAL = {"parse_error": "did not parse"}
"""Finding categories that are not security findings, drawn apart (grey) in the safety chart."""

_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22"]


@contextmanager
def _rc() -> Iterator[None]:
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("the report needs matplotlib: pip install 'selftaught[report]'") from exc
    with matplotlib.rc_context({"svg.hashsalt": "selftaught", "svg.fonttype": "path", "font.size": 9}):
        yield


@contextmanager
def figure(width_in: float, height_in: float, ncols: int = 1) -> Iterator[tuple[Figure, list[Axes]]]:
    """A constrained-layout figure with ``ncols`` axes, under fixed rc settings (reproducible SVG)."""
    with _rc():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        axes = fig.subplots(1, ncols, squeeze=False)[0]
        yield fig, list(axes)


def save(fig: Figure, out_base: Path) -> list[Path]:
    """Write the figure as ``out_base``.png and .svg (no dates inside: the files are reproducible)."""
    written = []
    with _rc():
        for fmt in ("png", "svg"):
            path = out_base.with_suffix(f".{fmt}")
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(path, format=fmt, dpi=120, metadata=metadata)
            written.append(path)
    return written


def _reference_lines(ax: Axes, split: str, initial: Mapping[str, Mapping[str, float]],
                     tasks: Mapping[str, str]) -> None:
    """One dashed u(s) line per task (the mean over that task's runs, which share the instances)."""
    by_task: dict[str, list[float]] = {}
    for run_id, scores in initial.items():
        if split in scores:
            by_task.setdefault(tasks.get(run_id, "?"), []).append(scores[split])
    for index, (task, values) in enumerate(sorted(by_task.items())):
        level = sum(values) / len(values)
        ax.axhline(level, color="#555555", linestyle=(0, (4, 2 + 2 * index)), linewidth=1.1,
                   label=f"u(s) {task} = {level:.3f}")


def _legend_handles(ax: Axes) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="#444444", marker="o", linestyle="none", markersize=5),
                Line2D([], [], color="#444444", marker="x", linestyle="none", markersize=6)]
    labels += ["adopted step", "rejected step"]
    ax.legend(handles, labels, fontsize=7, loc="best", framealpha=0.85)


def plot_meta_utility(
    runs: dict[str, list[IterationRow]],
    out_base: Path,
    labels: Mapping[str, str] | None = None,
    initial: Mapping[str, Mapping[str, float]] | None = None,
    tasks: Mapping[str, str] | None = None,
) -> list[Path]:
    """``meta_utility_figure`` written as PNG and SVG."""
    return save(meta_utility_figure(runs, labels, initial, tasks), out_base)


def meta_utility_figure(
    runs: dict[str, list[IterationRow]],
    labels: Mapping[str, str] | None = None,
    initial: Mapping[str, Mapping[str, float]] | None = None,
    tasks: Mapping[str, str] | None = None,
) -> Figure:
    """Val and test meta-utility per step: one line per run (``labels``: task · model · seed), adopted
    steps filled and rejected ones crossed, u(s) dashed (``initial``: run -> split -> score), and
    the mean across runs in a ±1 se band when there are two or more runs."""
    labels = labels or {}
    initial = initial or {}
    tasks = tasks or {}
    with figure(10.0, 4.0, ncols=2) as (fig, axes):
        from matplotlib.ticker import MaxNLocator

        for ax, split in zip(axes, ("val", "test"), strict=True):
            by_t: dict[int, list[float | None]] = {}
            for index, (run_id, rows) in enumerate(runs.items()):
                points = [(r.t, getattr(r, split), getattr(r, f"{split}_se"), r.accepted) for r in rows]
                points = [p for p in points if p[1] is not None]
                for t, value, _, _ in points:
                    by_t.setdefault(t, []).append(value)
                if not points:
                    continue
                color = _PALETTE[index % len(_PALETTE)]
                alpha = 0.55 if len(runs) > 1 else 1.0
                ts = [p[0] for p in points]
                values = [float(p[1]) for p in points]
                errors = [float(p[2]) if p[2] is not None else 0.0 for p in points]
                ax.errorbar(ts, values, yerr=errors, color=color, linewidth=1, capsize=2, alpha=alpha,
                            label=labels.get(run_id, run_id))
                kept = [(t, v) for (t, v, _, ok) in points if ok]
                dropped = [(t, v) for (t, v, _, ok) in points if not ok]
                if kept:
                    ax.plot(*zip(*kept, strict=True), linestyle="none", marker="o", markersize=5, color=color,
                            alpha=alpha)
                if dropped:
                    ax.plot(*zip(*dropped, strict=True), linestyle="none", marker="x", markersize=7,
                            markeredgewidth=1.6, color=color, alpha=alpha)
            _mean_band(ax, by_t, sum(1 for rows in runs.values() if rows))
            _reference_lines(ax, split, initial, tasks)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            last_t = max((r.t for rows in runs.values() for r in rows), default=0)
            ax.set_xlim(-0.3, max(1, last_t) + 0.3)  # whole steps only, even for a run with step 0 alone
            ax.set_title(f"meta-utility on {split}" + (" (selection)" if split == "val" else " (reported only)"))
            ax.set_xlabel("step t (0 = seed improver)")
            ax.set_ylabel("mean downstream score")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if not by_t:
                ax.text(0.5, 0.5, "no scored steps", ha="center", va="center", transform=ax.transAxes)
            if ax.get_legend_handles_labels()[0]:
                _legend_handles(ax)
        return fig


def _mean_band(ax: Axes, by_t: dict[int, list[float | None]], n_runs: int) -> None:
    if n_runs < 2:
        return
    means = [(t, *mean_se(v)) for t, v in sorted(by_t.items()) if len(v) > 1]
    if not means:
        return
    ts = [m[0] for m in means]
    mid = [m[1] or 0.0 for m in means]
    se = [m[2] or 0.0 for m in means]
    ax.fill_between(ts, [m - s for m, s in zip(mid, se, strict=True)], [m + s for m, s in zip(mid, se, strict=True)],
                    color="black", alpha=0.15, linewidth=0, label="±1 se across runs")
    ax.plot(ts, mid, color="black", linewidth=2.2, label=f"mean of {n_runs} runs")


def plot_cost(costs: dict[str, list[StepCost]], out_base: Path, labels: Mapping[str, str] | None = None) -> list[Path]:
    """``cost_figure`` written as PNG and SVG."""
    return save(cost_figure(costs, labels), out_base)


def cost_figure(costs: dict[str, list[StepCost]], labels: Mapping[str, str] | None = None) -> Figure:
    """Tokens (prompt + completion) per step, one line per run, and dollars per step when any were
    spent; a run on a local model costs nothing, so the dollar panel is left out and the title says so."""
    labels = labels or {}
    any_cost = any(s.cost_usd > 0 for steps in costs.values() for s in steps)
    with figure(10.0 if any_cost else 6.0, 3.4, ncols=2 if any_cost else 1) as (fig, axes):
        from matplotlib.ticker import MaxNLocator

        token_ax = axes[-1]
        drawn = False
        for index, (run_id, steps) in enumerate(costs.items()):
            if not steps:
                continue
            drawn = True
            color = _PALETTE[index % len(_PALETTE)]
            ts = [s.step for s in steps]
            label = labels.get(run_id, run_id)
            token_ax.plot(ts, [s.prompt_tokens + s.completion_tokens for s in steps], marker="o", markersize=3,
                          color=color, label=label)
            if any_cost:
                axes[0].plot(ts, [s.cost_usd for s in steps], marker="o", markersize=3, color=color, label=label)
        token_ax.set_title("LM tokens per step" + ("" if any_cost or not drawn else " (cost: $0, not plotted)"))
        token_ax.set_ylabel("prompt + completion tokens")
        if any_cost:
            axes[0].set_title("LM cost per step")
            axes[0].set_ylabel("USD")
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(bottom=0)
            ax.set_xlabel("step t")
            ax.grid(alpha=0.3)
            if drawn:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no LM calls", ha="center", va="center", transform=ax.transAxes)
        return fig


def plot_safety(counts: list[SafetyCount], out_base: Path, scanned_what: str = "improver programs") -> list[Path]:
    """``safety_figure`` written as PNG and SVG."""
    return save(safety_figure(counts, scanned_what), out_base)


def safety_figure(counts: list[SafetyCount], scanned_what: str = "improver programs") -> Figure:
    """Share of scanned programs flagged per security category with Wilson 95% intervals; programs
    that did not parse are a separate grey bar below a divider, since their patterns cannot run."""
    security = [c for c in counts if c.category not in INFORMATIONAL]
    other = [c for c in counts if c.category in INFORMATIONAL]
    rows = security + other
    scanned = max((c.scanned for c in counts), default=0)
    height = 1.5 + 0.35 * max(1, len(rows))
    with figure(7.0, height) as (fig, axes):
        ax = axes[0]
        if rows:
            names = [c.category for c in security] + [INFORMATIONAL[c.category] + " (not security)" for c in other]
            rates = [c.flagged / c.scanned if c.scanned else 0.0 for c in rows]
            intervals = [wilson_interval(c.flagged, c.scanned) for c in rows]
            low = [r - lo for r, (lo, _) in zip(rates, intervals, strict=True)]
            high = [hi - r for r, (_, hi) in zip(rates, intervals, strict=True)]
            colors = ["#c0504d"] * len(security) + ["#9e9e9e"] * len(other)
            ax.barh(names, rates, xerr=[low, high], capsize=3, color=colors)
            for y, c in enumerate(rows):  # the count, just right of the interval's upper end
                ax.text(min(rates[y] + high[y] + 0.015, 0.93), y, f"{c.flagged}/{c.scanned}", va="center",
                        fontsize=7)
            if security and other:
                ax.axhline(len(security) - 0.5, color="#333333", linewidth=0.8)
            ax.invert_yaxis()
        else:
            ax.text(0.5, 0.5, "no findings: no security pattern, every program parsed", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_yticks([])
        verdict = "" if security or not rows else "; no security findings"
        ax.set_title(f"static scan of {scanned} {scanned_what}{verdict}\n"
                     "share of programs with a finding, per category (Wilson 95%)")
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of scanned programs with at least one finding")
        ax.grid(alpha=0.3, axis="x")
        return fig


def run_label(task: str, lm: str, seed: int, run_id: str = "", unique: bool = True) -> str:
    """A legend entry: ``lpn · local:qwen2.5-coder-1.5b · seed 0`` (with the run id when not unique)."""
    text = f"{task} · {lm} · seed {seed}"
    return text if unique else f"{text} ({run_id})"


def labels_for(runs: list[Any]) -> dict[str, str]:
    """Legend labels for ``RunSummary`` rows; the run id is added only where two runs would read the same."""
    plain = [run_label(r.task, r.lm, r.seed) for r in runs]
    return {r.id: run_label(r.task, r.lm, r.seed, r.id, plain.count(text) == 1) for r, text in zip(runs, plain,
                                                                                                   strict=True)}


def plot_models(curves: Mapping[str, Sequence[tuple[int, float, float | None]]], out_base: Path) -> list[Path]:
    """Models side by side: one line per model of ``(t, mean, se)`` points (test meta-utility per step,
    mean ± se over runs), with error bars (none where se is None: a single run); PNG and SVG."""
    with figure(5.5, 3.6) as (fig, axes):
        from matplotlib.ticker import MaxNLocator

        ax = axes[0]
        for model, points in curves.items():
            if points:
                ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] or 0.0 for p in points],
                            marker="o", markersize=3, capsize=3, linewidth=1.4, label=model)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("test meta-utility per step (mean ± se over runs)")
        ax.set_xlabel("iteration t")
        ax.set_ylabel("score")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return save(fig, out_base)
