"""The LM calls of a run: a paginated list with previews, and one call's prompt and responses in full.

Prompts and responses are untrusted LM text; they are shown escaped inside ``<pre>`` only.
"""

from __future__ import annotations

import json
import sqlite3

from selftaught.dashboard import queries
from selftaught.dashboard.html import Cell, NotFound, Pager, render, run_url

__all__ = ["CALLS_PER_PAGE", "lm_call_page", "lm_calls_page"]

CALLS_PER_PAGE = 25
_PREVIEW = 120


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"


def _run_exists(db: sqlite3.Connection, run_id: str) -> None:
    if db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
        raise NotFound(f"no run {run_id!r}")


def lm_calls_page(db: sqlite3.Connection, run_id: str, page: int = 1) -> str:
    """One page of the run's LM calls: tag, model, tokens, latency, cost, cached flag, previews."""
    _run_exists(db, run_id)
    pager = Pager(max(1, page), CALLS_PER_PAGE, queries.count_lm_calls(db, run_id))
    if page > pager.pages:
        raise NotFound(f"no page {page} of LM calls")
    calls = queries.lm_call_page(db, run_id, pager.size, pager.offset)
    rows = [
        [Cell(f"#{c.id}", True, href=run_url(run_id, "lm", c.id)), c.tag, c.model, Cell(str(c.n), True),
         Cell(f"{c.prompt_tokens:,}", True), Cell(f"{c.completion_tokens:,}", True),
         Cell(f"{c.latency_s:.2f} s", True), Cell(f"${c.cost_usd:.5f}", True), "yes" if c.cached else "no",
         _preview(c.prompt), _preview(" | ".join(c.responses))]
        for c in calls
    ]
    return render("lm_calls.html", title=f"LM calls of {run_id}", run_id=run_id, rows=rows,
                  pager=pager.links(run_url(run_id, "lm")))


def lm_call_page(db: sqlite3.Connection, run_id: str, call_id: int) -> str:
    """One LM call in full: numbers, system message, prompt and every response."""
    call = queries.lm_call(db, run_id, call_id)
    if call is None:
        raise NotFound(f"no LM call {call_id} in run {run_id!r}")
    facts = [
        ["run", Cell(run_id, href=run_url(run_id))], ["tag", call.tag], ["model", call.model],
        ["samples (n)", str(call.n)], ["temperature", f"{call.temperature:g}"],
        ["tokens", f"{call.prompt_tokens:,} prompt + {call.completion_tokens:,} completion"],
        ["latency", f"{call.latency_s:.3f} s"], ["cost", f"${call.cost_usd:.6f}"],
        ["cached", "yes" if call.cached else "no"],
        *_usage_detail(db, call.id),
    ]
    ended = _finish_reasons(db, call.id)
    cut_off = [i < len(ended) and ended[i] == "length" for i in range(len(call.responses))]
    back = run_url(run_id, "lm", page=1 + _position(db, run_id, call.id) // CALLS_PER_PAGE)
    return render("lm_call.html", title=f"LM call #{call.id}", call=call, facts=facts, cut_off=cut_off, back=back)


def _finish_reasons(db: sqlite3.Connection, call_id: int) -> list[str]:
    """Why each sample of a call ended ([] for a store written before this was recorded)."""
    try:
        row = db.execute("SELECT finish_reasons FROM lm_calls WHERE id=?", (call_id,)).fetchone()
        found = json.loads(row[0]) if row else []
    except (sqlite3.Error, ValueError):
        return []
    return [str(reason) for reason in found] if isinstance(found, list) else []


def _usage_detail(db: sqlite3.Connection, call_id: int) -> list[list[str]]:
    """Rows for why samples ended, the prompt-cache part of the prompt and estimated usage, if recorded."""
    try:
        row = db.execute("SELECT cached_prompt_tokens, usage_estimated FROM lm_calls WHERE id=?",
                         (call_id,)).fetchone()
    except sqlite3.Error:
        return []
    ended = _finish_reasons(db, call_id)
    rows = [["samples ended", ", ".join(ended)]] if ended else []
    if row is not None:
        rows.append(["prompt cache", f"{int(row[0]):,} prompt tokens read from the provider's cache"])
        if row[1]:
            rows.append(["usage", "estimated (the server reported none)"])
    return rows


def _position(db: sqlite3.Connection, run_id: str, call_id: int) -> int:
    """How many of the run's calls come before this one (to link back to its page of the list)."""
    return int(db.execute("SELECT COUNT(*) FROM lm_calls WHERE run_id=? AND id<?", (run_id, call_id)).fetchone()[0])

