"""The run store: one SQLite database (WAL) under the runs directory holding every run.

Append-only: runs, programs (source, hash, parent), iterations, evaluations, every LM call,
the LM response cache that makes runs replayable, and safety events. Each write commits at
once, so killing a run loses nothing already finished. Safe to use from several threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftaught.errors import StoreError
from selftaught.records import Iteration, LMRequest, LMResponse
from selftaught.store._files import StorableConnection, decode, make_private, storable
from selftaught.store.liveness import broker_state, this_host
from selftaught.store.migrations import migrate
from selftaught.store.reader import StoreReader

__all__ = ["DB_NAME", "ProgramRow", "RunCache", "RunRecorder", "RunRow", "RunStore", "TransferEntry"]

DB_NAME = "selftaught.db"


@dataclass(frozen=True)
class RunRow:
    id: str
    status: str
    task: str
    lm: str
    seed: int
    config: dict[str, Any]
    sandbox_layers: list[str]
    message: str
    created_at: float
    kind: str = "stop"
    broker_pid: int | None = None
    broker_host: str = ""
    heartbeat_at: float | None = None


@dataclass(frozen=True)
class ProgramRow:
    id: int
    kind: str
    source: str
    parent_id: int | None


@dataclass(frozen=True)
class TransferEntry:
    """One cell of a stored transfer table: an improver's score on a task (see migration m004)."""

    program_id: int
    improver: str
    origin: str
    task: str
    split: str
    runs: int
    score: float
    se: float
    initial: float
    initial_se: float
    normalised: float
    normalised_se: float


