"""The experiment commands end to end through the CLI, against the scripted fake OpenAI server."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from selftaught.cli import main
from selftaught.improver import SEED_IMPROVER
from selftaught.records import Iteration
from selftaught.store import RunStore
from tests.conftest import FAKE_KEY, ScriptedServer
from tests.programs.lpn import fenced, hinted_improver

pytestmark = pytest.mark.slow

FLAGS = ["--lm", "openai:fake-model", "--improver-timeout", "20", "--json"]


@pytest.fixture
def quick_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    with ScriptedServer(hanging=False) as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def _stop_run(runs_dir: Path) -> str:
    """A finished STOP run in ``runs_dir`` that adopted the hinted improver at step 1 (val 0.9)."""
    store = RunStore.in_dir(runs_dir)
    run_id = store.create_run("lpn", "fake-model", 0, {}, [])
    seed = store.add_program(run_id, "improver", SEED_IMPROVER)
    better = store.add_program(run_id, "improver", hinted_improver(SEED_IMPROVER), seed)
    store.add_iteration(run_id, Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.55, val_se=0.02, test=0.5,
                                          test_se=0.02, accepted=True, reason="seed improver"))
    store.add_iteration(run_id, Iteration(t=1, candidate_id=better, incumbent_id=better, val=0.9, val_se=0.02,
                                          test=0.88, test_se=0.02, accepted=True, reason="adopted"))
    store.set_status(run_id, "finished")
    store.close()
    return run_id


def test_transfer_selects_from_a_run_scores_two_tasks_and_stores_the_table(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stop_id = _stop_run(tmp_path)
    table_csv = tmp_path / "table1.csv"
    code = main(["transfer", "--improvers", f"seed,{stop_id}", "--tasks", "lpn,parity", "--runs", "2",
                 "--csv", str(table_csv), "--runs-dir", str(tmp_path), *FLAGS])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    label = f"{stop_id}:best_val"
    assert [row["task"] for row in doc["rows"]] == ["lpn", "parity"]
    assert [imp["name"] for imp in doc["improvers"]] == ["seed", label]
    assert "best_val" in doc["improvers"][1]["origin"] and "t=1" in doc["improvers"][1]["origin"]
    for row in doc["rows"]:
        seed, selected = row["improvers"]["seed"]["raw"], row["improvers"][label]["raw"]
        assert seed["n"] == selected["n"] == 2 and row["initial"]["n"] == 2
        assert selected["mean"] > seed["mean"] + 0.2  # the selected improver's hint solves parity problems
    with table_csv.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["task", "initial", "initial_se", "seed"] and len(rows) == 3

    db = sqlite3.connect(tmp_path / "selftaught.db")
    kind, status = db.execute("SELECT kind, status FROM runs WHERE id=?", (doc["run_id"],)).fetchone()
    assert (kind, status) == ("transfer", "finished")
    stored = db.execute("SELECT improver, task, runs FROM transfer WHERE run_id=? ORDER BY id",
                        (doc["run_id"],)).fetchall()
    assert stored == [("seed", "lpn", 2), ("seed", "parity", 2), (label, "lpn", 2), (label, "parity", 2)]
    why = [d for (d,) in db.execute("SELECT detail FROM events WHERE run_id=? AND kind='improver_selected'",
                                    (doc["run_id"],))]
    assert any("best_val" in d for d in why)
    # Every LM call came from the broker, within the per-call sample budget.
    assert all(int(r.body.get("n") or 1) <= 6 for r in quick_server.requests)

    # Replayed offline from the recorded answers, the table comes out the same, stored as its own run.
    sent = len(quick_server.requests)
    assert main(["replay", doc["run_id"], "--runs-dir", str(tmp_path), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["run_id"] != doc["run_id"] and replayed["rows"] == doc["rows"]
    assert replayed["usage"]["lm_calls"] == 0 and len(quick_server.requests) == sent
    assert db.execute("SELECT COUNT(*) FROM transfer WHERE run_id=?", (replayed["run_id"],)).fetchone() == (4,)


def test_bad_improver_or_task_is_one_line_and_stores_no_run(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["transfer", "--improvers", "seed,no-such-run", "--tasks", "lpn"],
                 ["transfer", "--improvers", "seed,seed", "--tasks", "lpn"],
                 ["score", "--improver", "missing.py", "--tasks", "lpn"],
                 ["improve", "--task", "no-such-task"],
                 ["baseline", "--kind", "cot", "--task", "lpn", "--match", "seed"],
                 ["transfer", "--improvers", "seed", "--tasks", "lpn", "--runs", "0"]):
        code = main([*argv, "--runs-dir", str(tmp_path), *FLAGS])
        out, err = capsys.readouterr()
        assert code == 1 and out == "", argv
        assert err.startswith("selftaught: error:") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "selftaught.db").exists()


def test_improve_score_and_baseline_commands(
    quick_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--runs-dir", str(tmp_path), "--lm-calls", "2", "--responses-per-call", "2", "--utility-calls", "5",
              *FLAGS]
    assert main(["improve", "--task", "lpn", "--improver", "greedy", *common]) == 0
    improved = json.loads(capsys.readouterr().out)
    # The server repeats itself and greedy scores each distinct candidate once: at most 1 + 2 x 2 calls.
    assert improved["improver"] == "greedy" and improved["lm_calls"] == 2 and 2 <= improved["utility_calls"] <= 5

    assert main(["score", "--improver", "cot", "--tasks", "lpn,parity", "--repeats", "1", *common]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert [t["task"] for t in scored["tasks"]] == ["lpn", "parity"] and "mean_normalised" in scored
    assert scored["se_normalised"] is None and scored["tasks"][0]["raw"]["se"] is None  # one run: no se

    assert main(["baseline", "--kind", "random", "--match", "seed", "--task", "lpn", "--runs", "2", *common]) == 0
    matched = json.loads(capsys.readouterr().out)
    # The seed asks once for min(2 responses, 5 utility calls) samples and scores each.
    assert matched["matched_usage"] == {"lm_calls": 1.0, "samples": 2.0, "utility_calls": 2.0}
    assert [imp["name"] for imp in matched["improvers"]] == ["seed", "random (matched to seed)"]
    plain = [arg for arg in common if arg != "--json"]
    assert main(["score", "--improver", "seed", "--tasks", "parity", "--repeats", "1", *plain]) == 0
    out, err = capsys.readouterr()
    assert "normalised gain" in out and "parity" in out and "run " in err
    assert "± n/a" in out and "± 0.0" not in out
    kinds = {k for (k,) in sqlite3.connect(tmp_path / "selftaught.db").execute("SELECT kind FROM runs")}
    assert kinds == {"improve", "score", "baseline"}


def test_experiment_runs_n_seeds_and_aggregates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    improvers = [fenced(hinted_improver(SEED_IMPROVER)), fenced("def improve_algorithm(s, u, lm):\n    1 / 0\n")]
    with ScriptedServer(meta_pool=improvers, hanging=False) as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        code = main(["experiment", "--task", "lpn", "--runs", "2", "--iterations", "1", "--repeats", "2",
                     "--responses-per-call", "2", "--seed", "7", "--accept", "paired", "--runs-dir", str(tmp_path),
                     *FLAGS])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["runs"]) == 2 and [row["t"] for row in doc["experiment"]["steps"]] == [0, 1]
    assert doc["experiment"]["steps"][0]["runs"] == 2
    assert all("(paired)" in run["iterations"][1]["reason"] for run in doc["runs"])
    seeds = sorted(s for (s,) in sqlite3.connect(tmp_path / "selftaught.db").execute(
        "SELECT seed FROM runs WHERE kind='stop'"))
    assert seeds == [7, 8]


def test_experiment_compares_models_side_by_side_and_replays_offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    improvers = [fenced(hinted_improver(SEED_IMPROVER))]
    flags = ["--improver-timeout", "5", "--json", "--runs-dir", str(tmp_path)]
    with ScriptedServer(meta_pool=improvers, hanging=False) as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        code = main(["experiment", "--task", "lpn", "--runs", "2", "--iterations", "1", "--repeats", "1",
                     "--responses-per-call", "2", "--lm", "openai:model-a", "--lm", "openai:model-b", *flags])
        out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert [m["model"] for m in doc["models"]] == ["openai:model-a", "openai:model-b"]
    for model in doc["models"]:
        assert len(model["runs"]) == 2 and model["lm_calls"] > 0 and model["cost_is_estimate"]
        step = model["experiment"]["steps"][1]
        assert step["runs"] == 2 and step["incumbent_test"]["se"] >= 0.0
    assert all(Path(path).exists() for path in doc["figure"]) and len(doc["figure"]) == 2
    db = sqlite3.connect(tmp_path / "selftaught.db")
    assert db.execute("SELECT kind, status FROM runs WHERE id=?", (doc["experiment_id"],)).fetchone() == (
        "experiment", "finished")
    assert sorted(lm for (lm,) in db.execute("SELECT lm FROM runs WHERE kind='stop'")) == [
        "openai:model-a", "openai:model-a", "openai:model-b", "openai:model-b"]

    # The server is gone: the experiment replays from its runs' recorded answers, with the same curves.
    assert main(["resume", doc["experiment_id"], "--runs-dir", str(tmp_path)]) == 1
    assert "finished; nothing to resume" in capsys.readouterr().err
    assert main(["replay", doc["experiment_id"], "--runs-dir", str(tmp_path), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in replayed["models"]] == ["openai:model-a", "openai:model-b"]
    for old, new in zip(doc["models"], replayed["models"], strict=True):
        assert new["experiment"]["steps"] == old["experiment"]["steps"]
        assert new["lm_calls"] == 0 and new["cached_calls"] == old["lm_calls"]


def test_an_interrupted_experiment_resumes_its_unfinished_and_missing_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--improver-timeout", "5", "--json", "--runs-dir", str(tmp_path), "--lm", "openai:fake-model"]
    with ScriptedServer(hanging=False) as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        server.fail_after = 3  # the model goes down during the first run
        assert main(["experiment", "--task", "lpn", "--runs", "2", "--iterations", "1", "--repeats", "1",
                     "--responses-per-call", "2", "--max-completion-tokens", "512", *flags]) == 1
        capsys.readouterr()
        db = sqlite3.connect(tmp_path / "selftaught.db")
        experiment_id, status = db.execute("SELECT id, status FROM runs WHERE kind='experiment'").fetchone()
        assert status == "failed"
        server.fail_after = None
        assert main(["resume", experiment_id, "--runs-dir", str(tmp_path), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
    assert len(doc["runs"]) == 2 and all(run["status"] == "finished" for run in doc["runs"])
    assert db.execute("SELECT status FROM runs WHERE id=?", (experiment_id,)).fetchone() == ("finished",)
    assert db.execute("SELECT COUNT(*) FROM runs WHERE kind='stop'").fetchone() == (2,)
