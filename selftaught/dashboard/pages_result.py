"""The result of a run that is not a STOP loop (improve, score, transfer, baseline ...) on its page.

Such runs have no iterations; what they produced lives in the transfer table (transfer and
baseline), in the final scoring evaluations (tags whose last part is ``val`` or ``test``, outside
any improver's own utility calls ``.../u<k>/...``) and, for ``improve``, in the one solution the
improver returned, whose source is shown as code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from selftaught.dashboard.html import Cell, run_url
from selftaught.report.page import fmt_score
from selftaught.store.reader import StoreReader
from selftaught.store.reader_records import RunSummary

__all__ = ["Result", "result_section"]

_MAX_ROWS = 200

Rows = list[list[Cell | str]]


@dataclass(frozen=True)
class Result:
    """What the run page's ``result.html`` shows: each part empty (or None) when the run has none."""

    improve: Rows | None = None  # u(s) beside the improver's solution, for ``improve`` runs
    solution: tuple[int, str] | None = None  # the solution an ``improve`` run returned: program id, source
    transfer: Rows = field(default_factory=list)
    finals: Rows = field(default_factory=list)
    finals_total: int = 0  # final scores stored; ``finals`` holds the first _MAX_ROWS of them


def _is_final(tag: str) -> bool:
    parts = tag.split("/")
    return parts[-1] in ("val", "test") and not any(p[:1] == "u" and p[1:].isdigit() for p in parts)


def _transfer(db: StoreReader, run_id: str) -> Rows:
    rows = [(r.improver, r.task, r.split, r.runs, r.score, r.se, r.initial, r.initial_se, r.normalised,
             r.normalised_se) for r in db.transfer_rows([run_id])]
    return [
        [str(r[0]), str(r[1]), str(r[2]), Cell(str(r[3]), True), Cell(fmt_score(r[6], r[7]), True),
         Cell(fmt_score(r[4], r[5]), True), Cell(f"{r[8]:+.3f} ± {r[9]:.3f}", True),
         "yes" if r[4] > r[6] else "no"]
        for r in rows
    ]


def _evaluations(db: StoreReader, run_id: str) -> tuple[Rows, int, list[tuple[str, int]]]:
    """The first final scores as rows, how many there are, and (tag, program id) of each."""
    rows = [(e.tag, e.task, e.split, e.score, e.instances, e.failed, e.reason, e.program_id)
            for e in db.task_evaluations(run_id) if _is_final(e.tag)]
    cells: Rows = [
        [str(r[0]), str(r[1]), str(r[2]), Cell(fmt_score(r[3]), True), Cell(f"{r[5]}/{r[4]}", True),
         str(r[6]), Cell(f"#{r[7]}", href=run_url(run_id, "programs", int(r[7])))]
        for r in rows[:_MAX_ROWS]
    ]
    return cells, len(rows), [(str(r[0]), int(r[7])) for r in rows]


def _improve(
    db: StoreReader, run_id: str, finals: list[tuple[str, int]]
) -> tuple[Rows, tuple[int, str] | None]:
    """``improve``: u(s) beside the new solution's scores, and the new solution's code."""
    by_tag = db.scores_by_tag(run_id)
    initial = {split: by_tag.get(f"improve/initial/{split}") for split in ("val", "test")}
    after = {split: by_tag.get(f"improve/{split}") for split in ("val", "test")}
    program_id = next((pid for tag, pid in finals if tag in ("improve/val", "improve/test")), None)
    summary: Rows = [
        ["u(s), the initial solution", f"val {fmt_score(initial['val'])} · test {fmt_score(initial['test'])}"],
        ["the improver's solution", f"val {fmt_score(after['val'])} · test {fmt_score(after['test'])}"
         if after["val"] is not None else "none (see the events: the improver failed)"],
    ]
    if program_id is not None:
        solution = db.program(run_id, program_id)
        if solution is not None:
            return summary, (program_id, solution.source)
    return summary, None


def result_section(db: StoreReader, run: RunSummary) -> Result:
    """What a non-STOP run produced (every part empty when it recorded no result yet)."""
    finals, total, tagged = _evaluations(db, run.id)
    improve, solution = _improve(db, run.id, tagged) if run.kind == "improve" else (None, None)
    return Result(improve, solution, _transfer(db, run.id), finals, total)
