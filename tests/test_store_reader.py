"""The store's read model: it cannot write, it reads while another process writes, it refuses a store of
another schema (only the writer migrates), and its answers count what a user expects."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

import selftaught
from selftaught.errors import StoreError
from selftaught.records import Iteration, LMRequest, LMResponse
from selftaught.store import RunRecorder, RunStore, TransferEntry
from selftaught.store.migrations import MIGRATIONS
from selftaught.store.reader import StoreReader, step_of_tag
from tests.report.builders import build_store


def test_nothing_can_be_written_through_the_reader(tmp_path: Path) -> None:
    built = build_store(tmp_path)
    with StoreReader.open(built.db_path) as reader:
        connection = reader._db  # the SQLite connection itself refuses, not just the reader's API
        for statement in ("DELETE FROM runs", "INSERT INTO events (run_id, kind, detail, created_at) VALUES "
                          "('x', 'k', 'd', 0)", "CREATE TABLE t (x)", "PRAGMA query_only=OFF; DELETE FROM runs"):
            with pytest.raises(sqlite3.Error):
                connection.executescript(statement)
        assert len(reader.runs()) == 3
    with closing(sqlite3.connect(built.db_path)) as raw:
        assert raw.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3


def test_a_missing_or_foreign_file_is_one_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run store"):
        StoreReader.open(tmp_path / "nothing.db")
    (tmp_path / "junk.db").write_text("not sqlite at all, just text" * 20)
    with pytest.raises(StoreError, match="cannot read"):
        StoreReader.open(tmp_path / "junk.db")
    with closing(sqlite3.connect(tmp_path / "other.db")) as other, other:
        other.execute("CREATE TABLE notes (x)")
    with pytest.raises(StoreError, match="cannot read"):
        StoreReader.open(tmp_path / "other.db")


_WRITER = textwrap.dedent("""
    import sys
    from selftaught.records import Iteration
    from selftaught.store import RunStore
    store = RunStore(sys.argv[1])
    run_id = sys.argv[2]
    seed = store.programs(run_id)[0].id
    store._db.execute("BEGIN IMMEDIATE")  # a write under way in this process, not committed yet
    store._db.execute("INSERT INTO iterations VALUES (?,1,?,?,0.7,NULL,NULL,NULL,1,'adopted',0)", (run_id, seed, seed))
    print("writing", flush=True)
    sys.stdin.readline()
    store._db.execute("COMMIT")
    print("committed", flush=True)
    sys.stdin.readline()
