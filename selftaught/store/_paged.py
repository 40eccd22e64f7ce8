"""The paginated and per-tag reads of ``StoreReader`` (its evaluations, LM calls and events), kept apart
so each file reads in one sitting; ``StoreReader`` is the one class to use.

Pages use LIMIT/OFFSET over ``ORDER BY id`` with a ``run_id`` (or ``program_id``) bound, so SQLite
walks the store's indexes (``lm_calls_run``, ``evaluations_program``, ``evaluations_tag``, ``events_run``)
rather than the tables; prompts are fetched only for the page or the one call shown.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from selftaught.errors import StoreError
from selftaught.store.reader_records import CallSamples, EvaluationRow, EventRow, LMCallRow

__all__ = ["PagedReads", "json_value"]

_CALL_COLUMNS = ("id, tag, model, system, prompt, n, temperature, responses, prompt_tokens, completion_tokens,"
                 " latency_s, cost_usd, cached, finish_reasons, cached_prompt_tokens, usage_estimated")
_EVALUATION_COLUMNS = "id, program_id, tag, task, split, score, instances, failed, reason, elapsed_s"


class PagedReads:
    """A connection to the store and the reads of evaluations, LM calls and events over it."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self.path = path

    def _all(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        try:
            return self._db.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read run store {self.path}: {exc}") from exc

    def _one(self, query: str, params: Sequence[object] = ()) -> Any:
        rows = self._all(query, params)
        return rows[0] if rows else None

    # --- evaluations -------------------------------------------------------------------------

    def evaluation_page(
        self, run_id: str, program_id: int, steps: Sequence[int], limit: int, offset: int
    ) -> tuple[int, list[EvaluationRow]]:
        """The total and one page, in stored order, of the evaluations *of* a program plus, for an
        improver, those of the solutions it produced while its meta-utility was estimated at ``steps``
        (tags ``t<step>/eval/...``).

        A UNION of one indexed lookup per part: ``evaluations_program`` for the program, and a range on
        the tag answered from ``evaluations_tag`` on ``(run_id, tag)``.
        """
        parts = ["SELECT id FROM evaluations WHERE program_id=? AND run_id=?"]
        params: list[object] = [program_id, run_id]
        for step in steps:
            parts.append("SELECT id FROM evaluations WHERE run_id=? AND tag >= ? AND tag < ?")
            params += [run_id, f"t{step}/eval/", f"t{step}/eval0"]  # '0' follows '/' in ASCII
        ids = " UNION ".join(parts)
        total = int(self._one(f"SELECT COUNT(*) FROM ({ids})", params)[0])
        rows = self._all(
            f"SELECT {_EVALUATION_COLUMNS} FROM evaluations"
            f" WHERE id IN (SELECT id FROM ({ids}) ORDER BY id LIMIT ? OFFSET ?) ORDER BY id",
            [*params, limit, offset],
        )
        return total, [EvaluationRow(*r) for r in rows]

    def task_evaluations(self, run_id: str) -> list[EvaluationRow]:
        """The run's evaluations on tasks (not on ``meta:`` tasks, which score improvers), in stored order."""
        rows = self._all(f"SELECT {_EVALUATION_COLUMNS} FROM evaluations WHERE run_id=? AND task NOT LIKE 'meta:%'"
                         " ORDER BY id", (run_id,))
        return [EvaluationRow(*r) for r in rows]

    def solution_evaluations(self, run_id: str, tag_prefix: str) -> list[EvaluationRow]:
        """Evaluations of solutions on tasks under call-site tags starting with ``tag_prefix``."""
        rows = self._all(
            f"SELECT {', '.join('e.' + c.strip() for c in _EVALUATION_COLUMNS.split(','))}"
            " FROM evaluations e JOIN programs p ON p.id = e.program_id WHERE e.run_id=? AND substr(e.tag, 1, ?)=?"
            " AND p.kind='solution' AND e.task NOT LIKE 'meta:%' ORDER BY e.id",
            (run_id, len(tag_prefix), tag_prefix),
        )
        return [EvaluationRow(*r) for r in rows]

    # --- LM calls ----------------------------------------------------------------------------

    def count_lm_calls(self, run_id: str) -> int:
        """Every LM call row of the run, answers from the response cache included."""
        return int(self._one("SELECT COUNT(*) FROM lm_calls WHERE run_id=?", (run_id,))[0])

    def lm_call_page(self, run_id: str, limit: int, offset: int) -> list[LMCallRow]:
        """One page of the run's LM calls, oldest first, with the system message, prompt and each
        response cut to 300 characters (responses are stored as one JSON list, so they are decoded
        whole and cut afterwards: cutting the JSON text would leave undecodable text)."""
        rows = self._all(
            "SELECT id, tag, model, substr(system, 1, 300), substr(prompt, 1, 300), n, temperature, responses,"
            " prompt_tokens, completion_tokens, latency_s, cost_usd, cached, finish_reasons, cached_prompt_tokens,"
            " usage_estimated FROM lm_calls WHERE run_id=? ORDER BY id LIMIT ? OFFSET ?",
            (run_id, limit, offset),
        )
        return [_call(r, cut=300) for r in rows]

    def lm_call(self, run_id: str, call_id: int) -> LMCallRow | None:
        """One LM call of the run in full, or None."""
        row = self._one(f"SELECT {_CALL_COLUMNS} FROM lm_calls WHERE id=? AND run_id=?", (call_id, run_id))
        return None if row is None else _call(row)

    def lm_call_position(self, run_id: str, call_id: int) -> int:
        """How many of the run's calls come before this one."""
        return int(self._one("SELECT COUNT(*) FROM lm_calls WHERE run_id=? AND id<?", (run_id, call_id))[0])

    def lm_samples(self, run_id: str, tag_prefix: str) -> list[CallSamples]:
        """The texts and finish reasons of every LM call under tags starting with ``tag_prefix``."""
        rows = self._all("SELECT responses, finish_reasons FROM lm_calls WHERE run_id=? AND substr(tag, 1, ?)=?"
                         " ORDER BY id", (run_id, len(tag_prefix), tag_prefix))
        return [CallSamples(_texts(r[0]), [str(x) for x in _json_list(r[1])]) for r in rows]

    # --- events ------------------------------------------------------------------------------

    def event_counts(self, run_id: str) -> dict[str, int]:
        """How many runtime events of each kind a run recorded, by kind."""
        rows = self._all("SELECT kind, COUNT(*) FROM events WHERE run_id=? GROUP BY kind ORDER BY kind", (run_id,))
        return {str(r[0]): int(r[1]) for r in rows}

    def count_events(self, run_id: str, kind: str = "") -> int:
        """The run's events (of ``kind`` only, when given)."""
        where, params = _event_filter(run_id, kind)
        return int(self._one(f"SELECT COUNT(*) FROM events WHERE {where}", params)[0])

    def event_page(self, run_id: str, kind: str, limit: int, offset: int) -> list[EventRow]:
        """One page of the run's events (of ``kind`` only, when given), oldest first."""
        where, params = _event_filter(run_id, kind)
        rows = self._all(f"SELECT id, kind, program_id, detail, created_at FROM events WHERE {where}"
                         " ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset])
        return [EventRow(*r) for r in rows]

    def event_details(self, run_id: str, kind: str, prefix: str) -> list[str]:
        """The distinct details of the run's events of ``kind`` that start with ``prefix``."""
        rows = self._all("SELECT DISTINCT detail FROM events WHERE run_id=? AND kind=? AND substr(detail, 1, ?)=?",
                         (run_id, kind, len(prefix), prefix))
        return [str(r[0]) for r in rows]



def _event_filter(run_id: str, kind: str) -> tuple[str, list[object]]:
    return ("run_id=? AND kind=?", [run_id, kind]) if kind else ("run_id=?", [run_id])


def json_value(text: object, default: Any) -> Any:
    """A stored JSON column, or ``default`` when it cannot be read (one bad row must not stop a reader)."""
    try:
        return json.loads(str(text))
    except ValueError:
        return default


def _json_list(text: object) -> list[object]:
    value = json_value(text, [])
    return value if isinstance(value, list) else []


def _texts(raw: object) -> list[str]:
    """Stored responses (a JSON list) as texts; a row that is not JSON is one text."""
    value = json_value(raw, None)
    if value is None:
        return [str(raw)]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _call(r: Any, cut: int | None = None) -> LMCallRow:
    texts = _texts(r[7])
    return LMCallRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), float(r[6]),
                     [text[:cut] for text in texts] if cut else texts, int(r[8]), int(r[9]), float(r[10]),
                     float(r[11]), bool(r[12]), [str(x) for x in _json_list(r[13])], int(r[14]), bool(r[15]))
