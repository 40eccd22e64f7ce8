"""Run-level features around the loop: caps that stop cleanly, replay, safety scans of every step."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from selftaught.cli import main
from tests.conftest import FAKE_KEY, ScriptedServer

pytestmark = pytest.mark.slow

FLAGS = ["--task", "lpn", "--lm", "openai:fake-model", "--json", "--improver-timeout", "20"]


@pytest.fixture
def quick_server(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    """The scripted server without hanging solutions (faster; hangs are covered elsewhere)."""
    server = ScriptedServer(hanging=False)
    server.__enter__()
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    yield server  # type: ignore[misc]
    server.__exit__(None, None, None)


def _json_run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    doc: dict[str, object] = json.loads(out)
    return doc


def test_run_cap_stops_cleanly_and_resume_with_a_higher_cap_finishes(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Step 0 makes 2 calls (a val and a test run); step 1 stops inside the improver's meta-utility.
    doc = _json_run(capsys, "run", *FLAGS, "--iterations", "2", "--repeats", "1", "--max-lm-calls", "4",
                    "--runs-dir", str(tmp_path))
    assert doc["status"] == "stopped" and "cap" in str(doc["message"])
    assert doc["lm_calls"] == 4
    assert [row["t"] for row in doc["iterations"]] == [0]  # type: ignore[union-attr]
    sent = len(quick_server.requests)

    resumed = _json_run(capsys, "resume", str(doc["run_id"]), "--max-lm-calls", "0", "--runs-dir", str(tmp_path),
                        "--json")
    assert resumed["status"] == "finished"
    assert [row["t"] for row in resumed["iterations"]] == [0, 1, 2]  # type: ignore[union-attr]
    assert resumed["iterations"][0] == doc["iterations"][0]  # type: ignore[index]
    # The calls made before the stop were answered from the run's cache, not sent again.
    db = sqlite3.connect(tmp_path / "selftaught.db")
    cached = db.execute("SELECT COUNT(*) FROM lm_calls WHERE cached=1").fetchone()[0]
    assert cached >= 2
    # The summary counts requests sent and cache hits apart: every new call reached the server once.
    assert resumed["cached_calls"] == cached
    new_requests = int(resumed["lm_calls"]) - int(doc["lm_calls"])  # type: ignore[call-overload]
    assert len(quick_server.requests) - sent == new_requests


def test_a_score_run_stopped_at_a_cap_resumes_with_its_answers_from_the_cache(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--lm", "openai:fake-model", "--json", "--improver-timeout", "5", "--runs-dir", str(tmp_path)]
    assert main(["score", "--tasks", "lpn", "--repeats", "2", "--max-lm-calls", "1", *flags]) == 1
    assert "before it finished" in capsys.readouterr().err
    db = sqlite3.connect(tmp_path / "selftaught.db")
    run_id, status = db.execute("SELECT id, status FROM runs WHERE kind='score'").fetchone()
    assert status == "stopped"
    sent = len(quick_server.requests)
    resumed = _json_run(capsys, "resume", run_id, "--max-lm-calls", "0", "--runs-dir", str(tmp_path), "--json")
    assert resumed["run_id"] == run_id and resumed["tasks"][0]["raw"]["n"] == 2  # type: ignore[index]
    usage = resumed["usage"]
    assert usage["status"] == "finished" and usage["cached_calls"] == 1  # type: ignore[index]
    assert len(quick_server.requests) - sent == usage["lm_calls"] - 1  # type: ignore[index,operator]


def test_replay_reproduces_a_run_offline(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = _json_run(capsys, "run", *FLAGS, "--iterations", "1", "--repeats", "2", "--runs-dir", str(tmp_path))
    quick_server.__exit__(None, None, None)  # nothing answers any more
    replayed = _json_run(capsys, "replay", str(original["run_id"]), "--runs-dir", str(tmp_path), "--json")
    assert replayed["run_id"] != original["run_id"]
    strip = [{k: row[k] for k in ("t", "val", "val_se", "test", "test_se", "accepted")}
             for row in original["iterations"]]  # type: ignore[union-attr]
    assert [{k: row[k] for k in ("t", "val", "val_se", "test", "test_se", "accepted")}
            for row in replayed["iterations"]] == strip  # type: ignore[union-attr]
    assert replayed["lm_calls"] == 0 and replayed["cached_calls"] == original["lm_calls"]


def test_replay_of_an_improve_run_reproduces_its_numbers_and_a_refusal_stores_nothing(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--lm", "openai:fake-model", "--json", "--improver-timeout", "5", "--runs-dir", str(tmp_path)]
    original = _json_run(capsys, "improve", "--task", "lpn", *flags)
    quick_server.__exit__(None, None, None)  # nothing answers any more
    replayed = _json_run(capsys, "replay", str(original["run_id"]), "--runs-dir", str(tmp_path), "--json")
    assert replayed["run_id"] != original["run_id"]
    for key in ("initial", "improved", "solution", "lm_calls", "utility_calls", "reason"):
        assert replayed[key] == original[key], key
    assert replayed["usage"]["lm_calls"] == 0  # type: ignore[index]
    assert replayed["usage"]["cached_calls"] == original["usage"]["lm_calls"] > 0  # type: ignore[index]

    db = sqlite3.connect(tmp_path / "selftaught.db")
    db.execute("UPDATE runs SET kind='circumvention' WHERE id=?", (original["run_id"],))
    db.commit()
    before = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert main(["replay", str(original["run_id"]), "--runs-dir", str(tmp_path)]) == 1
    assert "replay works for stop, improve, score, transfer, baseline, experiment runs" in capsys.readouterr().err
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == before


def test_every_step_is_scanned_for_safety_findings(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _json_run(capsys, "run", *FLAGS, "--iterations", "1", "--repeats", "1", "--runs-dir", str(tmp_path))
    db = sqlite3.connect(tmp_path / "selftaught.db")
    categories = {row[0] for row in db.execute("SELECT category FROM findings WHERE run_id=?", (doc["run_id"],))}
    # The server's hostile programs: budget resetting, env reading, sockets, own LM client.
    assert {"budget_tamper", "env_read", "network", "lm_client"} <= categories

    code = main(["safety", str(doc["run_id"]), "--runs-dir", str(tmp_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report
    code = main(["scan", str(doc["run_id"]), "--runs-dir", str(tmp_path), "--json"])
    assert code == 1  # security findings exist
    assert "budget_tamper" in capsys.readouterr().out
