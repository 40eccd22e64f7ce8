"""Read-only queries over the run store, shared by the report and the dashboard.

Opens the SQLite database with a ``mode=ro`` URI and ``PRAGMA query_only``, so nothing here can
write, and a run that is writing at the same time (WAL) is never blocked. Every query is bounded
by ``run_id`` and uses the indexes the store's migrations create. It imports no engine code: rows
come back as small frozen dataclasses defined here.

Left out: anything paginated for the web pages (``selftaught.dashboard.queries``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftaught.errors import StoreError
from selftaught.records import Iteration

__all__ = [
    "TRANSFER_TABLE",
    "IterationRow",
    "RunSummary",
    "SafetyCount",
    "StepCost",
    "TransferRow",
    "connect_readonly",
    "cost_by_iteration",
    "initial_scores",
    "iterations",
    "list_runs",
    "run_summary",
    "safety_counts",
    "step_of_tag",
    "transfer_rows",
]

TRANSFER_TABLE = "transfer"
"""Hook for the (future) transfer command: when the store has a table of this name with columns
``run_id, program_id, task, score, se``, the report shows it as the transfer table; else it is skipped."""


@dataclass(frozen=True)
class RunSummary:
    """One run as the runs list shows it."""

    id: str
    status: str
    task: str
    lm: str
    seed: int
    message: str
    created_at: float
    updated_at: float
    config: dict[str, Any]
    steps: int
    best_val: float | None
    cost_usd: float
    lm_calls: int
    prompt_tokens: int
    completion_tokens: int
    kind: str = "stop"  # stop | improve | score | transfer | baseline | experiment ...


IterationRow = Iteration
"""One step of the loop, as stored in ``iterations`` (the loop's own record)."""


@dataclass(frozen=True)
class StepCost:
    """LM usage of one iteration: the calls whose ``tag`` starts with ``t<step>/``."""

    step: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class SafetyCount:
    """How many of ``scanned`` programs have at least one finding of ``category``."""

    category: str
    flagged: int
    scanned: int


@dataclass(frozen=True)
class TransferRow:
    """One cell of the transfer table: an improver's score on another task."""

    run_id: str
    program_id: int
    task: str
    score: float | None
    se: float | None
    improver: str = ""  # the column label (seed, a file name, RUN_ID:rule)
    initial: float | None = None  # u(s) on the same split
    initial_se: float | None = None
    runs: int = 0


def connect_readonly(db_path: Path | str) -> sqlite3.Connection:
    """A read-only connection to the store at ``db_path``; StoreError when it is missing or unreadable."""
    path = Path(db_path)
    if not path.is_file():
        raise StoreError(f"no run store at {path}")
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10, check_same_thread=False)
        db.execute("PRAGMA query_only=ON")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read run store {path}: {exc}") from exc
    return db


def _summary(db: sqlite3.Connection, row: tuple[Any, ...]) -> RunSummary:
    run_id = row[0]
    steps, best_val = db.execute("SELECT COUNT(*), MAX(val) FROM iterations WHERE run_id=?", (run_id,)).fetchone()
    calls, prompt, completion, cost = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0),"
        " COALESCE(SUM(cost_usd),0) FROM lm_calls WHERE run_id=?",
        (run_id,),
    ).fetchone()
    try:
        config = json.loads(row[8])
    except ValueError:
        config = {}
    return RunSummary(
        id=run_id, status=row[1], task=row[2], lm=row[3], seed=row[4], message=row[5], created_at=row[6],
        updated_at=row[7], config=config if isinstance(config, dict) else {}, steps=int(steps),
        best_val=best_val, cost_usd=float(cost), lm_calls=int(calls), prompt_tokens=int(prompt),
        completion_tokens=int(completion), kind=str(row[9] or "stop"),
    )


_RUN_COLUMNS = "id, status, task, lm, seed, message, created_at, updated_at, config, kind"


def list_runs(db: sqlite3.Connection) -> list[RunSummary]:
    """Every run, newest first."""
    rows = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id").fetchall()
    return [_summary(db, row) for row in rows]


def run_summary(db: sqlite3.Connection, run_id: str) -> RunSummary:
    """One run; StoreError when there is none with this id."""
    row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
    if row is None:
        raise StoreError(f"no run {run_id!r} in the run store")
    return _summary(db, row)


