"""The result of a run that is not a STOP loop (improve, score, transfer, baseline ...) on its page.

Such runs have no iterations; what they produced lives in the transfer table (transfer and
baseline), in the final scoring evaluations (tags whose last part is ``val`` or ``test``, outside
any improver's own utility calls ``.../u<k>/...``) and, for ``improve``, in the one solution the
improver returned, whose source is shown as code.
"""

from __future__ import annotations

from selftaught.dashboard.html import Cell, esc, link, pre, run_url, table
from selftaught.report.page import fmt_score
from selftaught.store.reader import StoreReader
from selftaught.store.reader_records import RunSummary

__all__ = ["result_section"]

_MAX_ROWS = 200


def _is_final(tag: str) -> bool:
    parts = tag.split("/")
    return parts[-1] in ("val", "test") and not any(p[:1] == "u" and p[1:].isdigit() for p in parts)


def _transfer(db: StoreReader, run_id: str) -> str:
    rows = [(r.improver, r.task, r.split, r.runs, r.score, r.se, r.initial, r.initial_se, r.normalised,
             r.normalised_se) for r in db.transfer_rows([run_id])]
    if not rows:
        return ""
    cells: list[list[Cell | str]] = [
        [str(r[0]), str(r[1]), str(r[2]), Cell(str(r[3]), True), Cell(esc(fmt_score(r[6], r[7])), True),
         Cell(esc(fmt_score(r[4], r[5])), True), Cell(esc(f"{r[8]:+.3f} ± {r[9]:.3f}"), True),
         "yes" if r[4] > r[6] else "no"]
        for r in rows
    ]
    return "<h2>Result: improvers against u(s)</h2>" + table(
        ["improver", "task", "split", "runs", "u(s)", "improver's score", "normalised gain", "beats u(s)"], cells)


def _evaluations(db: StoreReader, run_id: str) -> tuple[str, list[tuple[str, int]]]:
    rows = [(e.tag, e.task, e.split, e.score, e.instances, e.failed, e.reason, e.program_id)
            for e in db.task_evaluations(run_id) if _is_final(e.tag)]
    if not rows:
        return "", []
    cells: list[list[Cell | str]] = [
        [str(r[0]), str(r[1]), str(r[2]), Cell(esc(fmt_score(r[3])), True), Cell(f"{r[5]}/{r[4]}", True),
         str(r[6]), Cell(link(run_url(run_id, "programs", int(r[7])), f"#{r[7]}"))]
        for r in rows[:_MAX_ROWS]
    ]
    more = f'<p class="muted">First {_MAX_ROWS} of {len(rows)} shown.</p>' if len(rows) > _MAX_ROWS else ""
    html = "<h2>Final scores</h2>" + table(
        ["tag", "task", "split", "score", "failed/instances", "first failure", "solution"], cells) + more
    return html, [(str(r[0]), int(r[7])) for r in rows]


def _improve(db: StoreReader, run_id: str, finals: list[tuple[str, int]]) -> str:
    """``improve``: u(s) beside the new solution's scores, and the new solution's code."""
    by_tag = db.scores_by_tag(run_id)
    initial = {split: by_tag.get(f"improve/initial/{split}") for split in ("val", "test")}
    after = {split: by_tag.get(f"improve/{split}") for split in ("val", "test")}
    program_id = next((pid for tag, pid in finals if tag in ("improve/val", "improve/test")), None)
    summary = table(None, [
        ["u(s), the initial solution", f"val {fmt_score(initial['val'])} · test {fmt_score(initial['test'])}"],
        ["the improver's solution", f"val {fmt_score(after['val'])} · test {fmt_score(after['test'])}"
         if after["val"] is not None else "none (see the events: the improver failed)"],
    ])
    html = "<h2>Result</h2>" + summary
    if program_id is not None:
        solution = db.program(run_id, program_id)
        if solution is not None:
            html += (f"<h3>The solution it returned ({link(run_url(run_id, 'programs', program_id), f'#{program_id}')})"
                     f"</h3>{pre(solution.source, 'source')}")
    return html


def result_section(db: StoreReader, run: RunSummary) -> str:
    """HTML for what a non-STOP run produced; a note when it recorded no result yet."""
    finals_html, finals = _evaluations(db, run.id)
    parts = [_transfer(db, run.id)]
    if run.kind == "improve":
        parts.insert(0, _improve(db, run.id, finals))
    parts.append(finals_html)
    body = "".join(parts)
    return body or f'<p class="muted">This {esc(run.kind)} run has recorded no result yet.</p>'
