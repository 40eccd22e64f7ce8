"""The report's figures, each written as PNG and SVG with matplotlib's Agg renderer.

matplotlib is imported lazily, only when a figure is drawn, and pyplot is never used: figures are
built with ``matplotlib.figure.Figure`` so no global backend or state is touched. Missing values
(None scores, None standard errors, runs with no iterations) are left out of the plot, not drawn
as zero.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.errors import ConfigError
from selftaught.report.readstore import IterationRow, SafetyCount, StepCost
from selftaught.stats import mean_se, wilson_interval

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_cost", "plot_meta_utility", "plot_models", "plot_safety"]


@contextmanager
def _figure(width_in: float, height_in: float, ncols: int = 1) -> Iterator[tuple[Figure, list[Axes]]]:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError("the report needs matplotlib: pip install 'selftaught[report]'") from exc
    with matplotlib.rc_context({"svg.hashsalt": "selftaught", "svg.fonttype": "path", "font.size": 9}):
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        axes = fig.subplots(1, ncols, squeeze=False)[0]
        yield fig, list(axes)


def _save(fig: Figure, out_base: Path) -> list[Path]:
    written = []
    for fmt in ("png", "svg"):
        path = out_base.with_suffix(f".{fmt}")
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(path, format=fmt, dpi=120, metadata=metadata)
        written.append(path)
    return written


def plot_meta_utility(runs: dict[str, list[IterationRow]], out_base: Path) -> list[Path]:
    """Val and test meta-utility per iteration, one line per run with error bars, and the mean
    across runs with its standard error when there are two or more runs."""
    with _figure(9.0, 3.6, ncols=2) as (fig, axes):
        from matplotlib.ticker import MaxNLocator

        for ax, split in zip(axes, ("val", "test"), strict=True):
            by_t: dict[int, list[float | None]] = {}
            for run_id, rows in runs.items():
                points = [(r.t, getattr(r, split), getattr(r, f"{split}_se")) for r in rows]
                points = [p for p in points if p[1] is not None]
                for t, value, _ in points:
                    by_t.setdefault(t, []).append(value)
                if not points:
                    continue
                ts = [p[0] for p in points]
                values = [float(p[1]) for p in points]
                errors = [float(p[2]) if p[2] is not None else 0.0 for p in points]
                ax.errorbar(ts, values, yerr=errors, marker="o", markersize=3, capsize=2, linewidth=1,
                            alpha=0.6 if len(runs) > 1 else 1.0, label=run_id)
            means = [(t, *mean_se(v)) for t, v in sorted(by_t.items()) if len(v) > 1] if len(runs) > 1 else []
            if means:  # where two or more runs scored the step
                ax.errorbar([m[0] for m in means], [m[1] or 0.0 for m in means],
                            yerr=[m[2] or 0.0 for m in means],
                            color="black", linewidth=2.2, capsize=3, label="mean ± se across runs")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"meta-utility ({split})")
            ax.set_xlabel("iteration t")
            ax.set_ylabel("score")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if not by_t:
                ax.text(0.5, 0.5, "no scored iterations", ha="center", va="center", transform=ax.transAxes)
            elif ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        return _save(fig, out_base)


def plot_cost(costs: dict[str, list[StepCost]], out_base: Path) -> list[Path]:
    """Dollars and tokens (prompt + completion) per iteration, one line per run."""
    with _figure(9.0, 3.4, ncols=2) as (fig, axes):
        from matplotlib.ticker import MaxNLocator

        cost_ax, token_ax = axes
        drawn = False
        for run_id, steps in costs.items():
            if not steps:
                continue
            drawn = True
            ts = [s.step for s in steps]
            cost_ax.plot(ts, [s.cost_usd for s in steps], marker="o", markersize=3, label=run_id)
            token_ax.plot(ts, [s.prompt_tokens + s.completion_tokens for s in steps], marker="o", markersize=3,
                          label=run_id)
        cost_ax.set_title("LM cost per iteration")
        cost_ax.set_ylabel("USD")
        token_ax.set_title("LM tokens per iteration")
        token_ax.set_ylabel("prompt + completion tokens")
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(bottom=0)
            ax.set_xlabel("iteration t")
            ax.grid(alpha=0.3)
            if drawn:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no LM calls", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, out_base)


def plot_safety(counts: list[SafetyCount], out_base: Path) -> list[Path]:
    """Share of scanned programs flagged per finding category, with Wilson 95% intervals."""
    height = 1.2 + 0.35 * max(1, len(counts))
    with _figure(6.5, height) as (fig, axes):
        ax = axes[0]
        if counts:
            names = [c.category for c in counts]
            rates = [c.flagged / c.scanned if c.scanned else 0.0 for c in counts]
            intervals = [wilson_interval(c.flagged, c.scanned) for c in counts]
            low = [r - lo for r, (lo, _) in zip(rates, intervals, strict=True)]
            high = [hi - r for r, (_, hi) in zip(rates, intervals, strict=True)]
            ax.barh(names, rates, xerr=[low, high], capsize=3, color="#c0504d")
            ax.invert_yaxis()
            ax.set_title(f"safety findings per program (n = {counts[0].scanned} scanned, Wilson 95%)")
        else:
            ax.text(0.5, 0.5, "no safety findings", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
            ax.set_title("safety findings per program")
        ax.set_xlim(0, 1)
        ax.set_xlabel("rate of programs flagged")
        ax.grid(alpha=0.3, axis="x")
        return _save(fig, out_base)


def plot_models(curves: Mapping[str, Sequence[tuple[int, float, float | None]]], out_base: Path) -> list[Path]:
    """Models side by side: one line per model of ``(t, mean, se)`` points (test meta-utility per step,
    mean ± se over runs), with error bars (none where se is None: a single run)."""
    with _figure(5.5, 3.6) as (fig, axes):
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
        return _save(fig, out_base)
