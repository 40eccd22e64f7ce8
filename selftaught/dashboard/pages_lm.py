"""The LM calls of a run: a paginated list with previews, and one call's prompt and responses in full.

Prompts and responses are untrusted LM text; they are shown escaped inside ``<pre>`` only.
"""

from __future__ import annotations

from selftaught.dashboard.html import Cell, NotFound, Pager, render, run_url
from selftaught.store.reader import StoreReader
from selftaught.store.reader_records import LMCallRow

__all__ = ["CALLS_PER_PAGE", "lm_call_page", "lm_calls_page"]

CALLS_PER_PAGE = 25
_PREVIEW = 120


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"


def _run_exists(db: StoreReader, run_id: str) -> None:
    if not db.has_run(run_id):
        raise NotFound(f"no run {run_id!r}")


def lm_calls_page(db: StoreReader, run_id: str, page: int = 1) -> str:
    """One page of the run's LM calls: tag, model, tokens, latency, cost, cached flag, previews."""
    _run_exists(db, run_id)
    pager = Pager(max(1, page), CALLS_PER_PAGE, db.count_lm_calls(run_id))
    if page > pager.pages:
        raise NotFound(f"no page {page} of LM calls")
    calls = db.lm_call_page(run_id, pager.size, pager.offset)
    rows = [
        [Cell(f"#{c.id}", True, href=run_url(run_id, "lm", c.id)), c.tag, c.model, Cell(str(c.n), True),
         Cell(f"{c.prompt_tokens:,}", True), Cell(f"{c.completion_tokens:,}", True),
         Cell(f"{c.latency_s:.2f} s", True), Cell(f"${c.cost_usd:.5f}", True), "yes" if c.cached else "no",
         _preview(c.prompt), _preview(" | ".join(c.responses))]
        for c in calls
    ]
    return render("lm_calls.html", title=f"LM calls of {run_id}", run_id=run_id, rows=rows,
                  pager=pager.links(run_url(run_id, "lm")))


def lm_call_page(db: StoreReader, run_id: str, call_id: int) -> str:
    """One LM call in full: numbers, system message, prompt and every response."""
    call = db.lm_call(run_id, call_id)
    if call is None:
        raise NotFound(f"no LM call {call_id} in run {run_id!r}")
    facts = [
        ["run", Cell(run_id, href=run_url(run_id))], ["tag", call.tag], ["model", call.model],
        ["samples (n)", str(call.n)], ["temperature", f"{call.temperature:g}"],
        ["tokens", f"{call.prompt_tokens:,} prompt + {call.completion_tokens:,} completion"],
        ["latency", f"{call.latency_s:.3f} s"], ["cost", f"${call.cost_usd:.6f}"],
        ["cached", "yes" if call.cached else "no"],
        *_usage_detail(call),
    ]
    ended = call.finish_reasons
    cut_off = [i < len(ended) and ended[i] == "length" for i in range(len(call.responses))]
    back = run_url(run_id, "lm", page=1 + db.lm_call_position(run_id, call.id) // CALLS_PER_PAGE)
    return render("lm_call.html", title=f"LM call #{call.id}", call=call, facts=facts, cut_off=cut_off, back=back)


def _usage_detail(call: LMCallRow) -> list[list[str]]:
    """Rows for why samples ended, the prompt-cache part of the prompt and estimated usage."""
    rows = [["samples ended", ", ".join(call.finish_reasons)]] if call.finish_reasons else []
    rows.append(["prompt cache", f"{call.cached_prompt_tokens:,} prompt tokens read from the provider's cache"])
    if call.usage_estimated:
        rows.append(["usage", "estimated (the server reported none)"])
    return rows
