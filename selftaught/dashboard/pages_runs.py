"""The runs list and the run page (summary, meta-utility curve, iterations, improver lineage)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from selftaught.dashboard.html import Cell, NotFound, esc, layout, link, pre, run_url, table
from selftaught.dashboard.pages_result import result_section
from selftaught.dashboard.svgchart import meta_utility_svg
from selftaught.errors import StoreError
from selftaught.report.page import fmt_estimate, fmt_score, steps_done
from selftaught.store.reader import StoreReader
from selftaught.store.reader_records import IterationRow, RunSummary

__all__ = ["REFRESH_S", "run_page", "runs_page"]

REFRESH_S = 5
"""Seconds between reloads of a page showing a run that is still going."""


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _initial(db: StoreReader, run_id: str) -> str:
    scores = db.initial_scores(run_id)
    return " · ".join(f"{split} {fmt_score(scores[split])}" for split in ("val", "test") if split in scores) or "–"


def _status(status: str) -> Cell:
    return Cell(f'<span class="status-{esc(status)}">{esc(status)}</span>')


def runs_page(db: StoreReader) -> str:
    """Every run with its kind, status, task, LM, cost, best val score and steps; refreshes while one runs.

    Steps and best val belong to STOP runs; other kinds show a dash there (their results are on their page).
    """
    runs = [replace(r, status=db.live_status(r.id, r.status)) for r in db.runs()]
    rows: list[list[Cell | str]] = [
        [Cell(link(run_url(r.id), r.id)), r.kind, _status(r.status), r.task, r.lm, _when(r.created_at),
         Cell(steps_done(r) if r.kind == "stop" else "–", True),
         Cell(esc(fmt_score(r.best_val)) if r.kind == "stop" else "–", True), Cell(f"{r.lm_calls:,}", True),
         Cell(f"${r.cost_usd:.4f}", True)]
        for r in runs
    ]
    live = any(r.status == "running" for r in runs)
    body = "<h1>Runs</h1>" + table(
        ["run", "kind", "status", "task", "LM", "started", "step t/T", "best val", "LM calls", "cost"], rows,
        empty="No runs in this store yet.",
    )
    if live:
        body += f'<p class="muted">A run is going: this page reloads every {REFRESH_S} s.</p>'
    return layout("runs", body, REFRESH_S if live else None)


def _lineage(db: StoreReader, run: RunSummary, rows: list[IterationRow]) -> str:
    """The improvers as a tree by ``parent_id``, the adopted ones (incumbents after an accepted step) marked."""
    nodes = db.improver_nodes(run.id)
    if not nodes:
        return '<p class="muted">No improvers yet.</p>'
    adopted = {r.incumbent_id for r in rows if r.accepted}
    scored = {r.candidate_id: r for r in rows if r.candidate_id is not None}
    flagged = db.findings_per_program(run.id)
    ids = {node for node, _ in nodes}
    children: dict[int | None, list[int]] = {}
    for node, parent in nodes:
        children.setdefault(parent if parent in ids else None, []).append(node)

    def label(node: int) -> str:
        parts = [link(run_url(run.id, "programs", node), f"improver #{node}")]
        step = scored.get(node)
        if step is not None:
            parts.append(esc(f"t={step.t} val {fmt_estimate(step.val, step.val_se)} test {fmt_score(step.test)}"))
        if node in adopted:
            parts.append("<strong>★ adopted</strong>")
        if flagged.get(node):
            parts.append(f'<span class="status-failed">{int(flagged[node])} finding(s)</span>')
        return '<span class="node">' + " · ".join(parts) + "</span>"

    out = ['<ul class="lineage">']
    stack: list[tuple[int, bool]] = [(node, False) for node in reversed(children.get(None, []))]
    while stack:  # iterative depth-first walk: a long chain of improvers cannot overflow the stack
        node, closing = stack.pop()
        if closing:
            out.append("</ul></li>")
            continue
        cls = ' class="adopted"' if node in adopted else ""
        kids = children.get(node, [])
        if not kids:
            out.append(f"<li{cls}>{label(node)}</li>")
            continue
        out.append(f"<li{cls}>{label(node)}<ul>")
        stack.append((node, True))
        stack.extend((kid, False) for kid in reversed(kids))
    out.append("</ul>")
    return "".join(out)


def _iterations_table(run_id: str, rows: list[IterationRow]) -> str:
    def program_link(program_id: int | None) -> Cell:
        return Cell("–" if program_id is None else link(run_url(run_id, "programs", program_id), f"#{program_id}"))

    return table(
        ["t", "candidate", "incumbent", "val", "test", "accepted", "reason"],
        [[Cell(str(r.t), True), program_link(r.candidate_id), program_link(r.incumbent_id),
          Cell(esc(fmt_estimate(r.val, r.val_se)), True), Cell(esc(fmt_estimate(r.test, r.test_se)), True),
          "yes" if r.accepted else "no", r.reason] for r in rows],
        empty="No iterations yet.",
    )


def _compare_form(run_id: str, nodes: list[tuple[int, int | None]]) -> str:
    if len(nodes) < 2:
        return ""

    def select(name: str, chosen: int) -> str:
        options = "".join(
            f'<option value="{node}"{" selected" if node == chosen else ""}>improver #{node}</option>'
            for node, _ in nodes
        )
        return f'<select name="{name}">{options}</select>'

    return (f'<h2>Compare two improvers</h2><form class="compare" method="get" '
            f'action="{esc(run_url(run_id, "compare"))}">{select("a", nodes[0][0])} → {select("b", nodes[-1][0])} '
            '<button type="submit">compare</button></form>')


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
    summary = table(None, [
        ["kind", run.kind], ["status", _status(run.status)], ["task", run.task], ["LM", run.lm],
        ["seed", str(run.seed)],
        ["started", _when(run.created_at)], ["last update", _when(run.updated_at)], ["message", run.message],
        ["steps done", f"{steps_done(run)} (step 0 scores the seed improver)"],
        ["best val", fmt_score(run.best_val)], ["u(s), the initial solution", _initial(db, run_id)],
        ["LM calls", Cell(link(run_url(run_id, "lm"), f"{run.lm_calls:,} calls"))],
        ["tokens", f"{run.prompt_tokens:,} prompt + {run.completion_tokens:,} completion"],
        ["cost", f"${run.cost_usd:.4f} (estimate from the price table)"],
        ["truncated samples", Cell(link(run_url(run_id, "events", kind="truncated"),
                                        f"{events.get('truncated', 0):,} cut off at the completion limit"))],
        ["programs", ", ".join(f"{n:,} {kind}" for kind, n in sorted(programs.items())) or "none"],
        ["events", Cell(link(run_url(run_id, "events"),
                             ", ".join(f"{n:,} {kind}" for kind, n in sorted(events.items())) or "none"))],
    ])
    if run.status == "interrupted":
        summary += (f'<p class="muted">The broker of this run is gone (killed, or its machine stopped); '
                    f'continue it with <code>selftaught resume {esc(run.id)}</code>.</p>')
    if run.kind != "stop":
        body = (f"<h1>{esc(run.kind.capitalize())} run {esc(run.id)}</h1>{summary}{result_section(db, run)}"
                f"<h2>Configuration</h2>{pre(json.dumps(run.config, indent=2, sort_keys=True))}")
        return layout(f"run {run.id}", body, REFRESH_S if run.status == "running" else None)
    body = (
        f"<h1>Run {esc(run.id)}</h1>{summary}"
        f"<h2>Meta-utility per iteration</h2>{meta_utility_svg(rows, db.initial_scores(run_id).get('test'))}"
        f"<h2>Iterations</h2>{_iterations_table(run_id, rows)}"
        "<h2>Improver lineage</h2><p class=\"muted\">Highlighted: improvers the loop adopted.</p>"
        f"{_lineage(db, run, rows)}"
        f"{_compare_form(run_id, db.improver_nodes(run_id))}"
        f"<h2>Configuration</h2>{pre(json.dumps(run.config, indent=2, sort_keys=True))}"
    )
    live = run.status == "running"
    return layout(f"run {run.id}", body, REFRESH_S if live else None)