class RunStore:
    """Reads and writes runs in ``path`` (a database file, or ``:memory:`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                make_private(Path(self.path))
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30,
                                       factory=StorableConnection)
            self._db.text_factory = decode
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
            migrate(self._db)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open run store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    @classmethod
    def in_dir(cls, runs_dir: Path) -> RunStore:
        """The store of a runs directory (created if missing)."""
        return cls(runs_dir / DB_NAME)

    def close(self) -> None:
        self._db.close()

    def reader(self) -> StoreReader:
        """The store's read model over this writer's own connection: it sees what was just written (and works
        for ``:memory:``); for a read-only connection of its own, use ``StoreReader.open(path)``."""
        return StoreReader(self._db, self.path)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- runs --------------------------------------------------------------------------------

    def create_run(
        self, task: str, lm: str, seed: int, config: dict[str, Any], layers: list[str], kind: str = "stop"
    ) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, created_at, updated_at, status, task, lm, seed, config, sandbox_layers,"
                " message, kind) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, now, now, "running", task, lm, seed, json.dumps(config), json.dumps(layers), "", kind),
            )
        return run_id

    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status=?, message=?, updated_at=? WHERE id=?",
                (status, message, time.time(), run_id),
            )

    def claim(self, run_id: str) -> None:
        """Record this process as the run's broker (pid, host, a first heartbeat)."""
        with self._write() as db:
            db.execute("UPDATE runs SET broker_pid=?, broker_host=?, heartbeat_at=? WHERE id=?",
                       (os.getpid(), this_host(), time.time(), run_id))

    def beat(self, run_id: str) -> None:
        """Refresh the run's heartbeat (its broker is alive)."""
        with self._write() as db:
            db.execute("UPDATE runs SET heartbeat_at=? WHERE id=?", (time.time(), run_id))

    def set_config(self, run_id: str, config: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET config=? WHERE id=?", (json.dumps(config), run_id))

    def set_invocation(self, run_id: str, invocation: dict[str, Any]) -> None:
        """Store what a command was asked to do (JSON-safe), for ``replay`` and ``resume``."""
        with self._write() as db:
            db.execute("UPDATE runs SET invocation=? WHERE id=?", (json.dumps(invocation), run_id))

    def invocation(self, run_id: str) -> dict[str, Any]:
        """What the command of ``run_id`` was asked to do (``{}`` when nothing was stored)."""
        row = self._db.execute("SELECT invocation FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        found = json.loads(row[0])
        return found if isinstance(found, dict) else {}

    def set_layers(self, run_id: str, layers: list[str]) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET sandbox_layers=? WHERE id=?", (json.dumps(layers), run_id))

    def get_run(self, run_id: str) -> RunRow:
        row = self._db.execute(
            "SELECT id, status, task, lm, seed, config, sandbox_layers, message, created_at, kind, broker_pid,"
            " broker_host, heartbeat_at, updated_at FROM runs WHERE id=?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        # A run whose broker died still says "running" in the table; readers are told the truth.
        status = broker_state(row[1], row[10], row[11] or "", row[12] if row[12] is not None else row[13])
        return RunRow(row[0], status, row[2], row[3], row[4], _json(row[5], {}), _json(row[6], []), row[7], row[8],
                      row[9], row[10], row[11] or "", row[12])

    def list_runs(self) -> list[RunRow]:
        ids = [r[0] for r in self._db.execute("SELECT id FROM runs ORDER BY created_at")]
        return [self.get_run(run_id) for run_id in ids]

    # --- programs ----------------------------------------------------------------------------

    def add_program(self, run_id: str, kind: str, source: str, parent_id: int | None = None) -> int:
        """Store a program once per run and kind; returns its id (the existing one if seen)."""
        source = storable(source)  # the digest is of the text as stored
        digest = hashlib.sha256(source.encode()).hexdigest()
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO programs (run_id, kind, sha256, source, parent_id, created_at)"
                " VALUES (?,?,?,?,?,?)",
                (run_id, kind, digest, source, parent_id, time.time()),
            )
            row = db.execute(
                "SELECT id FROM programs WHERE run_id=? AND kind=? AND sha256=?", (run_id, kind, digest)
            ).fetchone()
            if parent_id is not None and parent_id != row[0]:
                db.execute("UPDATE programs SET parent_id=? WHERE id=? AND parent_id IS NULL", (parent_id, row[0]))
        return int(row[0])

    def programs(self, run_id: str, kind: str | None = None) -> list[ProgramRow]:
        """The run's programs in the order they were stored."""
        query = "SELECT id, kind, source, parent_id FROM programs WHERE run_id=?"
        params: tuple[Any, ...] = (run_id,)
        if kind is not None:
            query, params = query + " AND kind=?", (run_id, kind)
        rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        return [ProgramRow(r[0], r[1], r[2], r[3]) for r in rows]

    def add_findings(self, run_id: str, program_id: int, findings: list[tuple[str, str, int]]) -> None:
        """Store static-scan findings ``(category, detail, line)`` of a program."""
        now = time.time()
        with self._write() as db:
            db.executemany(
                "INSERT INTO findings (run_id, program_id, category, detail, line, created_at) VALUES (?,?,?,?,?,?)",
                [(run_id, program_id, category, detail, line, now) for category, detail, line in findings],
            )

    def add_strategy_tags(self, run_id: str, program_id: int, tags: list[str], origin: str) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO strategy_tags VALUES (?,?,?,?)",
                [(run_id, program_id, tag, origin) for tag in tags],
            )

    def program_source(self, program_id: int) -> str:
        row = self._db.execute("SELECT source FROM programs WHERE id=?", (program_id,)).fetchone()
        if row is None:
            raise StoreError(f"no program {program_id}")
        return str(row[0])

    # --- iterations and evaluations ----------------------------------------------------------

    def add_iteration(self, run_id: str, row: Iteration) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO iterations VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, row.t, row.candidate_id, row.incumbent_id, row.val, row.val_se, row.test,
                 row.test_se, int(row.accepted), row.reason, time.time()),
            )

    def iterations(self, run_id: str) -> list[Iteration]:
        rows = self._db.execute(
            "SELECT t, candidate_id, incumbent_id, val, val_se, test, test_se, accepted, reason"
            " FROM iterations WHERE run_id=? ORDER BY t",
            (run_id,),
        ).fetchall()
        return [Iteration(t=r[0], candidate_id=r[1], incumbent_id=r[2], val=r[3], val_se=r[4], test=r[5], test_se=r[6],
                          accepted=bool(r[7]), reason=r[8]) for r in rows]

    def add_evaluation(
        self, run_id: str, program_id: int, tag: str, task: str, split: str,
        score: float, instances: int, failed: int, reason: str, elapsed_s: float,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO evaluations (run_id, program_id, tag, task, split, score, instances, failed,"
                " reason, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, program_id, tag, task, split, score, instances, failed, reason, elapsed_s,
                 time.time()),
            )

    def count(self, table: str, run_id: str) -> int:
        if table not in {"evaluations", "lm_calls", "programs", "events"}:
            raise ValueError(table)
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id=?", (run_id,)).fetchone()[0])

    def add_event(self, run_id: str, kind: str, detail: str, program_id: int | None = None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO events (run_id, program_id, kind, detail, created_at) VALUES (?,?,?,?,?)",
                (run_id, program_id, kind, detail, time.time()),
            )

    # --- transfer tables ---------------------------------------------------------------------

    def add_transfer(self, run_id: str, entries: list[TransferEntry]) -> None:
        """Store the cells of a transfer table of ``run_id``."""
        now = time.time()
        with self._write() as db:
            db.executemany(
                "INSERT INTO transfer (run_id, program_id, improver, origin, task, split, runs, score, se, initial,"
                " initial_se, normalised, normalised_se, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(run_id, e.program_id, e.improver, e.origin, e.task, e.split, e.runs, e.score, e.se, e.initial,
                  e.initial_se, e.normalised, e.normalised_se, now) for e in entries],
            )

    def transfer(self, run_id: str) -> list[TransferEntry]:
        """The transfer table of ``run_id`` in the order it was stored ([] when it has none)."""
        rows = self._db.execute(
            "SELECT program_id, improver, origin, task, split, runs, score, se, initial, initial_se, normalised,"
            " normalised_se FROM transfer WHERE run_id=? ORDER BY id",
            (run_id,),
        ).fetchall()
        return [TransferEntry(*row) for row in rows]

    # --- LM calls and the response cache -----------------------------------------------------

    def add_lm_call(self, run_id: str, request: LMRequest, response: LMResponse) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO lm_calls (run_id, tag, model, system, prompt, n, temperature, responses,"
                " prompt_tokens, completion_tokens, latency_s, cost_usd, cached, created_at, finish_reasons,"
                " cached_prompt_tokens, cache_write_tokens, truncated, usage_estimated)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, request.tag, response.model, request.system, request.user, request.n,
                 request.temperature, json.dumps(list(response.texts)), response.prompt_tokens,
                 response.completion_tokens, response.latency_s, response.cost_usd,
                 int(response.cached), time.time(), json.dumps(list(response.finish_reasons)),
                 response.cached_prompt_tokens, response.cache_write_tokens, response.truncated,
                 int(response.usage_estimated)),
            )

    def lm_totals(self, run_id: str) -> dict[str, float]:
        """LM usage of a run: ``calls`` (all requests), ``cached_calls`` (answered from the run's cache,
        not sent), ``new_calls``, ``completions``, tokens, ``truncated`` samples, ``estimated_calls``
        (usage estimated, not reported by the server) and ``cost_usd``."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n),0), COALESCE(SUM(prompt_tokens),0),"
            " COALESCE(SUM(completion_tokens),0), COALESCE(SUM(cost_usd),0), COALESCE(SUM(cached),0),"
            " COALESCE(SUM(truncated),0), COALESCE(SUM(usage_estimated),0), COALESCE(SUM(cached_prompt_tokens),0)"
            " FROM lm_calls WHERE run_id=?",
            (run_id,),
        ).fetchone()
        return {"calls": row[0], "completions": row[1], "prompt_tokens": row[2],
                "completion_tokens": row[3], "cost_usd": row[4], "cached_calls": row[5],
                "new_calls": row[0] - row[5], "truncated": row[6], "estimated_calls": row[7],
                "cached_prompt_tokens": row[8]}

    def lm_samples(self, run_id: str, tag_prefix: str) -> tuple[int, int]:
        """LM requests and samples recorded under tags starting with ``tag_prefix``: (requests, samples)."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n),0) FROM lm_calls WHERE run_id=? AND substr(tag, 1, ?)=?",
            (run_id, len(tag_prefix), tag_prefix),
        ).fetchone()
        return int(row[0]), int(row[1])

    def cache_get(self, run_id: str, key: str) -> str | None:
        row = self._db.execute("SELECT text FROM lm_cache WHERE run_id=? AND key=?", (run_id, key)).fetchone()
        return None if row is None else str(row[0])

    def cache_meta(self, run_id: str, key: str) -> dict[str, Any] | None:
        """The metadata stored with a cached sample (finish reason, tokens, ...), or ``None``."""
        row = self._db.execute("SELECT meta FROM lm_cache WHERE run_id=? AND key=?", (run_id, key)).fetchone()
        if row is None:
            return None
        meta = json.loads(row[0])
        return meta if isinstance(meta, dict) else {}

    def cache_put(self, run_id: str, key: str, text: str, meta: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO lm_cache VALUES (?,?,?,?)",
                (run_id, key, text, json.dumps(meta, ensure_ascii=True)),
            )


