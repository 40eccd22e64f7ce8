"""The runtime events of a run (timeouts, denials, invalid outputs, budget overruns, ...), paginated.

Event details quote untrusted program output; they are shown escaped. A ``kind`` filter narrows
the list to one kind of event.
"""

from __future__ import annotations

from selftaught.dashboard.html import Cell, NotFound, Pager, render, run_url
from selftaught.store.reader import StoreReader

__all__ = ["EVENTS_PER_PAGE", "events_page"]

EVENTS_PER_PAGE = 50


def events_page(db: StoreReader, run_id: str, page: int = 1, kind: str = "") -> str:
    """One page of the run's events, newest last, each linked to its program."""
    if not db.has_run(run_id):
        raise NotFound(f"no run {run_id!r}")
    pager = Pager(max(1, page), EVENTS_PER_PAGE, db.count_events(run_id, kind))
    if page > pager.pages:
        raise NotFound(f"no page {page} of events")
    rows = [(e.id, e.kind, e.program_id, e.detail, e.created_at)
            for e in db.event_page(run_id, kind, pager.size, pager.offset)]
    kinds = list(db.event_counts(run_id).items())
    cells = [
        [Cell(f"#{event_id}", True), name,
         Cell(f"#{program_id}", href=run_url(run_id, "programs", program_id)) if program_id is not None else "",
         detail]
        for event_id, name, program_id, detail, _ in rows
    ]
    query = {"kind": kind} if kind else {}
    return render("events.html", title=f"events of {run_id}", run_id=run_id, kinds=kinds, rows=cells,
                  pager=pager.links(run_url(run_id, "events"), **query))
