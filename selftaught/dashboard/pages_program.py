"""A program's page (source, diff against its parent, tags, findings, evaluations) and the compare view.

Sources are untrusted text: they are only ever shown escaped inside ``<pre>``, never run.
"""

from __future__ import annotations

import difflib

from selftaught.dashboard.html import Cell, NotFound, Pager, esc, layout, link, pre, run_url, table
from selftaught.report.page import fmt_estimate
from selftaught.store.reader import StoreReader
from selftaught.store.reader_records import IterationRow, ProgramInfo

__all__ = ["EVALUATIONS_PER_PAGE", "compare_page", "program_page", "unified_diff_html"]

EVALUATIONS_PER_PAGE = 50


def unified_diff_html(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified diff of two sources as escaped, coloured ``<pre>`` markup."""
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""))
    if not lines:
        return '<p class="muted">The sources are identical.</p>'
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            out.append(f"<strong>{esc(line)}</strong>\n")
        elif line.startswith("@@"):
            out.append(f'<span class="hunk">{esc(line)}</span>')
        elif line.startswith("+"):
            out.append(f'<span class="add">{esc(line)}</span>')
        elif line.startswith("-"):
            out.append(f'<span class="del">{esc(line)}</span>')
        else:
            out.append(esc(line) + "\n")
    return '<pre class="diff">' + "".join(out) + "</pre>"


def _program(db: StoreReader, run_id: str, program_id: int) -> ProgramInfo:
    found = db.program(run_id, program_id)
    if found is None:
        raise NotFound(f"no program {program_id} in run {run_id!r}")
    return found


def _steps_table(steps: list[IterationRow]) -> str:
    return table(
        ["t", "val", "test", "accepted", "reason"],
        [[Cell(str(r.t), True), Cell(esc(fmt_estimate(r.val, r.val_se)), True),
          Cell(esc(fmt_estimate(r.test, r.test_se)), True), "yes" if r.accepted else "no", r.reason] for r in steps],
        empty="This program was not scored as a loop candidate.",
    )


def _evaluations(db: StoreReader, prog: ProgramInfo, steps: list[int], page: int) -> str:
    size = EVALUATIONS_PER_PAGE
    total, rows = db.evaluation_page(prog.run_id, prog.id, steps, size, (max(1, page) - 1) * size)
    pager = Pager(max(1, page), size, total)
    if page > pager.pages and total:
        raise NotFound(f"no page {page} of evaluations")
    body = table(
        ["id", "solution", "tag", "task", "split", "score", "instances", "failed", "elapsed", "reason"],
        [[Cell(str(r.id), True), Cell(link(run_url(prog.run_id, "programs", r.program_id), f"#{r.program_id}")),
          r.tag, r.task, r.split, Cell(f"{r.score:.4f}", True), Cell(str(r.instances), True),
          Cell(str(r.failed), True), Cell(f"{r.elapsed_s:.2f} s", True), r.reason] for r in rows],
        empty="No evaluations.",
    )
    return pager.html(run_url(prog.run_id, "programs", prog.id)) + body


def program_page(db: StoreReader, run_id: str, program_id: int, page: int = 1) -> str:
    """One program of a run: scores, tags, findings, the diff against its parent, source, evaluations."""
    prog = _program(db, run_id, program_id)
    rows = db.iterations(run_id)
    steps = [r for r in rows if r.candidate_id == prog.id]
    adopted = any(r.accepted and r.incumbent_id == prog.id for r in rows)
    tags = db.strategy_tags(prog.id)
    flagged = db.findings(prog.id)
    parent = db.program(run_id, prog.parent_id) if prog.parent_id is not None else None
    facts = table(None, [
        ["run", Cell(link(run_url(run_id), run_id))], ["kind", prog.kind], ["sha256", prog.sha256],
        ["parent", Cell(link(run_url(run_id, "programs", parent.id), f"#{parent.id}") if parent else "none (seed)")],
        ["adopted by the loop", "yes" if adopted else "no"],
        ["strategy tags", Cell(" ".join(f'<span class="tag">{esc(t)} ({esc(o)})</span>' for t, o in tags)
                               or '<span class="muted">none</span>')],
    ])
    diff = (unified_diff_html(parent.source, prog.source, f"#{parent.id}", f"#{prog.id}") if parent
            else '<p class="muted">No parent to diff against.</p>')
    body = (
        f"<h1>{esc(prog.kind.capitalize())} #{prog.id}</h1>{facts}"
        f"<h2>Scores as a loop candidate</h2>{_steps_table(steps)}"
        "<h2>Safety findings</h2>"
        + table(["category", "line", "detail"], [[c, Cell(str(n), True), d] for c, d, n in flagged],
                empty="No static-scan findings.")
        + f"<h2>Diff against its parent</h2>{diff}"
        f"<h2>Source</h2>{pre(prog.source, 'source')}"
        f"<h2>Evaluations</h2>{_evaluations(db, prog, [r.t for r in steps] if prog.kind == 'improver' else [], page)}"
    )
    return layout(f"{prog.kind} #{prog.id}", body)


def compare_page(db: StoreReader, run_id: str, a: int | None, b: int | None) -> str:
    """Two programs of a run: their scores side by side and a unified diff from ``a`` to ``b``."""
    if not db.has_run(run_id):
        raise NotFound(f"no run {run_id!r}")
    if a is None or b is None:
        where = link(run_url(run_id), "run page")
        return layout("compare", f"<h1>Compare</h1><p>Pick two improvers on the {where}.</p>")
    first, second = _program(db, run_id, a), _program(db, run_id, b)
    rows = db.iterations(run_id)

    def scores(prog: ProgramInfo) -> list[Cell | str]:
        step = next((r for r in rows if r.candidate_id == prog.id), None)
        adopted = any(r.accepted and r.incumbent_id == prog.id for r in rows)
        return [Cell(link(run_url(run_id, "programs", prog.id), f"#{prog.id}")), prog.kind,
                "–" if step is None else str(step.t),
                Cell(esc(fmt_estimate(step.val, step.val_se) if step else "–"), True),
                Cell(esc(fmt_estimate(step.test, step.test_se) if step else "–"), True), "yes" if adopted else "no"]

    body = (
        f"<h1>Compare #{first.id} → #{second.id}</h1><p>Run {link(run_url(run_id), run_id)}</p>"
        + table(["program", "kind", "t", "val", "test", "adopted"], [scores(first), scores(second)])
        + "<h2>Unified diff</h2>"
        + unified_diff_html(first.source, second.source, f"#{first.id}", f"#{second.id}")
    )
    return layout(f"compare #{first.id} and #{second.id}", body)