class RunRecorder:
    """The ``records.Recorder`` of one run, writing into a ``RunStore``."""

    def __init__(self, store: RunStore, run_id: str, on_record: Callable[[str], None] = lambda kind: None) -> None:
        self.store = store
        self.run_id = run_id
        self.on_record = on_record

    def program(self, kind: str, source: str, parent_id: int | None = None) -> int:
        program_id = self.store.add_program(self.run_id, kind, source, parent_id)
        self.on_record("program")
        return program_id

    def evaluation(
        self, program_id: int, tag: str, task: str, split: str,
        score: float, instances: int, failed: int, reason: str, elapsed_s: float,
    ) -> None:
        self.store.add_evaluation(
            self.run_id, program_id, tag, task, split, score, instances, failed, reason, elapsed_s
        )
        self.on_record("evaluation")

    def lm_call(self, request: LMRequest, response: LMResponse) -> None:
        self.store.add_lm_call(self.run_id, request, response)
        self.on_record("lm_call")

    def event(self, kind: str, detail: str, program_id: int | None = None) -> None:
        self.store.add_event(self.run_id, kind, detail, program_id)
        self.on_record("event")
        if kind == "truncated":  # shown on its own in the progress line
            self.on_record("truncated")

    def iteration(self, row: Iteration) -> None:
        self.store.add_iteration(self.run_id, row)

    def source(self, program_id: int) -> str:
        return self.store.program_source(program_id)


class RunCache:
    """One run's LM response cache in the store (the ``ResponseCache`` protocol of ``selftaught.lm``)."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def get(self, key: str) -> str | None:
        return self.store.cache_get(self.run_id, key)

    def put(self, key: str, text: str, meta: Mapping[str, Any]) -> None:
        self.store.cache_put(self.run_id, key, text, dict(meta))

    def meta(self, key: str) -> dict[str, Any] | None:
        return self.store.cache_meta(self.run_id, key)


def _json(text: str, default: Any) -> Any:
    """A stored JSON column, or ``default`` when it cannot be read (one bad row must not stop a reader)."""
    try:
        return json.loads(text)
    except ValueError:
        return default