def iterations(db: sqlite3.Connection, run_id: str) -> list[IterationRow]:
    """The run's loop steps in order of ``t``."""
    rows = db.execute(
        "SELECT t, candidate_id, incumbent_id, val, val_se, test, test_se, accepted, reason"
        " FROM iterations WHERE run_id=? ORDER BY t",
        (run_id,),
    ).fetchall()
    return [IterationRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8]) for r in rows]


def initial_scores(db: sqlite3.Connection, run_id: str, tag_prefix: str = "initial") -> dict[str, float]:
    """u(s), the task's initial solution's score, per split, as recorded under ``<tag_prefix>/<split>``
    (STOP runs score it before step 0); the latest evaluation of each split; {} when none was recorded."""
    found: dict[str, float] = {}
    for tag, score in db.execute(
        "SELECT tag, score FROM evaluations WHERE run_id=? AND substr(tag, 1, ?)=? ORDER BY id",
        (run_id, len(tag_prefix) + 1, f"{tag_prefix}/"),
    ):
        found[str(tag).rsplit("/", 1)[1]] = float(score)
    return found


def step_of_tag(tag: str) -> int | None:
    """The iteration a call-site tag belongs to: ``t3/improve/c0`` -> 3; None for other tags."""
    head = tag.split("/", 1)[0]
    if len(head) > 1 and head[0] == "t" and head[1:].isdigit():
        return int(head[1:])
    return None


def cost_by_iteration(db: sqlite3.Connection, run_id: str) -> list[StepCost]:
    """LM calls, tokens and dollars per iteration (tags without a ``t<N>/`` prefix are left out)."""
    rows = db.execute(
        "SELECT substr(tag, 1, instr(tag || '/', '/') - 1) AS head, COUNT(*), SUM(prompt_tokens),"
        " SUM(completion_tokens), SUM(cost_usd) FROM lm_calls WHERE run_id=? GROUP BY head",
        (run_id,),
    ).fetchall()
    steps: list[StepCost] = []
    for head, calls, prompt, completion, cost in rows:
        step = step_of_tag(str(head))
        if step is not None:
            steps.append(StepCost(step, int(calls), int(prompt or 0), int(completion or 0), float(cost or 0.0)))
    return sorted(steps, key=lambda s: s.step)


def safety_counts(db: sqlite3.Connection, run_ids: list[str], kind: str = "improver") -> list[SafetyCount]:
    """Per finding category: programs of ``kind`` flagged at least once, out of all of them in the runs."""
    marks = ",".join("?" * len(run_ids))
    scanned = int(db.execute(
        f"SELECT COUNT(*) FROM programs WHERE run_id IN ({marks}) AND kind=?", (*run_ids, kind)
    ).fetchone()[0])
    rows = db.execute(
        f"SELECT f.category, COUNT(DISTINCT f.program_id) FROM findings f JOIN programs p ON p.id = f.program_id"
        f" WHERE f.run_id IN ({marks}) AND p.kind=? GROUP BY f.category ORDER BY f.category",
        (*run_ids, kind),
    ).fetchall()
    return [SafetyCount(str(category), int(flagged), scanned) for category, flagged in rows]


def transfer_rows(db: sqlite3.Connection, run_ids: list[str]) -> list[TransferRow]:
    """The transfer table of the runs, or [] when the store has none yet (see ``TRANSFER_TABLE``)."""
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TRANSFER_TABLE,)
    ).fetchone()
    if exists is None or not run_ids:
        return []
    marks = ",".join("?" * len(run_ids))
    try:
        rows = db.execute(
            f"SELECT run_id, program_id, task, score, se FROM {TRANSFER_TABLE} WHERE run_id IN ({marks})"
            " ORDER BY run_id, program_id, task",
            run_ids,
        ).fetchall()
    except sqlite3.Error:
        return []  # a table of another shape: the hook is not wired to it
    try:  # the transfer command's full rows: the column label, u(s) and the number of runs
        full = db.execute(
            f"SELECT run_id, program_id, task, score, se, improver, initial, initial_se, runs FROM {TRANSFER_TABLE}"
            f" WHERE run_id IN ({marks}) ORDER BY id",
            run_ids,
        ).fetchall()
        return [TransferRow(str(r[0]), int(r[1]), str(r[2]), r[3], r[4], str(r[5]), r[6], r[7], int(r[8]))
                for r in full]
    except sqlite3.Error:
        return [TransferRow(str(r[0]), int(r[1]), str(r[2]), r[3], r[4]) for r in rows]
