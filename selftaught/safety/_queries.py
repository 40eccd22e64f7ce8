"""Read-only queries of the safety tables (``findings``, ``strategy_tags``, ``events``) of a run store.

``RunStore`` has writers for these tables but no readers yet, so the reads live here, against the
store's connection; they only ever SELECT. When ``RunStore`` grows ``findings``/``strategy_tags``/
``event_counts`` methods, these functions should call them instead.

Left out: writes (they go through ``RunStore.add_findings``/``add_strategy_tags``).
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

from selftaught.errors import StoreError
from selftaught.store import RunStore

__all__ = ["StoredFinding", "event_counts", "scanned_program_ids", "stored_findings", "stored_tags"]


class StoredFinding(NamedTuple):
    """A finding as stored: the program it belongs to and that program's kind."""

    program_id: int
    kind: str
    category: str
    detail: str
    line: int


def _select(store: RunStore, query: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    connection: sqlite3.Connection = store._db  # noqa: SLF001 - no public reader yet, see the docstring
    try:
        return list(connection.execute(query, params).fetchall())
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read safety tables of {store.path}: {exc}") from exc


def stored_findings(store: RunStore, run_id: str) -> list[StoredFinding]:
    """Every finding of a run, by program then line."""
    rows = _select(
        store,
        "SELECT f.program_id, p.kind, f.category, f.detail, f.line FROM findings f"
        " JOIN programs p ON p.id = f.program_id WHERE f.run_id=? ORDER BY f.program_id, f.line, f.id",
        (run_id,),
    )
    return [StoredFinding(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]


def stored_tags(store: RunStore, run_id: str) -> list[tuple[int, str, str]]:
    """``(program_id, tag, origin)`` of every strategy tag of a run."""
    rows = _select(store, "SELECT program_id, tag, origin FROM strategy_tags WHERE run_id=? ORDER BY program_id, tag",
                   (run_id,))
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def scanned_program_ids(store: RunStore, run_id: str) -> set[int]:
    """Programs of the run that already have findings or strategy tags."""
    rows = _select(
        store,
        "SELECT program_id FROM findings WHERE run_id=? UNION SELECT program_id FROM strategy_tags WHERE run_id=?",
        (run_id, run_id),
    )
    return {int(r[0]) for r in rows}


def event_counts(store: RunStore, run_id: str) -> dict[str, int]:
    """How many runtime events of each kind a run recorded."""
    rows = _select(store, "SELECT kind, COUNT(*) FROM events WHERE run_id=? GROUP BY kind ORDER BY kind", (run_id,))
    return {str(r[0]): int(r[1]) for r in rows}
