"""The runtime events of a run (timeouts, denials, invalid outputs, budget overruns, ...), paginated.

Event details quote untrusted program output; they are shown escaped. A ``kind`` filter narrows
the list to one kind of event.
"""

from __future__ import annotations

import sqlite3

from selftaught.dashboard.html import Cell, NotFound, Pager, render, run_url

__all__ = ["EVENTS_PER_PAGE", "events_page"]

EVENTS_PER_PAGE = 50


def events_page(db: sqlite3.Connection, run_id: str, page: int = 1, kind: str = "") -> str:
    """One page of the run's events, newest last, each linked to its program."""
    if db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
        raise NotFound(f"no run {run_id!r}")
    where, params = "run_id=?", [run_id]
    if kind:
        where, params = where + " AND kind=?", [run_id, kind]
    total = int(db.execute(f"SELECT COUNT(*) FROM events WHERE {where}", params).fetchone()[0])
    pager = Pager(max(1, page), EVENTS_PER_PAGE, total)
    if page > pager.pages:
        raise NotFound(f"no page {page} of events")
    rows = db.execute(
        f"SELECT id, kind, program_id, detail, created_at FROM events WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
        [*params, pager.size, pager.offset],
    ).fetchall()
    kinds = db.execute("SELECT kind, COUNT(*) FROM events WHERE run_id=? GROUP BY kind ORDER BY kind",
                       (run_id,)).fetchall()
    cells = [
        [Cell(f"#{event_id}", True), name,
         Cell(f"#{program_id}", href=run_url(run_id, "programs", program_id)) if program_id is not None else "",
         detail]
        for event_id, name, program_id, detail, _ in rows
    ]
    query = {"kind": kind} if kind else {}
    return render("events.html", title=f"events of {run_id}", run_id=run_id, kinds=kinds, rows=cells,
                  pager=pager.links(run_url(run_id, "events"), **query))