""")


def test_it_reads_a_store_another_process_is_writing(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "x", 0, {}, [])
    seed = RunRecorder(store, run_id).program("improver", "a")
    store.add_iteration(run_id, Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.5, val_se=None, test=None,
                                          test_se=None, accepted=True, reason="seed"))
    store.close()
    db_path = tmp_path / "selftaught.db"
    env = {**os.environ, "PYTHONPATH": str(Path(selftaught.__file__).parent.parent)}
    with subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path), run_id], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, env=env) as writer:
        assert writer.stdout is not None and writer.stdin is not None
        try:
            assert writer.stdout.readline().strip() == "writing"
            with StoreReader.open(db_path) as reader:
                with reader.snapshot():  # neither blocked by the open write nor seeing it
                    assert [r.val for r in reader.iterations(run_id)] == [0.5]
                    writer.stdin.write("\n")
                    writer.stdin.flush()
                    assert writer.stdout.readline().strip() == "committed"  # the snapshot did not block the writer
                    assert [r.val for r in reader.iterations(run_id)] == [0.5]  # still the same view
                assert [r.val for r in reader.iterations(run_id)] == [0.5, 0.7]
                assert reader.run(run_id).steps == 2
            writer.stdin.write("\n")
            writer.stdin.flush()
            assert writer.wait(timeout=60) == 0
        finally:
            if writer.poll() is None:
                writer.kill()


def _old_store(db_path: Path, migrations: int) -> None:
    """A store as an older selftaught left it: only the first ``migrations`` migrations applied."""
    with closing(sqlite3.connect(db_path, isolation_level=None)) as db:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        for name, apply in MIGRATIONS[:migrations]:
            apply(db)
            db.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
        db.execute("INSERT INTO runs (id, created_at, updated_at, status, task, lm, seed, config)"
                    " VALUES ('old-run', 0, 0, 'finished', 'lpn', 'x', 0, '{}')")


def test_an_older_store_is_refused_until_the_writer_migrates_it(tmp_path: Path) -> None:
    db_path = tmp_path / "selftaught.db"
    _old_store(db_path, len(MIGRATIONS) - 2)
    missing = [name for name, _ in MIGRATIONS[-2:]]
    with pytest.raises(StoreError, match="older selftaught") as refused:
        StoreReader.open(db_path)
    assert all(name in str(refused.value) for name in missing)
    assert "selftaught runs --runs-dir" in str(refused.value)  # says what brings it up to date
    with closing(sqlite3.connect(db_path)) as raw:  # the reader changed nothing
        assert {r[0] for r in raw.execute("SELECT name FROM _migrations")}.isdisjoint(missing)
    RunStore(db_path).close()  # the writer migrates on open
    with StoreReader.open(db_path) as reader:
        assert [run.id for run in reader.runs()] == ["old-run"]
        assert reader.live_status("old-run", "finished") == "finished"


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    store._db.execute("INSERT INTO _migrations VALUES ('m999_future', 0)")
    store.close()
    with pytest.raises(StoreError, match="newer selftaught.*m999_future"):
        StoreReader.open(tmp_path / "selftaught.db")


def test_runs_and_iterations(tmp_path: Path) -> None:
    built = build_store(tmp_path)
    with StoreReader.open(built.db_path) as reader:
        runs = {r.id: r for r in reader.runs()}
        assert list(runs)[0] == built.empty  # newest first
        assert runs[built.finished].steps == 4
        assert runs[built.finished].best_val == pytest.approx(0.62)
        assert runs[built.finished].lm_calls == 3
        assert runs[built.empty].steps == 0 and runs[built.empty].best_val is None
        rows = reader.iterations(built.finished)
        assert rows[3].candidate_id is None and rows[3].val is None
        with pytest.raises(StoreError, match="no run 'nope'"):
            reader.run("nope")


def test_answers_from_the_cache_are_not_requests_and_cost_nothing(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "x", 0, {}, [])
    sent = LMResponse(("a",), "m", 10, 5, 0.1, False, 0.5)
    store.add_lm_call(run_id, LMRequest("s", "p", tag="t1/improve/c0"), sent)
    store.add_lm_call(run_id, LMRequest("s", "p", tag="t1/improve/c1"), sent)
    store.add_lm_call(run_id, LMRequest("s", "p", tag="t1/improve/c0"), LMResponse(("a",), "m", cached=True))
    store.close()
    with StoreReader.open(tmp_path / "selftaught.db") as reader:
        run = reader.run(run_id)
        assert (run.lm_calls, run.cached_calls, run.prompt_tokens, run.completion_tokens) == (2, 1, 20, 10)
        assert run.cost_usd == pytest.approx(1.0)
        assert [(s.step, s.calls, s.prompt_tokens) for s in reader.cost_by_iteration(run_id)] == [(1, 2, 20)]
        assert reader.count_lm_calls(run_id) == 3  # the LM calls page still lists every answer


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
    with StoreReader.open(tmp_path / "selftaught.db") as reader:
        steps = reader.cost_by_iteration(run_id)
    assert [(s.step, s.calls, s.cost_usd, s.prompt_tokens) for s in steps] == [
        (1, 2, 0.75, 20), (2, 1, 2.0, 10), (10, 1, 1.0, 10)]


def test_safety_counts_distinct_programs_and_findings_by_program(tmp_path: Path) -> None:
    built = build_store(tmp_path)
    with StoreReader.open(built.db_path) as reader:
        counts = reader.safety_counts([built.finished])
        assert [(c.category, c.flagged, c.scanned) for c in counts] == [("sandbox_disable", 1, 3)]
        assert reader.findings_per_program(built.finished) == {built.hostile_id: 1}
        [finding] = reader.run_findings(built.finished)
        assert (finding.program_id, finding.kind, finding.category) == (built.hostile_id, "improver", "sandbox_disable")
        assert reader.scanned_program_ids(built.finished) == {built.child_id, built.hostile_id}


def test_transfer_rows_in_stored_order(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn,maxcut", "x", 0, {}, [], "transfer")
    program = store.add_program(run_id, "improver", "def improve_algorithm(s, u, lm): return s")
    store.add_transfer(run_id, [TransferEntry(program, "seed", "", task, "test", 3, 0.6, 0.05, 0.5, 0.01, 0.2, 0.1)
                                for task in ("maxcut", "lpn")])
    store.close()
    with StoreReader.open(tmp_path / "selftaught.db") as reader:
        rows = reader.transfer_rows([run_id])
        assert reader.transfer_rows([]) == []
    assert [(r.task, r.score, r.initial, r.runs, r.split, r.normalised) for r in rows] == [
        ("maxcut", 0.6, 0.5, 3, "test", 0.2), ("lpn", 0.6, 0.5, 3, "test", 0.2)]


def test_a_page_of_lm_calls_cuts_each_decoded_response(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "x", 0, {}, [])
    texts = ('"quoted" ' + "é" * 400, "short")
    store.add_lm_call(run_id, LMRequest("s" * 500, "p", n=2, tag="t0"),
                      LMResponse(texts, "m", 1, 1, 0.1, finish_reasons=("length", "stop")))
    store.close()
    with StoreReader.open(tmp_path / "selftaught.db") as reader:
        [call] = reader.lm_call_page(run_id, 10, 0)
        full = reader.lm_call(run_id, call.id)
        assert reader.lm_call(run_id + "x", call.id) is None
    assert call.responses == [texts[0][:300], "short"] and len(call.system) == 300
    assert full is not None and full.responses == list(texts) and full.finish_reasons == ["length", "stop"]


def test_the_writers_own_reader_sees_its_writes_and_leaves_it_open() -> None:
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "x", 0, {}, [])
    reader = store.reader()
    assert reader.programs(run_id) == []
    program = store.add_program(run_id, "improver", "src")
    with reader.snapshot():
        assert [p.id for p in reader.programs(run_id)] == [program]
    reader.close()
    store.add_event(run_id, "timeout", "slow", program)  # the writer's connection is still open
    assert reader.event_counts(run_id) == {"timeout": 1}
