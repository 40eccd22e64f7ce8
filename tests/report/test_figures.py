"""The report's figures carry what a paper figure needs; checked on the matplotlib artists themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import PolyCollection  # noqa: E402

from selftaught.records import Iteration  # noqa: E402
from selftaught.report.plots import (  # noqa: E402
    cost_figure,
    labels_for,
    meta_utility_figure,
    safety_figure,
)
from selftaught.report.plots_transfer import plot_transfer, transfer_figure  # noqa: E402
from selftaught.store.reader_records import RunSummary, SafetyCount, StepCost, TransferRow  # noqa: E402


def _run(run_id: str, seed: int, lm: str = "local:qwen2.5-coder-1.5b") -> RunSummary:
    return RunSummary(run_id, "finished", "lpn", lm, seed, "", 0.0, 0.0, {}, 3, 0.6, 0.0, 3, 100, 50)


ROWS = {
    "a": [Iteration(t=0, candidate_id=1, incumbent_id=1, val=0.50, val_se=0.02, test=0.49, test_se=0.02, accepted=True,
                    reason="seed"),
          Iteration(t=1, candidate_id=2, incumbent_id=2, val=0.60, val_se=0.02, test=0.58, test_se=0.02, accepted=True,
                    reason="adopted"),
          Iteration(t=2, candidate_id=3, incumbent_id=2, val=0.40, val_se=0.03, test=0.41, test_se=0.03, accepted=False,
                    reason="kept")],
    "b": [Iteration(t=0, candidate_id=4, incumbent_id=4, val=0.48, val_se=0.02, test=0.50, test_se=0.02, accepted=True,
                    reason="seed"),
          Iteration(t=1, candidate_id=5, incumbent_id=4, val=0.30, val_se=0.02, test=0.31, test_se=0.02, accepted=False,
                    reason="kept"),
          Iteration(t=2, candidate_id=6, incumbent_id=6, val=0.55, val_se=0.03, test=0.52, test_se=0.03, accepted=True,
                    reason="adopted")],
}


def _legend(fig: object, index: int = 0) -> list[str]:
    ax = fig.axes[index]  # type: ignore[attr-defined]
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_meta_utility_figure_has_labels_reference_markers_and_a_band() -> None:
    labels = labels_for([_run("a", 0), _run("b", 1)])
    fig = meta_utility_figure(ROWS, labels, {"a": {"val": 0.51, "test": 0.5}, "b": {"val": 0.49, "test": 0.5}},
                              {"a": "lpn", "b": "lpn"})
    for index in (0, 1):
        legend = _legend(fig, index)
        assert {"lpn · local:qwen2.5-coder-1.5b · seed 0", "lpn · local:qwen2.5-coder-1.5b · seed 1"} <= set(legend)
        assert any(text.startswith("u(s) lpn = ") for text in legend)
        assert {"adopted step", "rejected step", "mean of 2 runs", "±1 se across runs"} <= set(legend)
        ax = fig.axes[index]
        assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the error band
        markers = {line.get_marker() for line in ax.lines if line.get_linestyle() == "None"}
        assert {"o", "x"} <= markers
    assert "u(s) lpn = 0.500" in _legend(fig, 0)  # mean over the task's runs on val


def test_one_run_has_no_mean_and_identical_labels_get_the_run_id() -> None:
    fig = meta_utility_figure({"a": ROWS["a"]}, {"a": "only"}, {}, {})
    assert "only" in _legend(fig) and not any(text.startswith("mean of") for text in _legend(fig))
    assert labels_for([_run("a", 0), _run("b", 0)]) == {"a": "lpn · local:qwen2.5-coder-1.5b · seed 0 (a)",
                                                        "b": "lpn · local:qwen2.5-coder-1.5b · seed 0 (b)"}


def test_a_cost_panel_that_is_all_zero_is_left_out_and_said_so() -> None:
    free = {"a": [StepCost(0, 2, 100, 50, 0.0), StepCost(1, 3, 200, 80, 0.0)]}
    fig = cost_figure(free)
    assert len(fig.axes) == 1 and "cost: $0, not plotted" in fig.axes[0].get_title()
    paid = {"a": [StepCost(0, 2, 100, 50, 0.01)]}
    assert [ax.get_title() for ax in cost_figure(paid).axes] == ["LM cost per step", "LM tokens per step"]


def test_the_safety_chart_keeps_parse_failures_apart_and_says_what_was_scanned() -> None:
    counts = [SafetyCount("exec_string", 1, 12), SafetyCount("parse_error", 7, 12), SafetyCount("network", 2, 12)]
    fig = safety_figure(counts)
    ax = fig.axes[0]
    names = [label.get_text() for label in ax.get_yticklabels()]
    assert names == ["exec_string", "network", "did not parse (not security)"]
    assert "static scan of 12 improver programs" in ax.get_title()
    colors = {tuple(round(c, 2) for c in bar.get_facecolor()[:3]) for bar in ax.patches}
    assert len(colors) == 2  # security red, parse failures grey
    only_parse = safety_figure([SafetyCount("parse_error", 3, 4)])
    assert "no security findings" in only_parse.axes[0].get_title()


def test_the_transfer_figure_is_grouped_bars_beside_u_of_s(tmp_path: Path) -> None:
    rows = [TransferRow("r", 1, task, score, 0.01, improver, 0.5, 0.01, 5, "test", (score - 0.5) / 0.5, 0.02)
            for task in ("lpn", "maxcut") for improver, score in (("seed", 0.55), ("cot", 0.45))]
    fig = transfer_figure(rows)
    assert fig is not None
    ax = fig.axes[0]
    assert _legend(fig) == ["u(s) initial solution", "seed", "cot"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lpn", "maxcut"]
    assert len(ax.patches) == 6 and "over 5 runs" in ax.get_title()
    assert plot_transfer([], tmp_path / "t") == [] and not (tmp_path / "t.png").exists()
    written = plot_transfer(rows, tmp_path / "t")
    assert [p.suffix for p in written] == [".png", ".svg"] and written[0].read_bytes().startswith(b"\x89PNG")
