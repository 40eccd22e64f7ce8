"""Ordered schema migrations for the run store; each runs once and is recorded in ``_migrations``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from selftaught.errors import StoreError

__all__ = ["MIGRATIONS", "migrate"]

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            status TEXT NOT NULL,            -- running | finished | failed | stopped
            task TEXT NOT NULL,
            lm TEXT NOT NULL,
            seed INTEGER NOT NULL,
            config TEXT NOT NULL,            -- RunConfig.to_dict() as JSON
            sandbox_layers TEXT NOT NULL DEFAULT '[]',
            message TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE programs (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            kind TEXT NOT NULL,              -- improver | solution
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL,
            parent_id INTEGER REFERENCES programs(id),
            created_at REAL NOT NULL,
            UNIQUE (run_id, kind, sha256)
        );
        CREATE TABLE iterations (
            run_id TEXT NOT NULL REFERENCES runs(id),
            t INTEGER NOT NULL,
            candidate_id INTEGER REFERENCES programs(id),
            incumbent_id INTEGER NOT NULL REFERENCES programs(id),
            val REAL, val_se REAL, test REAL, test_se REAL,
            accepted INTEGER NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, t)
        );
        CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            program_id INTEGER NOT NULL REFERENCES programs(id),
            tag TEXT NOT NULL,
            task TEXT NOT NULL,
            split TEXT NOT NULL,
            score REAL NOT NULL,
            instances INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            elapsed_s REAL NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX evaluations_run ON evaluations(run_id, program_id);
        CREATE TABLE lm_calls (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tag TEXT NOT NULL,
            model TEXT NOT NULL,
            system TEXT NOT NULL,
            prompt TEXT NOT NULL,
            n INTEGER NOT NULL,
            temperature REAL NOT NULL,
            responses TEXT NOT NULL,         -- JSON list of texts
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            latency_s REAL NOT NULL,
            cost_usd REAL NOT NULL,
            cached INTEGER NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX lm_calls_run ON lm_calls(run_id, id);
        CREATE TABLE lm_cache (
            run_id TEXT NOT NULL REFERENCES runs(id),
            key TEXT NOT NULL,
            text TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (run_id, key)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            program_id INTEGER REFERENCES programs(id),
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX events_run ON events(run_id, kind);
        """
    )


@migration
def m002_safety(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE findings (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            program_id INTEGER NOT NULL REFERENCES programs(id),
            category TEXT NOT NULL,          -- e.g. sandbox_disable, exec_string, env_read, budget_tamper
            detail TEXT NOT NULL,
            line INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );
        CREATE INDEX findings_run ON findings(run_id, category);
        CREATE INDEX findings_program ON findings(program_id);
        CREATE TABLE strategy_tags (
            run_id TEXT NOT NULL REFERENCES runs(id),
            program_id INTEGER NOT NULL REFERENCES programs(id),
            tag TEXT NOT NULL,               -- e.g. beam_search, genetic_algorithm, simulated_annealing
            origin TEXT NOT NULL,            -- code | lm
            PRIMARY KEY (program_id, tag)
        );
        CREATE INDEX programs_run ON programs(run_id, kind);
        CREATE INDEX evaluations_program ON evaluations(program_id);
        """
    )


@migration
def m003_kinds_and_indexes(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'stop';  -- stop | transfer | score | experiment ...
        CREATE INDEX evaluations_tag ON evaluations(run_id, tag);
        CREATE INDEX lm_calls_usage ON lm_calls(run_id, tag, prompt_tokens, completion_tokens, cost_usd);
        """
    )



@migration
def m004_transfer(db: sqlite3.Connection) -> None:
    """Transfer tables (``selftaught transfer``): one row per improver and task of a transfer run.

    ``run_id, program_id, task, score, se`` is the shape the report reads; ``program_id`` is the
    improver as stored in the transfer run, ``origin`` says how it was chosen (its selection rule).
    """
    db.executescript(
        """
        CREATE TABLE transfer (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            program_id INTEGER NOT NULL REFERENCES programs(id),
            improver TEXT NOT NULL,          -- the column label: seed, a file name, RUN_ID:rule
            origin TEXT NOT NULL DEFAULT '', -- how the improver was chosen
            task TEXT NOT NULL,
            split TEXT NOT NULL,
            runs INTEGER NOT NULL,           -- independent improver runs behind score and se
            score REAL NOT NULL,
            se REAL NOT NULL,
            initial REAL NOT NULL,           -- u(s): the task's initial solution on the same split
            initial_se REAL NOT NULL,
            normalised REAL NOT NULL,        -- see selftaught.experiments.normalise
            normalised_se REAL NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX transfer_run ON transfer(run_id, program_id);
        """
    )

@migration
def m005_split_secrets(db: sqlite3.Connection) -> None:
    """Split secrets (what hides the val/test instances) and which secret and instances each run used.

    ``split_secrets.secret`` is hex text that never leaves the broker; a run refers to it only by
    ``fingerprint``. ``run_splits`` holds one row per task a run scored on: its canonical spec, every
    parameter, the scoring, the secret's fingerprint ('' for public splits) and a fingerprint of the
    instances themselves, so results on different instances are never compared unknowingly.
    """
    db.executescript(
        """
        CREATE TABLE split_secrets (
            fingerprint TEXT PRIMARY KEY,
            secret TEXT NOT NULL,            -- hex; read only by the broker, never printed
            origin TEXT NOT NULL,            -- made | imported | file PATH
            is_default INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );
        CREATE TABLE run_splits (
            run_id TEXT NOT NULL REFERENCES runs(id),
            task TEXT NOT NULL,              -- canonical task spec, e.g. lpn:preset=hard
            params TEXT NOT NULL,            -- JSON: every parameter of the task
            scoring TEXT NOT NULL,           -- normalised | reference
            secret TEXT NOT NULL,            -- the split secret's fingerprint ('' = public splits)
            instances TEXT NOT NULL,         -- fingerprint of every instance of every split
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, task)
        );
        """
    )


@migration
def m006_lm_finish_and_usage(db: sqlite3.Connection) -> None:
    """Why each sample ended, provider prompt-cache usage, estimated usage; a run's invocation.

    ``invocation`` is what a non-STOP command (improve, score, transfer, baseline) was asked to do,
    improver sources included, so ``replay`` and ``resume`` can do it again.
    """
    db.executescript(
        """
        ALTER TABLE lm_calls ADD COLUMN finish_reasons TEXT NOT NULL DEFAULT '[]';  -- JSON, one per sample
        ALTER TABLE lm_calls ADD COLUMN cached_prompt_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lm_calls ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lm_calls ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;        -- samples cut at max_tokens
        ALTER TABLE lm_calls ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN invocation TEXT NOT NULL DEFAULT '{}';
        """
    )


@migration
def m007_broker_liveness(db: sqlite3.Connection) -> None:
    """Who runs a run: the broker's pid and host and its last heartbeat (see ``store.liveness``)."""
    db.executescript(
        """
        ALTER TABLE runs ADD COLUMN broker_pid INTEGER;
        ALTER TABLE runs ADD COLUMN broker_host TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN heartbeat_at REAL;
        """
    )


def migrate(db: sqlite3.Connection) -> None:
    """Apply every migration the database has not seen yet, in order."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    unknown = done - {name for name, _ in MIGRATIONS}
    if unknown:
        raise StoreError(f"run store was written by a newer selftaught (migrations {sorted(unknown)})")
    for name, fn in MIGRATIONS:
        if name not in done:
            with db:
                fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, strftime('%s','now'))", (name,))
