"""Read-only access: it cannot write, it reads while a run writes (WAL), and the queries group right."""

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from selftaught.errors import StoreError
from selftaught.records import Iteration, LMRequest, LMResponse
from selftaught.report.readstore import (
    TRANSFER_TABLE,
    connect_readonly,
    cost_by_iteration,
    iterations,
    list_runs,
    safety_counts,
    step_of_tag,
    transfer_rows,
)
from selftaught.store import RunRecorder, RunStore
from tests.report.builders import build_store


def test_the_connection_cannot_write(tmp_path: Path) -> None:
    built = build_store(tmp_path)
    db = connect_readonly(built.db_path)
    with pytest.raises(sqlite3.OperationalError):
        db.execute("DELETE FROM runs")
    db.close()


def test_a_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run store"):
        connect_readonly(tmp_path / "nothing.db")
    (tmp_path / "junk.db").write_text("not sqlite at all, just text" * 20)
    with pytest.raises(StoreError, match="cannot read"):
        connect_readonly(tmp_path / "junk.db")


def test_reads_while_a_run_is_writing(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "x", 0, {}, [])
    rec = RunRecorder(store, run_id)
    seed = rec.program("improver", "a")
    reader = connect_readonly(tmp_path / "selftaught.db")
    reader.execute("BEGIN")  # a reader holding a snapshot must not block the writer
    assert iterations(reader, run_id) == []
    rec.iteration(Iteration(0, seed, seed, 0.5, None, None, None, True, "seed"))
    assert iterations(reader, run_id) == []  # still the old snapshot
    reader.execute("COMMIT")
    assert [r.val for r in iterations(reader, run_id)] == [0.5]
    reader.close()
    store.close()


def test_runs_and_iterations(tmp_path: Path) -> None:
    built = build_store(tmp_path)
    db = connect_readonly(built.db_path)
    runs = {r.id: r for r in list_runs(db)}
    assert runs[built.finished].steps == 4
    assert runs[built.finished].best_val == pytest.approx(0.62)
    assert runs[built.finished].lm_calls == 3
    assert runs[built.empty].steps == 0 and runs[built.empty].best_val is None
    rows = iterations(db, built.finished)
    assert rows[3].candidate_id is None and rows[3].val is None
    db.close()


def test_step_of_tag() -> None:
    assert step_of_tag("t12/improve/c0/g1") == 12
    assert step_of_tag("t3") == 3
    assert step_of_tag("manual") is None
    assert step_of_tag("t/x") is None
    assert step_of_tag("") is None


def test_cost_is_grouped_by_the_leading_step_of_the_tag(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "x", 0, {}, [])
    for tag, cost in [("t1/improve/c0", 0.5), ("t1/eval/r0/c1", 0.25), ("t10/improve", 1.0), ("other", 9.0),
                      ("t2", 2.0)]:
        store.add_lm_call(run_id, LMRequest("s", "p", tag=tag), LMResponse(("a",), "m", 10, 5, 0.1, False, cost))
    store.close()
    db = connect_readonly(tmp_path / "selftaught.db")
    steps = cost_by_iteration(db, run_id)
    assert [(s.step, s.calls, s.cost_usd, s.prompt_tokens) for s in steps] == [
        (1, 2, 0.75, 20), (2, 1, 2.0, 10), (10, 1, 1.0, 10)]
    db.close()


def test_safety_counts_distinct_programs(tmp_path: Path) -> None:
    built = build_store(tmp_path)
    db = connect_readonly(built.db_path)
    counts = safety_counts(db, [built.finished])
    assert [(c.category, c.flagged, c.scanned) for c in counts] == [("sandbox_disable", 1, 3)]
    db.close()


def test_transfer_hook_skips_without_a_table_and_reads_one(tmp_path: Path) -> None:
    built = build_store(tmp_path)
    db = connect_readonly(built.db_path)
    assert transfer_rows(db, [built.finished]) == []
    db.close()
    with closing(sqlite3.connect(built.db_path)) as raw, raw:  # a store from before migration m004
        raw.execute(f"DROP TABLE {TRANSFER_TABLE}")
    db = connect_readonly(built.db_path)
    assert transfer_rows(db, [built.finished]) == []
    db.close()
    with closing(sqlite3.connect(built.db_path)) as raw, raw:
        raw.execute(f"CREATE TABLE {TRANSFER_TABLE} (run_id TEXT, program_id INTEGER, task TEXT, score REAL, se REAL)")
        raw.execute(f"INSERT INTO {TRANSFER_TABLE} VALUES (?, ?, 'maxcut', 0.7, NULL)",
                    (built.finished, built.child_id))
    db = connect_readonly(built.db_path)
    rows = transfer_rows(db, [built.finished])
    assert [(r.task, r.score, r.se) for r in rows] == [("maxcut", 0.7, None)]
    db.close()
