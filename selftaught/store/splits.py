"""Split secrets and the instances each run used (tables of migration m005).

The store keeps every secret a run used, by fingerprint, so ``resume`` and ``replay`` draw the
very same hidden instances; one of them is the store's default, made at random on first use. The
store holds the secret as hex text and knows nothing of how tasks use it (that is
``selftaught.tasks.secret``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from selftaught.errors import StoreError
from selftaught.store.runstore import RunStore

__all__ = ["RunSplit", "default_secret", "predates_splits", "record_split", "remember_secret", "run_splits",
           "secret_by_fingerprint", "set_default_secret"]


@dataclass(frozen=True)
class RunSplit:
    """Which task (with every parameter), scoring, secret and instances a run scored on."""

    task: str
    params: dict[str, Any]
    scoring: str
    secret: str
    instances: str


def default_secret(store: RunStore, make: tuple[str, str]) -> tuple[str, str]:
    """The store's default ``(fingerprint, hex)``; ``make`` is stored as the default if there is none."""
    with store._write() as db:
        row = db.execute("SELECT fingerprint, secret FROM split_secrets WHERE is_default=1").fetchone()
        if row is not None:
            return str(row[0]), str(row[1])
        db.execute("INSERT OR IGNORE INTO split_secrets VALUES (?,?,?,0,?)", (*make, "made", time.time()))
        db.execute("UPDATE split_secrets SET is_default=1 WHERE fingerprint=?", (make[0],))
    return make


def remember_secret(store: RunStore, fingerprint: str, secret_hex: str, origin: str) -> None:
    """Keep a secret a run uses (a no-op if the store has it already)."""
    with store._write() as db:
        db.execute("INSERT OR IGNORE INTO split_secrets VALUES (?,?,?,0,?)",
                   (fingerprint, secret_hex, origin, time.time()))


def set_default_secret(store: RunStore, fingerprint: str, secret_hex: str, origin: str) -> None:
    """Make a secret the store's default (new runs use it unless their config names a file)."""
    with store._write() as db:
        db.execute("INSERT OR IGNORE INTO split_secrets VALUES (?,?,?,0,?)",
                   (fingerprint, secret_hex, origin, time.time()))
        db.execute("UPDATE split_secrets SET is_default=(fingerprint=?)", (fingerprint,))


def secret_by_fingerprint(store: RunStore, fingerprint: str) -> str:
    """The hex of the stored secret with ``fingerprint``; ``StoreError`` if the store lacks it."""
    row = store._db.execute("SELECT secret FROM split_secrets WHERE fingerprint=?", (fingerprint,)).fetchone()
    if row is None:
        raise StoreError(f"the run store has no split secret {fingerprint} (import it: selftaught secret import FILE)")
    return str(row[0])


def record_split(store: RunStore, run_id: str, split: RunSplit) -> RunSplit:
    """Record what ``run_id`` scores ``split.task`` on; if it was recorded before, return that row."""
    with store._write() as db:
        db.execute("INSERT OR IGNORE INTO run_splits VALUES (?,?,?,?,?,?,?)",
                   (run_id, split.task, json.dumps(split.params), split.scoring, split.secret, split.instances,
                    time.time()))
    return next(row for row in run_splits(store, run_id) if row.task == split.task)


def predates_splits(store: RunStore, run_id: str) -> bool:
    """Whether ``run_id`` scored something but recorded no split (a run made before secret splits)."""
    scored = store._db.execute("SELECT 1 FROM evaluations WHERE run_id=? LIMIT 1", (run_id,)).fetchone()
    return scored is not None and not run_splits(store, run_id)


def run_splits(store: RunStore, run_id: str) -> list[RunSplit]:
    """Every task a run recorded, in the order they were first used."""
    rows = store._db.execute("SELECT task, params, scoring, secret, instances FROM run_splits WHERE run_id=? "
                             "ORDER BY created_at, rowid", (run_id,)).fetchall()
    return [RunSplit(task, json.loads(params), scoring, secret, instances)
            for task, params, scoring, secret, instances in rows]
