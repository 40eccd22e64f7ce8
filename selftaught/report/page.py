"""The report's single self-contained HTML page: tables plus the figures inlined as data URIs.

No scripts, no external stylesheets, fonts or images: the page opens from a file, offline, and
every stored string (task names, run messages, reasons) is HTML-escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from selftaught.stats import wilson_interval
from selftaught.store.reader_records import IterationRow, RunSummary, SafetyCount, StepCost, TransferRow

__all__ = ["ReportData", "fmt_estimate", "fmt_score", "render_page", "steps_done"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; }
.muted { color: #777; }
"""


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


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>" for i, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}"></p>'


def _runs_table(runs: list[RunSummary], its: dict[str, list[IterationRow]]) -> str:
    rows = []
    for run in runs:
        final = _final_incumbent(its.get(run.id, []))
        rows.append([
            run.id, run.status, run.task, run.lm, str(run.seed), steps_done(run), fmt_score(run.best_val),
            fmt_estimate(final.val, final.val_se) if final else "–",
            fmt_estimate(final.test, final.test_se) if final else "–",
            str(run.lm_calls), f"{run.prompt_tokens + run.completion_tokens:,}", f"${run.cost_usd:.4f}",
        ])
    return _table(["run", "status", "task", "LM", "seed", "step t/T", "best val", "final val", "final test",
                   "LM calls", "tokens", "cost"], rows, frozenset(range(4, 12)))


def _final_incumbent(rows: list[IterationRow]) -> IterationRow | None:
    """The step that adopted the improver in force at the end (the seed's step if none was adopted)."""
    adopted = [r for r in rows if r.accepted]
    return adopted[-1] if adopted else None


def _iterations_table(rows: list[IterationRow]) -> str:
    if not rows:
        return '<p class="muted">No iterations recorded.</p>'
    return _table(
        ["t", "candidate", "incumbent", "val", "test", "accepted", "reason"],
        [[str(r.t), "–" if r.candidate_id is None else str(r.candidate_id), str(r.incumbent_id),
          fmt_estimate(r.val, r.val_se), fmt_estimate(r.test, r.test_se), "yes" if r.accepted else "no", r.reason]
         for r in rows],
        frozenset({0, 1, 2, 3, 4}),
    )


def _cost_table(steps: list[StepCost]) -> str:
    if not steps:
        return '<p class="muted">No LM calls recorded.</p>'
    return _table(
        ["t", "calls", "prompt tokens", "completion tokens", "cost"],
        [[str(s.step), str(s.calls), f"{s.prompt_tokens:,}", f"{s.completion_tokens:,}", f"${s.cost_usd:.4f}"]
         for s in steps],
        frozenset(range(5)),
    )


def _safety_table(counts: list[SafetyCount]) -> str:
    if not counts:
        return '<p class="muted">No safety findings in these runs.</p>'
    rows = []
    for c in counts:
        low, high = wilson_interval(c.flagged, c.scanned)
        rate = c.flagged / c.scanned if c.scanned else 0.0
        rows.append([c.category, str(c.flagged), str(c.scanned), f"{rate:.1%}", f"[{low:.1%}, {high:.1%}]"])
    return _table(["category", "programs flagged", "programs scanned", "rate", "Wilson 95% interval"], rows,
                  frozenset({1, 2, 3, 4}))


def _transfer_table(rows: list[TransferRow]) -> str:
    if not rows:
        return '<p class="muted">No transfer results in the store (run the transfer command to add them).</p>'
    return _table(["run", "improver", "task", "runs", "u(s)", "score"],
                  [[r.run_id, r.improver or str(r.program_id), r.task, str(r.runs or "–"),
                    fmt_estimate(r.initial, r.initial_se), fmt_estimate(r.score, r.se)] for r in rows],
                  frozenset({3, 4, 5}))


def render_page(data: ReportData, figures: dict[str, Path]) -> str:
    """The whole HTML document; ``figures`` maps a figure name to its SVG file."""
    ids = ", ".join(run.id for run in data.runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>selftaught report: {escape(ids)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>selftaught report</h1><p>Runs: {escape(ids)}</p>",
        "<h2>Runs</h2>", _runs_table(data.runs, data.iterations),
        "<h2>Meta-utility per iteration</h2>",
        "<p>Each candidate improver's estimated meta-utility on the val split (selection) and the test split "
        "(reported only), with standard-error bars. Filled circles: steps whose candidate was adopted; crosses: "
        "rejected. Dashed: u(s), the task's initial solution. With several runs, the black line is their mean "
        "and the band ±1 standard error.</p>",
    ]
    labels = {"meta_utility": "meta-utility per iteration", "cost": "LM cost and tokens per iteration",
              "safety": "safety finding rates"}
    if "meta_utility" in figures:
        parts.append(_image(figures["meta_utility"], labels["meta_utility"]))
    for run in data.runs:
        parts += [f"<h3>Run {escape(run.id)}</h3>", _iterations_table(data.iterations.get(run.id, []))]
    parts.append("<h2>Transfer</h2>")
    if "transfer" in figures:
        parts.append(_image(figures["transfer"], "transfer: test score per task beside u(s)"))
    parts.append(_transfer_table(data.transfer))
    parts.append("<h2>LM cost and tokens per iteration</h2>")
    if "cost" in figures:
        parts.append(_image(figures["cost"], labels["cost"]))
    for run in data.runs:
        parts += [f"<h3>Run {escape(run.id)}</h3>", _cost_table(data.costs.get(run.id, []))]
    parts += ["<h2>Safety</h2>",
              "<p>Share of the runs' improver programs with at least one static-scan finding per category. "
              "\"did not parse\" (grey) is not a security category: such code cannot run, and its patterns come "
              "from a line scan. Only findings already stored count: scan a run first (the safety scan), or every "
              "rate reads 0.</p>"]
    if "safety" in figures:
        parts.append(_image(figures["safety"], labels["safety"]))
    parts += [_safety_table(data.safety), "</body></html>"]
    return "\n".join(parts)
