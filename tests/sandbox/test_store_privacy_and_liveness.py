"""The run store is private to the broker's user, and a run whose broker died reads as
``interrupted`` in ``selftaught runs`` and the dashboard (which stops reloading it)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selftaught.cli import main
from selftaught.dashboard.pages_runs import run_page, runs_page
from selftaught.store import RunStore
from selftaught.store.liveness import STALE_AFTER_S, Heartbeat, broker_state
from selftaught.store.reader import StoreReader


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_runs_folder_and_store_files_are_private(tmp_path: Path, umask: int) -> None:
    runs = tmp_path / "runs"
    old = os.umask(umask)
    try:
        store = RunStore.in_dir(runs)
        run_id = store.create_run("lpn", "m", 0, {}, [])
        store.add_event(run_id, "k", "a write, so the WAL exists")
    finally:
        os.umask(old)
    files = sorted(runs.iterdir())
    assert {f.name for f in files} >= {"selftaught.db", "selftaught.db-wal"}
    assert mode(runs) == 0o700
    assert all(mode(f) == 0o600 for f in files), {f.name: oct(mode(f)) for f in files}
    store.close()


def test_an_existing_world_readable_store_is_tightened(tmp_path: Path) -> None:
    RunStore.in_dir(tmp_path / "runs").close()
    (tmp_path / "runs").chmod(0o755)
    (tmp_path / "runs" / "selftaught.db").chmod(0o644)
    RunStore.in_dir(tmp_path / "runs").close()
    assert mode(tmp_path / "runs") == 0o700 and mode(tmp_path / "runs" / "selftaught.db") == 0o600


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_broker_state_rules() -> None:
    now = time.time()
    assert broker_state("finished", None, "", None, now) == "finished"
    assert broker_state("running", os.getpid(), os.uname().nodename, now, now) == "running"
    assert broker_state("running", dead_pid(), os.uname().nodename, now, now) == "interrupted"
    # From another host only the heartbeat tells.
    assert broker_state("running", dead_pid(), "elsewhere", now, now) == "running"
    assert broker_state("running", None, "elsewhere", now - STALE_AFTER_S - 1, now) == "interrupted"


def test_heartbeat_beats_until_stopped() -> None:
    beats: list[float] = []
    heartbeat = Heartbeat(lambda: beats.append(time.time()), every_s=0.01).start()
    deadline = time.time() + 5
    while len(beats) < 3 and time.time() < deadline:
        time.sleep(0.01)
    heartbeat.stop()
    count = len(beats)
    time.sleep(0.05)
    assert count >= 3 and len(beats) == count


def test_a_dead_brokers_run_reads_as_interrupted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "m", 0, {"iterations": 1}, [])
    store.claim(run_id)
    assert store.get_run(run_id).status == "running"
    with sqlite3.connect(tmp_path / "selftaught.db") as raw:  # the broker was killed
        raw.execute("UPDATE runs SET broker_pid=? WHERE id=?", (dead_pid(), run_id))
    assert store.get_run(run_id).status == "interrupted"
    store.close()

    assert main(["runs", "--runs-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "interrupted"
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert f"selftaught resume {run_id}" in capsys.readouterr().out

    db = StoreReader.open(tmp_path / "selftaught.db")
    listing, page = runs_page(db), run_page(db, run_id)
    db.close()
    for html in (listing, page):
        assert "interrupted" in html and 'http-equiv="refresh"' not in html
    assert f"selftaught resume {run_id}" in page
