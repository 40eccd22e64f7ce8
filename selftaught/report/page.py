"""The report's single self-contained HTML page: tables plus the figures inlined as data URIs.

No scripts, no external stylesheets, fonts or images: the page opens from a file, offline. It is
``templates/report.html`` rendered by Jinja2 with autoescaping on: this module hands it plain text
and numbers, so every stored string (task names, run messages, reasons) is escaped by the engine.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from selftaught.stats import wilson_interval
from selftaught.store.reader_records import IterationRow, RunSummary, SafetyCount, StepCost, TransferRow

__all__ = ["ReportData", "fmt_estimate", "fmt_score", "render_page", "steps_done"]

@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, read from the store."""

    runs: list[RunSummary]
    iterations: dict[str, list[IterationRow]]
    costs: dict[str, list[StepCost]]
    safety: list[SafetyCount]
    transfer: list[TransferRow]
    initial: dict[str, dict[str, float]] = field(default_factory=dict)  # run -> split -> u(s)


def fmt_score(value: float | None, se: float | None = None) -> str:
    """``0.512 ± 0.030``, ``0.512`` without an se, ``–`` when there is no value."""
    if value is None:
        return "–"
    return f"{value:.3f}" if se is None else f"{value:.3f} ± {se:.3f}"


def fmt_estimate(value: float | None, se: float | None) -> str:
    """An estimate over runs: ``0.512 ± 0.030``, ``0.512 ± n/a`` from a single run, ``–`` without a value."""
    if value is None:
        return "–"
    return f"{value:.3f} ± {'n/a' if se is None else f'{se:.3f}'}"


def steps_done(run: RunSummary) -> str:
    """``2/2``: the last finished step t of T (step 0 scores the seed improver, so T steps make T + 1 rows)."""
    if run.steps == 0:
        return "–"
    total = run.config.get("iterations")
    return f"{run.steps - 1}/{total}" if isinstance(total, int) else str(run.steps - 1)


_ENV = Environment(loader=PackageLoader("selftaught.report", "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _runs_rows(runs: list[RunSummary], its: dict[str, list[IterationRow]]) -> list[list[str]]:
    rows = []
    for run in runs:
        final = _final_incumbent(its.get(run.id, []))
        rows.append([
            run.id, run.status, run.task, run.lm, str(run.seed), steps_done(run), fmt_score(run.best_val),
            fmt_estimate(final.val, final.val_se) if final else "–",
            fmt_estimate(final.test, final.test_se) if final else "–",
            str(run.lm_calls), f"{run.prompt_tokens + run.completion_tokens:,}", f"${run.cost_usd:.4f}",
        ])
    return rows


def _final_incumbent(rows: list[IterationRow]) -> IterationRow | None:
    """The step that adopted the improver in force at the end (the seed's step if none was adopted)."""
    adopted = [r for r in rows if r.accepted]
    return adopted[-1] if adopted else None


def _iterations_rows(rows: list[IterationRow]) -> list[list[str]]:
    return [[str(r.t), "–" if r.candidate_id is None else str(r.candidate_id), str(r.incumbent_id),
             fmt_estimate(r.val, r.val_se), fmt_estimate(r.test, r.test_se), "yes" if r.accepted else "no", r.reason]
            for r in rows]


def _cost_rows(steps: list[StepCost]) -> list[list[str]]:
    return [[str(s.step), str(s.calls), f"{s.prompt_tokens:,}", f"{s.completion_tokens:,}", f"${s.cost_usd:.4f}"]
            for s in steps]


def _safety_rows(counts: list[SafetyCount]) -> list[list[str]]:
    rows = []
    for c in counts:
        low, high = wilson_interval(c.flagged, c.scanned)
        rate = c.flagged / c.scanned if c.scanned else 0.0
        rows.append([c.category, str(c.flagged), str(c.scanned), f"{rate:.1%}", f"[{low:.1%}, {high:.1%}]"])
    return rows


def _transfer_rows(rows: list[TransferRow]) -> list[list[str]]:
    return [[r.run_id, r.improver or str(r.program_id), r.task, str(r.runs or "–"),
             fmt_estimate(r.initial, r.initial_se), fmt_estimate(r.score, r.se)] for r in rows]


def render_page(data: ReportData, figures: dict[str, Path]) -> str:
    """The whole HTML document; ``figures`` maps a figure name to its SVG file. A lone surrogate in
    stored text (it cannot be written as UTF-8) shows as U+FFFD."""
    page = _ENV.get_template("report.html").render(
        ids=", ".join(run.id for run in data.runs),
        runs=_runs_rows(data.runs, data.iterations),
        iterations=[(run.id, _iterations_rows(data.iterations.get(run.id, []))) for run in data.runs],
        costs=[(run.id, _cost_rows(data.costs.get(run.id, []))) for run in data.runs],
        transfer=_transfer_rows(data.transfer),
        safety=_safety_rows(data.safety),
        figures={name: base64.b64encode(path.read_bytes()).decode("ascii") for name, path in figures.items()},
    )
    return _SURROGATE.sub("\ufffd", page)
