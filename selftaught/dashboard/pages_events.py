"""The runtime events of a run (timeouts, denials, invalid outputs, budget overruns, ...), paginated.

Event details quote untrusted program output; they are shown escaped. A ``kind`` filter narrows
the list to one kind of event.
"""

from __future__ import annotations

from selftaught.dashboard.html import Cell, NotFound, Pager, layout, link, run_url, table
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
    kinds = db.event_counts(run_id).items()
    filters = " · ".join(link(run_url(run_id, "events", kind=name), f"{name} ({count})") for name, count in kinds)
    cells = [
        [Cell(f"#{event_id}", True), name,
         Cell(link(run_url(run_id, "programs", program_id), f"#{program_id}")) if program_id is not None else "",
         detail]
        for event_id, name, program_id, detail, _ in rows
    ]
    query = {"kind": kind} if kind else {}
    body = (
        f"<h1>Events of run {link(run_url(run_id), run_id)}</h1>"
        f"<p>{link(run_url(run_id, 'events'), 'all')} · {filters}</p>"
        + pager.html(run_url(run_id, "events"), **query)
        + table(["event", "kind", "program", "detail"], cells, empty="No events.")
        + pager.html(run_url(run_id, "events"), **query)
    )
    return layout(f"events of {run_id}", body)
