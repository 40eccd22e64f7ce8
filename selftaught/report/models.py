"""Models side by side: one figure with each model's test meta-utility per step (mean ± se over runs).

``plot_models`` takes plain data (model -> [(t, mean, se)]), so the experiment command can draw
what it aggregated without this package importing the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from selftaught.report.plots import _figure, _save

__all__ = ["plot_models"]

Curve = Sequence[tuple[int, float, float]]


def plot_models(curves: Mapping[str, Curve], out_base: Path, title: str = "test meta-utility per step") -> list[Path]:
    """One line with error bars per model; writes ``out_base`` .png and .svg and returns their paths."""
    with _figure(5.5, 3.6) as (fig, axes):
        from matplotlib.ticker import MaxNLocator

        ax = axes[0]
        for model, points in curves.items():
            if points:
                ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                            marker="o", markersize=3, capsize=3, linewidth=1.4, label=model)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{title} (mean ± se over runs)")
        ax.set_xlabel("iteration t")
        ax.set_ylabel("score")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        return _save(fig, out_base)
