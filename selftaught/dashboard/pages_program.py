"""A program's page (source, diff against its parent, tags, findings, evaluations) and the compare view.

Sources are untrusted text: they are only ever shown escaped inside ``<pre>``, never run.
"""

from __future__ import annotations

import difflib

from selftaught.dashboard.html import Cell, NotFound, Pager, PagerLinks, render, run_url
from selftaught.report.page import fmt_estimate
from selftaught.store.reader import StoreReader
from selftaught.store.reader_records import IterationRow, ProgramInfo

__all__ = ["EVALUATIONS_PER_PAGE", "compare_page", "diff_lines", "program_page"]

EVALUATIONS_PER_PAGE = 50


def diff_lines(old: str, new: str, old_name: str, new_name: str) -> list[tuple[str, str]]:
    """A unified diff of two sources as (kind, line) pairs, kind "file", "hunk", "add", "del" or ""
    (context); [] when they are identical. The template colours them; the lines stay text."""
    out = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""):
        if line.startswith(("+++", "---")):
            out.append(("file", line))
        elif line.startswith("@@"):
            out.append(("hunk", line))
        elif line.startswith("+"):
            out.append(("add", line))
        elif line.startswith("-"):
            out.append(("del", line))
        else:
            out.append(("", line))
    return out


def _program(db: StoreReader, run_id: str, program_id: int) -> ProgramInfo:
    found = db.program(run_id, program_id)
    if found is None:
        raise NotFound(f"no program {program_id} in run {run_id!r}")
    return found


def _steps_rows(steps: list[IterationRow]) -> list[list[Cell | str]]:
    return [[Cell(str(r.t), True), Cell(fmt_estimate(r.val, r.val_se), True),
             Cell(fmt_estimate(r.test, r.test_se), True), "yes" if r.accepted else "no", r.reason] for r in steps]


def _evaluations(
    db: StoreReader, prog: ProgramInfo, steps: list[int], page: int
) -> tuple[PagerLinks, list[list[Cell | str]]]:
    size = EVALUATIONS_PER_PAGE
    total, rows = db.evaluation_page(prog.run_id, prog.id, steps, size, (max(1, page) - 1) * size)
    pager = Pager(max(1, page), size, total)
    if page > pager.pages and total:
        raise NotFound(f"no page {page} of evaluations")
    cells: list[list[Cell | str]] = [
        [Cell(str(r.id), True), Cell(f"#{r.program_id}", href=run_url(prog.run_id, "programs", r.program_id)),
         r.tag, r.task, r.split, Cell(f"{r.score:.4f}", True), Cell(str(r.instances), True),
         Cell(str(r.failed), True), Cell(f"{r.elapsed_s:.2f} s", True), r.reason] for r in rows]
    return pager.links(run_url(prog.run_id, "programs", prog.id)), cells


def program_page(db: StoreReader, run_id: str, program_id: int, page: int = 1) -> str:
    """One program of a run: scores, tags, findings, the diff against its parent, source, evaluations."""
    prog = _program(db, run_id, program_id)
    rows = db.iterations(run_id)
    steps = [r for r in rows if r.candidate_id == prog.id]
    adopted = any(r.accepted and r.incumbent_id == prog.id for r in rows)
    tags = db.strategy_tags(prog.id)
    flagged = db.findings(prog.id)
    parent = db.program(run_id, prog.parent_id) if prog.parent_id is not None else None
    facts: list[list[Cell | list[Cell] | str]] = [
        ["run", Cell(run_id, href=run_url(run_id))], ["kind", prog.kind], ["sha256", prog.sha256],
        ["parent", Cell(f"#{parent.id}", href=run_url(run_id, "programs", parent.id)) if parent else "none (seed)"],
        ["adopted by the loop", "yes" if adopted else "no"],
        ["strategy tags", [Cell(f"{t} ({o})", css="tag") for t, o in tags] or Cell("none", css="muted")],
    ]
    diff = diff_lines(parent.source, prog.source, f"#{parent.id}", f"#{prog.id}") if parent else None
    pager, evaluations = _evaluations(db, prog, [r.t for r in steps] if prog.kind == "improver" else [], page)
    return render("program.html", title=f"{prog.kind} #{prog.id}", prog=prog, facts=facts, steps=_steps_rows(steps),
                  findings=[[c, Cell(str(n), True), d] for c, d, n in flagged], diff=diff, pager=pager,
                  evaluations=evaluations)


def compare_page(db: StoreReader, run_id: str, a: int | None, b: int | None) -> str:
    """Two programs of a run: their scores side by side and a unified diff from ``a`` to ``b``."""
    if not db.has_run(run_id):
        raise NotFound(f"no run {run_id!r}")
    if a is None or b is None:
        return render("compare.html", title="compare", run_id=run_id, rows=None)
    first, second = _program(db, run_id, a), _program(db, run_id, b)
    rows = db.iterations(run_id)

    def scores(prog: ProgramInfo) -> list[Cell | str]:
        step = next((r for r in rows if r.candidate_id == prog.id), None)
        adopted = any(r.accepted and r.incumbent_id == prog.id for r in rows)
        return [Cell(f"#{prog.id}", href=run_url(run_id, "programs", prog.id)), prog.kind,
                "–" if step is None else str(step.t),
                Cell(fmt_estimate(step.val, step.val_se) if step else "–", True),
                Cell(fmt_estimate(step.test, step.test_se) if step else "–", True), "yes" if adopted else "no"]

    return render("compare.html", title=f"compare #{first.id} and #{second.id}", run_id=run_id, first=first.id,
                  second=second.id, rows=[scores(first), scores(second)],
                  diff=diff_lines(first.source, second.source, f"#{first.id}", f"#{second.id}"))
