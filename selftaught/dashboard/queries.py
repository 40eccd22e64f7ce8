"""The dashboard's paginated, index-backed queries (read-only; the connection comes from the server).

Pages use LIMIT/OFFSET over ``ORDER BY id`` with a ``run_id`` (or ``program_id``) bound, so SQLite
walks the store's indexes (``lm_calls_run``, ``evaluations_program``, ``programs_run``,
``findings_program``) rather than the tables. Sources and prompts are fetched only for the one
program or call a page shows.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from selftaught.records import broker_state

__all__ = [
    "EvaluationRow",
    "LMCallRow",
    "ProgramInfo",
    "count_lm_calls",
    "evaluation_page",
    "event_counts",
    "findings",
    "improver_nodes",
    "live_status",
    "lm_call",
    "lm_call_page",
    "program",
    "program_counts",
    "strategy_tags",
]


@dataclass(frozen=True)
class ProgramInfo:
    id: int
    run_id: str
    kind: str
    source: str
    parent_id: int | None
    sha256: str


@dataclass(frozen=True)
class EvaluationRow:
    id: int
    program_id: int
    tag: str
    task: str
    split: str
    score: float
    instances: int
    failed: int
    reason: str
    elapsed_s: float


@dataclass(frozen=True)
class LMCallRow:
    id: int
    tag: str
    model: str
    system: str
    prompt: str
    n: int
    temperature: float
    responses: list[str]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    cached: bool


def program(db: sqlite3.Connection, run_id: str, program_id: int) -> ProgramInfo | None:
    """One program of the run, or None (also when it belongs to another run)."""
    row = db.execute(
        "SELECT id, run_id, kind, source, parent_id, sha256 FROM programs WHERE id=? AND run_id=?",
        (program_id, run_id),
    ).fetchone()
    return None if row is None else ProgramInfo(row[0], row[1], row[2], row[3], row[4], row[5])


def improver_nodes(db: sqlite3.Connection, run_id: str) -> list[tuple[int, int | None]]:
    """``(id, parent_id)`` of the run's improvers, in the order they were stored."""
    rows = db.execute(
        "SELECT id, parent_id FROM programs WHERE run_id=? AND kind='improver' ORDER BY id", (run_id,)
    ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]


def program_counts(db: sqlite3.Connection, run_id: str) -> dict[str, int]:
    rows = db.execute("SELECT kind, COUNT(*) FROM programs WHERE run_id=? GROUP BY kind", (run_id,)).fetchall()
    return {str(kind): int(n) for kind, n in rows}


def event_counts(db: sqlite3.Connection, run_id: str) -> dict[str, int]:
    rows = db.execute("SELECT kind, COUNT(*) FROM events WHERE run_id=? GROUP BY kind", (run_id,)).fetchall()
    return {str(kind): int(n) for kind, n in rows}


def strategy_tags(db: sqlite3.Connection, program_id: int) -> list[tuple[str, str]]:
    """``(tag, origin)`` pairs of a program."""
    rows = db.execute(
        "SELECT tag, origin FROM strategy_tags WHERE program_id=? ORDER BY tag", (program_id,)
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def findings(db: sqlite3.Connection, program_id: int) -> list[tuple[str, str, int]]:
    """``(category, detail, line)`` of a program's static-scan findings."""
    rows = db.execute(
        "SELECT category, detail, line FROM findings WHERE program_id=? ORDER BY line, id", (program_id,)
    ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def _matching_ids(run_id: str, program_id: int, steps: list[int]) -> tuple[str, list[object]]:
    """A query for the ids of the evaluations *of* a program plus, for an improver, those of the
    solutions it produced while its meta-utility was estimated (tags ``t<step>/eval/...``).

    A UNION of one indexed lookup per part: ``evaluations_program`` for the program, and a range on
    the tag (a prefix match SQLite can answer from an index on ``(run_id, tag)`` where there is one).
    """
    parts = ["SELECT id FROM evaluations WHERE program_id=? AND run_id=?"]
    params: list[object] = [program_id, run_id]
    for step in steps:
        parts.append("SELECT id FROM evaluations WHERE run_id=? AND tag >= ? AND tag < ?")
        params += [run_id, f"t{step}/eval/", f"t{step}/eval0"]  # '0' follows '/' in ASCII
    return " UNION ".join(parts), params


def evaluation_page(
    db: sqlite3.Connection, run_id: str, program_id: int, steps: list[int], limit: int, offset: int
) -> tuple[int, list[EvaluationRow]]:
    """The total and one page of a program's evaluations (see ``_matching_ids``), in stored order."""
    ids, params = _matching_ids(run_id, program_id, steps)
    total = int(db.execute(f"SELECT COUNT(*) FROM ({ids})", params).fetchone()[0])
    rows = db.execute(
        "SELECT id, program_id, tag, task, split, score, instances, failed, reason, elapsed_s FROM evaluations"
        f" WHERE id IN (SELECT id FROM ({ids}) ORDER BY id LIMIT ? OFFSET ?) ORDER BY id",
        [*params, limit, offset],
    ).fetchall()
    return total, [EvaluationRow(*r) for r in rows]


def _responses(raw: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        return [raw]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


_CALL_COLUMNS = ("id, tag, model, system, prompt, n, temperature, responses, prompt_tokens, completion_tokens,"
                 " latency_s, cost_usd, cached")


def _call(r: Any) -> LMCallRow:
    return LMCallRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), float(r[6]),
                     _responses(str(r[7])), int(r[8]), int(r[9]), float(r[10]), float(r[11]), bool(r[12]))


def count_lm_calls(db: sqlite3.Connection, run_id: str) -> int:
    return int(db.execute("SELECT COUNT(*) FROM lm_calls WHERE run_id=?", (run_id,)).fetchone()[0])


def lm_call_page(db: sqlite3.Connection, run_id: str, limit: int, offset: int) -> list[LMCallRow]:
    """One page of the run's LM calls, oldest first, with prompts and each response cut to 300 characters.

    Responses are stored as one JSON list, so they are decoded whole and cut afterwards (cutting the
    JSON text first would leave undecodable, escaped text on the page).
    """
    rows = db.execute(
        "SELECT id, tag, model, substr(system, 1, 300), substr(prompt, 1, 300), n, temperature,"
        " responses, prompt_tokens, completion_tokens, latency_s, cost_usd, cached"
        " FROM lm_calls WHERE run_id=? ORDER BY id LIMIT ? OFFSET ?",
        (run_id, limit, offset),
    ).fetchall()
    calls = [_call(r) for r in rows]
    return [dataclasses.replace(c, responses=[text[:300] for text in c.responses]) for c in calls]


def lm_call(db: sqlite3.Connection, run_id: str, call_id: int) -> LMCallRow | None:
    """One LM call of the run in full, or None."""
    row = db.execute(f"SELECT {_CALL_COLUMNS} FROM lm_calls WHERE id=? AND run_id=?", (call_id, run_id)).fetchone()
    return None if row is None else _call(row)


def live_status(db: sqlite3.Connection, run_id: str, status: str) -> str:
    """``status``, or ``interrupted`` for a ``running`` run whose broker has died (``store.liveness``)."""
    if status != "running":
        return status
    try:
        row = db.execute("SELECT broker_pid, broker_host, heartbeat_at, updated_at FROM runs WHERE id=?",
                         (run_id,)).fetchone()
    except sqlite3.OperationalError:  # a store written before brokers recorded themselves
        return status
    if row is None:
        return status
    return broker_state(status, row[0], row[1] or "", row[2] if row[2] is not None else row[3])
