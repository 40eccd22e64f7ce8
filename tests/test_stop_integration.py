"""STOP end to end through the CLI, against a fake OpenAI-compatible server over loopback HTTP.

The server answers improver prompts with one better improver and several hostile ones
(budget resetters, own-client builders, infinite loops, crashes) and solution prompts with
mediocre or hostile code (wrong shapes, crashes, env and network snooping, hangs).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from selftaught.cli import main
from tests.conftest import FAKE_KEY, ScriptedServer, child_pids, orphaned_sandbox_pids

pytestmark = pytest.mark.slow

RUN_FLAGS = ["--task", "lpn", "--lm", "openai:fake-model", "--seed", "1", "--json", "--improver-timeout", "20"]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object] | None, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_hostile_server_run_finishes_within_budget_and_improves(
    scripted_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = child_pids()
    code, doc, err = _run(capsys, "run", *RUN_FLAGS, "--iterations", "2", "--repeats", "3",
                          "--runs-dir", str(tmp_path), "--workers", "2")
    assert code == 0, err
    assert doc is not None and set(doc) >= {"run_id", "iterations", "lm_calls", "completions"}
    rows = doc["iterations"]
    assert isinstance(rows, list) and [row["t"] for row in rows] == [0, 1, 2]
    for row in rows:
        for key in ("val", "test"):
            assert row[key] is None or 0.0 <= row[key] <= 1.0

    # The server's better improver wins step 1 and the held-out test meta-utility rises with it.
    assert rows[1]["accepted"] is True
    assert rows[1]["test"] > rows[0]["test"] + 0.2

    db = sqlite3.connect(tmp_path / "selftaught.db")
    run_id = doc["run_id"]
    scores = [s for (s,) in db.execute("SELECT score FROM evaluations WHERE run_id=?", (run_id,))]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)
    # Every LM request the server saw came from the broker, with the broker's key.
    assert len(scripted_server.requests) == doc["lm_calls"]
    assert {r.authorization for r in scripted_server.requests} == {f"Bearer {FAKE_KEY}"}
    # LM budget: per improver run at most 4 calls of at most 6 responses.
    calls_per_run: dict[str, set[str]] = {}
    for tag, n in db.execute("SELECT tag, n FROM lm_calls WHERE run_id=?", (run_id,)):
        assert n <= 6
        run_tag, call = re.fullmatch(r"(.*)/(c\d+)/g\d+", tag).groups()  # type: ignore[union-attr]
        calls_per_run.setdefault(run_tag, set()).add(call)
    assert calls_per_run and max(len(calls) for calls in calls_per_run.values()) <= 4
    # The budget resetter made 4 calls, not 50; the swallower got 25 utility calls, not 100.
    assert max(len(calls) for calls in calls_per_run.values()) == 4
    utility_calls: dict[str, int] = {}
    for (tag,) in db.execute("SELECT tag FROM evaluations WHERE run_id=? AND split='train'", (run_id,)):
        match = re.fullmatch(r"(.*)/u\d+", tag)
        if match:
            utility_calls[match.group(1)] = utility_calls.get(match.group(1), 0) + 1
    assert max(utility_calls.values()) == 25
    # No secret reached a sandbox: the own-client improver returned what it could find.
    assert not any(FAKE_KEY in src for (src,) in db.execute("SELECT source FROM programs"))
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind='improver_failed'").fetchone()[0] > 0
    assert child_pids() <= before


def test_killed_run_resumes_without_losing_finished_steps(
    scripted_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted_server.fail_after = 2  # step 0 needs one LM call per run (a val and a test run); then the server dies
    code, _, err = _run(capsys, "run", *RUN_FLAGS, "--iterations", "1", "--repeats", "1", "--runs-dir", str(tmp_path))
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("selftaught: error:") and "Traceback" not in err
    db = sqlite3.connect(tmp_path / "selftaught.db")
    run_id, status, message = db.execute("SELECT id, status, message FROM runs").fetchone()
    assert status == "failed" and message
    step0 = db.execute("SELECT * FROM iterations WHERE run_id=?", (run_id,)).fetchall()
    assert [row[1] for row in step0] == [0]

    scripted_server.fail_after = None
    code, doc, err = _run(capsys, "resume", run_id, "--runs-dir", str(tmp_path), "--json")
    assert code == 0, err
    assert doc is not None and [row["t"] for row in doc["iterations"]] == [0, 1]
    assert db.execute("SELECT * FROM iterations WHERE run_id=? AND t=0", (run_id,)).fetchall() == step0
    assert db.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()[0] == "finished"


def test_unreachable_server_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer() as server:
        url = server.base_url  # closed as soon as the block ends
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    code, doc, err = _run(capsys, "run", *RUN_FLAGS, "--iterations", "0", "--repeats", "1",
                          "--runs-dir", str(tmp_path))
    assert code == 1 and doc is None
    lines = err.strip().splitlines()
    assert lines[-1].startswith("selftaught: error:") and "Traceback" not in err
    assert FAKE_KEY not in err


def test_missing_key_and_bad_flags_fail_before_anything_is_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, _, err = _run(capsys, "run", "--lm", "openai:gpt-4o-mini", "--runs-dir", str(tmp_path))
    assert code == 1 and "OPENAI_API_KEY" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "run", "--task", "no-such-task", "--lm", "openai:x", "--runs-dir", str(tmp_path))
    assert code == 1 and "no-such-task" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--repeats", "many"])
    assert exit_info.value.code == 2
    assert "'many' is not an integer" in capsys.readouterr().err
    code, _, err = _run(capsys, "run", "--repeats", "0", "--lm", "openai:x", "--runs-dir", str(tmp_path))
    assert code == 1 and "repeats must be > 0" in err
    assert not (tmp_path / "selftaught.db").exists()


def test_sigkilled_run_resumes_and_leaves_no_process_behind(
    scripted_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    orphans_before, children_before = orphaned_sandbox_pids(), child_pids()
    child = subprocess.Popen(
        [sys.executable, "-m", "selftaught", "run", *RUN_FLAGS, "--iterations", "1", "--repeats", "1",
         "--runs-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
    )
    db_path = tmp_path / "selftaught.db"
    deadline = time.monotonic() + 60
    step0: list[tuple[object, ...]] = []
    while time.monotonic() < deadline and not step0:
        time.sleep(0.2)
        if db_path.exists():
            with contextlib.suppress(sqlite3.OperationalError):  # the schema is not there yet
                step0 = sqlite3.connect(db_path).execute("SELECT * FROM iterations").fetchall()
    assert step0, "step 0 was never stored"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    time.sleep(1.0)  # the sandbox workers notice their parent is gone (die-with-parent)
    assert child_pids() <= children_before
    assert orphaned_sandbox_pids() <= orphans_before

    run_id = step0[0][0]
    code, doc, err = _run(capsys, "resume", str(run_id), "--runs-dir", str(tmp_path), "--json")
    assert code == 0, err
    assert doc is not None and [row["t"] for row in doc["iterations"]] == [0, 1]
    assert sqlite3.connect(db_path).execute("SELECT * FROM iterations WHERE t=0").fetchall() == step0
