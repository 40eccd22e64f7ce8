"""``StoreReader``: the one read model of the run store, for the report, the dashboard, progress and safety.

Every SQL query the front ends need lives here, one method per question, returning the records of
``selftaught.store.reader_records``. ``StoreReader.open(path)`` opens the database with a ``mode=ro``
URI and ``PRAGMA query_only``, so nothing through it can write, and a run writing at the same time
(WAL) is never blocked; ``snapshot()`` holds one consistent view for a whole page or report. Every
query is bounded by a run or program id and uses the indexes the migrations create; sources and
prompts are read only for the one program or call asked for.

The reader never migrates: a store written by an older selftaught is refused with a message saying
which command brings it up to date (the writer, ``RunStore``, migrates when it opens a store), and
one written by a newer selftaught is refused too. ``RunStore.reader()`` gives a reader over the
writer's own connection, for code that reads what it has just written (and for ``:memory:`` stores).

Left out: writes (``selftaught.store.runstore``) and the engine's own reads (``RunStore``: resume,
the response cache, split secrets).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from selftaught.errors import StoreError
from selftaught.records import broker_state
from selftaught.store._files import decode
from selftaught.store._paged import PagedReads, json_value
from selftaught.store.migrations import MIGRATIONS
from selftaught.store.reader_records import (
    IterationRow,
    ProgramInfo,
    RunSummary,
    SafetyCount,
    StepCost,
    StoredFinding,
    TransferRow,
)

__all__ = ["StoreReader", "step_of_tag"]

_RUN_COLUMNS = "id, status, task, lm, seed, message, created_at, updated_at, config, kind"


def step_of_tag(tag: str) -> int | None:
    """The iteration a call-site tag belongs to: ``t3/improve/c0`` -> 3; None for other tags."""
    head = tag.split("/", 1)[0]
    if len(head) > 1 and head[0] == "t" and head[1:].isdigit():
        return int(head[1:])
    return None


class StoreReader(PagedReads):
    """Read-only questions about the runs in one store (see the module docstring); the paginated reads
    of evaluations, LM calls and events come from ``PagedReads``."""

    def __init__(self, connection: sqlite3.Connection, path: str, *, owned: bool = False) -> None:
        super().__init__(connection, path)
        self._owned = owned

    @classmethod
    def open(cls, db_path: Path | str) -> StoreReader:
        """A read-only reader of the store at ``db_path``; StoreError when it is missing, unreadable or of
        another schema version than this selftaught's."""
        path = Path(db_path)
        if not path.is_file():
            raise StoreError(f"no run store at {path}")
        try:
            db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10, check_same_thread=False,
                                 isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read run store {path}: {exc}") from exc
        try:
            db.text_factory = decode
            db.execute("PRAGMA query_only=ON")
            db.execute("PRAGMA busy_timeout=10000")
            _check_schema(db, path)
        except BaseException:
            db.close()
            raise
        return cls(db, str(path), owned=True)

    def close(self) -> None:
        """Close the reader's own connection (a reader over the writer's connection leaves it open)."""
        if self._owned:
            self._db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def snapshot(self) -> Iterator[StoreReader]:
        """Read one consistent view of the store inside the block, even while a run keeps writing.
        (A reader over the writer's connection already sees everything that connection wrote.)"""
        if not self._owned:
            yield self
            return
        self._db.execute("BEGIN")
        try:
            yield self
        finally:
            self._db.execute("COMMIT")

    # --- runs --------------------------------------------------------------------------------

    def runs(self) -> list[RunSummary]:
        """Every run, newest first."""
        rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id")
        return [self._summary(row) for row in rows]

    def run(self, run_id: str) -> RunSummary:
        """One run; StoreError when there is none with this id."""
        row = self._one(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,))
        if row is None:
            raise StoreError(f"no run {run_id!r} in the run store")
        return self._summary(row)

    def has_run(self, run_id: str) -> bool:
        return self._one("SELECT 1 FROM runs WHERE id=?", (run_id,)) is not None

    def _summary(self, row: Any) -> RunSummary:
        run_id = row[0]
        steps, best_val = self._one("SELECT COUNT(*), MAX(val) FROM iterations WHERE run_id=?", (run_id,))
        sent, cached, prompt, completion, cost = self._one(
            "SELECT COUNT(*) - COALESCE(SUM(cached),0), COALESCE(SUM(cached),0),"
            " COALESCE(SUM(CASE WHEN cached THEN 0 ELSE prompt_tokens END),0),"
            " COALESCE(SUM(CASE WHEN cached THEN 0 ELSE completion_tokens END),0),"
            " COALESCE(SUM(CASE WHEN cached THEN 0 ELSE cost_usd END),0) FROM lm_calls WHERE run_id=?",
            (run_id,),
        )
        config = json_value(row[8], {})
        return RunSummary(
            id=run_id, status=row[1], task=row[2], lm=row[3], seed=row[4], message=row[5], created_at=row[6],
            updated_at=row[7], config=config if isinstance(config, dict) else {}, steps=int(steps),
            best_val=best_val, cost_usd=float(cost), lm_calls=int(sent), prompt_tokens=int(prompt),
            completion_tokens=int(completion), kind=str(row[9] or "stop"), cached_calls=int(cached),
        )

    def live_status(self, run_id: str, status: str) -> str:
        """``status``, or ``interrupted`` for a ``running`` run whose broker has died (``store.liveness``)."""
        if status != "running":
            return status
        row = self._one("SELECT broker_pid, broker_host, heartbeat_at, updated_at FROM runs WHERE id=?", (run_id,))
        if row is None:
            return status
        return broker_state(status, row[0], row[1] or "", row[2] if row[2] is not None else row[3])

    # --- the loop's steps, u(s), cost, transfer tables ----------------------------------------

    def iterations(self, run_id: str) -> list[IterationRow]:
        """The run's loop steps in order of ``t``."""
        rows = self._all(
            "SELECT t, candidate_id, incumbent_id, val, val_se, test, test_se, accepted, reason"
            " FROM iterations WHERE run_id=? ORDER BY t",
            (run_id,),
        )
        return [IterationRow(t=r[0], candidate_id=r[1], incumbent_id=r[2], val=r[3], val_se=r[4], test=r[5],
                             test_se=r[6], accepted=bool(r[7]), reason=r[8]) for r in rows]

    def initial_scores(self, run_id: str, tag_prefix: str = "initial") -> dict[str, float]:
        """u(s), the task's initial solution's score, per split, as recorded under ``<tag_prefix>/<split>``
        (STOP runs score it before step 0); the latest evaluation of each split; {} when none was recorded."""
        found: dict[str, float] = {}
        for tag, score in self._all(
            "SELECT tag, score FROM evaluations WHERE run_id=? AND substr(tag, 1, ?)=? ORDER BY id",
            (run_id, len(tag_prefix) + 1, f"{tag_prefix}/"),
        ):
            found[str(tag).rsplit("/", 1)[1]] = float(score)
        return found

    def scores_by_tag(self, run_id: str) -> dict[str, float]:
        """The latest score recorded under each evaluation tag of the run."""
        return {str(tag): float(score) for tag, score in self._all(
            "SELECT tag, score FROM evaluations WHERE run_id=? ORDER BY id", (run_id,))}

    def cost_by_iteration(self, run_id: str) -> list[StepCost]:
        """LM requests, tokens and dollars per iteration (tags without a ``t<N>/`` prefix are left out;
        answers from the response cache are not requests)."""
        rows = self._all(
            "SELECT substr(tag, 1, instr(tag || '/', '/') - 1) AS head, COUNT(*), SUM(prompt_tokens),"
            " SUM(completion_tokens), SUM(cost_usd) FROM lm_calls WHERE run_id=? AND NOT cached GROUP BY head",
            (run_id,),
        )
        steps: list[StepCost] = []
        for head, calls, prompt, completion, cost in rows:
            step = step_of_tag(str(head))
            if step is not None:
                steps.append(StepCost(step, int(calls), int(prompt or 0), int(completion or 0), float(cost or 0.0)))
        return sorted(steps, key=lambda s: s.step)

    def transfer_rows(self, run_ids: Sequence[str]) -> list[TransferRow]:
        """The transfer tables of the runs, in the order they were stored ([] when they have none)."""
        if not run_ids:
            return []
        marks = ",".join("?" * len(run_ids))
        rows = self._all(
            "SELECT run_id, program_id, task, score, se, improver, initial, initial_se, runs, split, normalised,"
            f" normalised_se FROM transfer WHERE run_id IN ({marks}) ORDER BY id",
            list(run_ids),
        )
        return [TransferRow(str(r[0]), int(r[1]), str(r[2]), float(r[3]), float(r[4]), str(r[5]), float(r[6]),
                            float(r[7]), int(r[8]), str(r[9]), float(r[10]), float(r[11])) for r in rows]

    # --- programs, findings, strategy tags -----------------------------------------------------

    def program(self, run_id: str, program_id: int) -> ProgramInfo | None:
        """One program of the run, or None (also when it belongs to another run)."""
        row = self._one("SELECT id, run_id, kind, source, parent_id, sha256 FROM programs WHERE id=? AND run_id=?",
                        (program_id, run_id))
        return None if row is None else ProgramInfo(*row)

    def programs(self, run_id: str) -> list[ProgramInfo]:
        """Every program of the run, sources included, in the order they were stored."""
        rows = self._all("SELECT id, run_id, kind, source, parent_id, sha256 FROM programs WHERE run_id=? ORDER BY id",
                         (run_id,))
        return [ProgramInfo(*row) for row in rows]

    def program_source(self, program_id: int) -> str:
        """The source of any stored program; StoreError when there is none with this id."""
        row = self._one("SELECT source FROM programs WHERE id=?", (program_id,))
        if row is None:
            raise StoreError(f"no program {program_id}")
        return str(row[0])

    def improver_nodes(self, run_id: str) -> list[tuple[int, int | None]]:
        """``(id, parent_id)`` of the run's improvers, in the order they were stored."""
        rows = self._all("SELECT id, parent_id FROM programs WHERE run_id=? AND kind='improver' ORDER BY id", (run_id,))
        return [(int(r[0]), r[1]) for r in rows]

    def program_counts(self, run_id: str) -> dict[str, int]:
        """How many programs of each kind the run stored."""
        rows = self._all("SELECT kind, COUNT(*) FROM programs WHERE run_id=? GROUP BY kind ORDER BY kind", (run_id,))
        return {str(kind): int(n) for kind, n in rows}

    def strategy_tags(self, program_id: int) -> list[tuple[str, str]]:
        """``(tag, origin)`` pairs of a program."""
        rows = self._all("SELECT tag, origin FROM strategy_tags WHERE program_id=? ORDER BY tag", (program_id,))
        return [(str(r[0]), str(r[1])) for r in rows]

    def run_strategy_tags(self, run_id: str) -> list[tuple[int, str, str]]:
        """``(program_id, tag, origin)`` of every strategy tag of a run."""
        rows = self._all("SELECT program_id, tag, origin FROM strategy_tags WHERE run_id=? ORDER BY program_id, tag",
                         (run_id,))
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def findings(self, program_id: int) -> list[tuple[str, str, int]]:
        """``(category, detail, line)`` of a program's static-scan findings."""
        rows = self._all("SELECT category, detail, line FROM findings WHERE program_id=? ORDER BY line, id",
                         (program_id,))
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def run_findings(self, run_id: str) -> list[StoredFinding]:
        """Every finding of a run, by program then line."""
        rows = self._all(
            "SELECT f.program_id, p.kind, f.category, f.detail, f.line FROM findings f"
            " JOIN programs p ON p.id = f.program_id WHERE f.run_id=? ORDER BY f.program_id, f.line, f.id",
            (run_id,),
        )
        return [StoredFinding(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

    def findings_per_program(self, run_id: str) -> dict[int, int]:
        """How many findings each flagged program of the run has."""
        rows = self._all("SELECT program_id, COUNT(*) FROM findings WHERE run_id=? GROUP BY program_id", (run_id,))
        return {int(r[0]): int(r[1]) for r in rows}

    def scanned_program_ids(self, run_id: str) -> set[int]:
        """Programs of the run that already have findings or strategy tags."""
        rows = self._all("SELECT program_id FROM findings WHERE run_id=?"
                         " UNION SELECT program_id FROM strategy_tags WHERE run_id=?", (run_id, run_id))
        return {int(r[0]) for r in rows}

    def safety_counts(self, run_ids: Sequence[str], kind: str = "improver") -> list[SafetyCount]:
        """Per finding category: programs of ``kind`` flagged at least once, out of all of them in the runs."""
        marks = ",".join("?" * len(run_ids))
        scanned = int(self._one(f"SELECT COUNT(*) FROM programs WHERE run_id IN ({marks}) AND kind=?",
                                (*run_ids, kind))[0])
        rows = self._all(
            "SELECT f.category, COUNT(DISTINCT f.program_id) FROM findings f JOIN programs p ON p.id = f.program_id"
            f" WHERE f.run_id IN ({marks}) AND p.kind=? GROUP BY f.category ORDER BY f.category",
            (*run_ids, kind),
        )
        return [SafetyCount(str(category), int(flagged), scanned) for category, flagged in rows]


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    """StoreError unless the store holds exactly the migrations this selftaught knows."""
    try:
        done = {str(row[0]) for row in db.execute("SELECT name FROM _migrations")}
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read run store {path}: {exc}") from exc
    known = [name for name, _ in MIGRATIONS]
    newer = sorted(done - set(known))
    if newer:
        raise StoreError(f"run store {path} was written by a newer selftaught (migrations {newer}); upgrade to read it")
    missing = [name for name in known if name not in done]
    if missing:
        raise StoreError(
            f"run store {path} was written by an older selftaught (it lacks migrations {missing}); readers never "
            f"change a store: any command that writes to it brings it up to date, e.g. "
            f"`selftaught runs --runs-dir {path.parent}`")
