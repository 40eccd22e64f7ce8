"""The runs list and the run page (summary, meta-utility curve, iterations, improver lineage)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from selftaught.dashboard.html import Cell, NotFound, render, run_url
from selftaught.dashboard.pages_result import result_section
from selftaught.dashboard.svgchart import meta_utility_chart
from selftaught.errors import StoreError
from selftaught.report.page import fmt_estimate, fmt_score, steps_done
from selftaught.store.reader import StoreReader
from selftaught.store.reader_records import IterationRow, RunSummary

__all__ = ["REFRESH_S", "LineageEntry", "run_page", "runs_page"]

REFRESH_S = 5
"""Seconds between reloads of a page showing a run that is still going."""


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _initial(db: StoreReader, run_id: str) -> str:
    scores = db.initial_scores(run_id)
    return " · ".join(f"{split} {fmt_score(scores[split])}" for split in ("val", "test") if split in scores) or "–"


def _status(status: str) -> Cell:
    return Cell(status, css=f"status-{status}")


def runs_page(db: StoreReader) -> str:
    """Every run with its kind, status, task, LM, cost, best val score and steps; refreshes while one runs.

    Steps and best val belong to STOP runs; other kinds show a dash there (their results are on their page).
    """
    runs = [replace(r, status=db.live_status(r.id, r.status)) for r in db.runs()]
    rows: list[list[Cell | str]] = [
        [Cell(r.id, href=run_url(r.id)), r.kind, _status(r.status), r.task, r.lm, _when(r.created_at),
         Cell(steps_done(r) if r.kind == "stop" else "–", True),
         Cell(fmt_score(r.best_val) if r.kind == "stop" else "–", True), Cell(f"{r.lm_calls:,}", True),
         Cell(f"${r.cost_usd:.4f}", True)]
        for r in runs
    ]
    live = any(r.status == "running" for r in runs)
    return render("runs.html", title="runs", rows=rows, missing=None, refresh_s=REFRESH_S if live else None)


@dataclass(frozen=True)
class LineageEntry:
    """One step of the lineage tree's depth-first walk: an improver that opens a list of children
    (``open``), one without children (``leaf``), or the end of a list of children (``close``)."""

    step: str
    node: int = 0
    scored: str = ""  # its step's scores when it was a loop candidate
    adopted: bool = False
    findings: int = 0


def _lineage(db: StoreReader, run: RunSummary, rows: list[IterationRow]) -> list[LineageEntry]:
    """The improvers as a tree by ``parent_id``, the adopted ones (incumbents after an accepted step) marked."""
    nodes = db.improver_nodes(run.id)
    if not nodes:
        return []
    adopted = {r.incumbent_id for r in rows if r.accepted}
    scored = {r.candidate_id: r for r in rows if r.candidate_id is not None}
    flagged = db.findings_per_program(run.id)
    ids = {node for node, _ in nodes}
    children: dict[int | None, list[int]] = {}
    for node, parent in nodes:
        children.setdefault(parent if parent in ids else None, []).append(node)

    def entry(step: str, node: int) -> LineageEntry:
        r = scored.get(node)
        shown = f"t={r.t} val {fmt_estimate(r.val, r.val_se)} test {fmt_score(r.test)}" if r is not None else ""
        return LineageEntry(step, node, shown, node in adopted, int(flagged.get(node) or 0))

    out: list[LineageEntry] = []
    stack: list[tuple[int, bool]] = [(node, False) for node in reversed(children.get(None, []))]
    while stack:  # iterative depth-first walk: a long chain of improvers cannot overflow the stack
        node, closing = stack.pop()
        if closing:
            out.append(LineageEntry("close"))
            continue
        kids = children.get(node, [])
        if not kids:
            out.append(entry("leaf", node))
            continue
        out.append(entry("open", node))
        stack.append((node, True))
        stack.extend((kid, False) for kid in reversed(kids))
    return out


def _iterations_rows(run_id: str, rows: list[IterationRow]) -> list[list[Cell | str]]:
    def program_link(program_id: int | None) -> Cell:
        return Cell("–") if program_id is None else Cell(f"#{program_id}", href=run_url(run_id, "programs", program_id))

    return [[Cell(str(r.t), True), program_link(r.candidate_id), program_link(r.incumbent_id),
             Cell(fmt_estimate(r.val, r.val_se), True), Cell(fmt_estimate(r.test, r.test_se), True),
             "yes" if r.accepted else "no", r.reason] for r in rows]


def run_page(db: StoreReader, run_id: str) -> str:
    """One run: summary, the meta-utility curve, its iterations and its improver lineage."""
    try:
        run = db.run(run_id)
        run = replace(run, status=db.live_status(run_id, run.status))
    except StoreError as exc:
        raise NotFound(str(exc)) from exc
    rows = db.iterations(run_id)
    programs = db.program_counts(run_id)
    events = db.event_counts(run_id)
    summary: list[list[Cell | str]] = [
        ["kind", run.kind], ["status", _status(run.status)], ["task", run.task], ["LM", run.lm],
        ["seed", str(run.seed)],
        ["started", _when(run.created_at)], ["last update", _when(run.updated_at)], ["message", run.message],
        ["steps done", f"{steps_done(run)} (step 0 scores the seed improver)"],
        ["best val", fmt_score(run.best_val)], ["u(s), the initial solution", _initial(db, run_id)],
        ["LM calls", Cell(f"{run.lm_calls:,} calls", href=run_url(run_id, "lm"))],
        ["tokens", f"{run.prompt_tokens:,} prompt + {run.completion_tokens:,} completion"],
        ["cost", f"${run.cost_usd:.4f} (estimate from the price table)"],
        ["truncated samples", Cell(f"{events.get('truncated', 0):,} cut off at the completion limit",
                                   href=run_url(run_id, "events", kind="truncated"))],
        ["programs", ", ".join(f"{n:,} {kind}" for kind, n in sorted(programs.items())) or "none"],
        ["events", Cell(", ".join(f"{n:,} {kind}" for kind, n in sorted(events.items())) or "none",
                        href=run_url(run_id, "events"))],
    ]
    common = {"run": run, "summary": summary, "config": json.dumps(run.config, indent=2, sort_keys=True)}
    title, refresh_s = f"run {run.id}", REFRESH_S if run.status == "running" else None
    if run.kind != "stop":
        return render("run.html", title, refresh_s, **common, run_id=run_id, kind=run.kind,
                      result=result_section(db, run))
    return render("run.html", title, refresh_s, **common,
                  chart=meta_utility_chart(rows, db.initial_scores(run_id).get("test")),
                  iterations=_iterations_rows(run_id, rows), lineage=_lineage(db, run, rows),
                  improvers=[node for node, _ in db.improver_nodes(run_id)])
