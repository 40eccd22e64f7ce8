"""Secret splits end to end: the lookup attack through ``improve`` and a full ``run``, the secret
kept in the store (replay reuses it), shared on purpose (export/import, ``--secret-file``), and
tables that refuse runs scored on different instances."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selftaught.cli import main
from selftaught.improver import SEED_IMPROVER
from selftaught.lm.fake_server import FakeOpenAIServer, Reply
from selftaught.store import RunStore
from selftaught.store.splits import run_splits
from tests.conftest import FAKE_KEY
from tests.programs.lpn import fenced
from tests.tasks.lookup import lookup_solution

pytestmark = pytest.mark.slow

FLAGS = ["--lm", "openai:fake-model", "--improver-timeout", "60", "--json"]
HONEST = 0.65  # random guessing scores about 0.5 on 20 x 20 (val) or 50 x 20 (test) labels


def _respond(body: dict[str, Any]) -> Reply:
    """Improver prompts get the seed improver back; solution prompts get the lookup solution."""
    user = body["messages"][-1]["content"]
    code = SEED_IMPROVER if "def improve_algorithm" in user else lookup_solution("lpn")
    return Reply(texts=tuple(fenced(code) for _ in range(int(body.get("n") or 1))))


@pytest.fixture
def lookup_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(_respond) as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def _json(capsys: pytest.CaptureFixture[str], code: int) -> Any:
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_the_lookup_attack_through_improve_scores_no_better_than_guessing(
    lookup_server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _json(capsys, main(["improve", "--task", "lpn", "--improver", "seed", "--runs-dir", str(tmp_path),
                              "--lm-calls", "1", "--responses-per-call", "2", "--utility-calls", "2", *FLAGS]))
    assert "get_task" in doc["solution"]  # the improver did return the lookup solution
    assert doc["improved"]["val"] < HONEST and doc["improved"]["test"] < HONEST

    store = RunStore.in_dir(tmp_path)
    (recorded,) = run_splits(store, doc["run_id"])
    assert recorded.task == "lpn" and recorded.params["bits"] == 10 and recorded.scoring == "normalised"
    assert len(recorded.secret) == 16 and len(recorded.instances) == 16
    # The secret itself is stored once, and nowhere a sandbox or a prompt could take it from.
    secret_hex = store._db.execute("SELECT secret FROM split_secrets").fetchone()[0]
    db = sqlite3.connect(tmp_path / "selftaught.db")
    for table, column in [("lm_calls", "prompt"), ("lm_calls", "responses"), ("programs", "source"),
                          ("events", "detail"), ("runs", "config")]:
        assert not db.execute(f"SELECT 1 FROM {table} WHERE {column} LIKE ?", (f"%{secret_hex}%",)).fetchall()


def test_the_lookup_attack_through_a_full_run_and_its_replay(
    lookup_server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = ["--lm-calls", "1", "--responses-per-call", "2", "--utility-calls", "2"]
    doc = _json(capsys, main(["run", "--task", "lpn", "--iterations", "1", "--repeats", "1", "--runs-dir",
                              str(tmp_path), *budget, *FLAGS]))
    assert doc["status"] == "finished" and len(doc["iterations"]) == 2
    for row in doc["iterations"]:
        assert row["val"] < HONEST and row["test"] < HONEST

    replayed = _json(capsys, main(["replay", doc["run_id"], "--runs-dir", str(tmp_path), "--json"]))
    assert [row["test"] for row in replayed["iterations"]] == [row["test"] for row in doc["iterations"]]
    store = RunStore.in_dir(tmp_path)
    assert run_splits(store, replayed["run_id"]) == run_splits(store, doc["run_id"])


def test_sharing_a_secret_and_refusing_mixed_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["secret", "show", "--runs-dir", str(first)]) == 0
    fingerprint = capsys.readouterr().out.strip()
    assert len(fingerprint) == 16
    shared = tmp_path / "shared.secret"
    assert main(["secret", "export", str(shared), "--runs-dir", str(first)]) == 0
    out = capsys.readouterr().out
    assert fingerprint in out and shared.read_text().strip() not in out  # the secret is never printed
    assert shared.stat().st_mode & 0o777 == 0o600
    assert main(["secret", "export", str(shared), "--runs-dir", str(first)]) == 1  # never overwritten
    assert "must not exist yet" in capsys.readouterr().err

    assert main(["secret", "show", "--runs-dir", str(second)]) == 0
    assert capsys.readouterr().out.strip() != fingerprint  # another store, another secret
    assert main(["secret", "import", str(shared), "--runs-dir", str(second)]) == 0
    capsys.readouterr()
    assert main(["secret", "show", "--runs-dir", str(second)]) == 0
    assert capsys.readouterr().out.strip() == fingerprint


def test_runs_on_other_instances_are_refused_in_one_table(
    lookup_server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.secret"
    other.write_text("ab" * 32)
    common = ["--task", "lpn", "--iterations", "0", "--repeats", "1", "--runs-dir", str(tmp_path), *FLAGS]
    own = _json(capsys, main(["run", *common]))["run_id"]
    shared = _json(capsys, main(["run", *common, "--secret-file", str(other)]))["run_id"]
    store = RunStore.in_dir(tmp_path)
    assert run_splits(store, own)[0].instances != run_splits(store, shared)[0].instances
    code = main(["experiment", "--from-runs", f"{own},{shared}", "--runs-dir", str(tmp_path), "--json"])
    assert code == 1
    assert "different instances" in capsys.readouterr().err
    assert main(["experiment", "--from-runs", f"{own},{shared}", "--allow-mixed-instances", "--runs-dir",
                 str(tmp_path), "--json"]) == 0


def test_inside_the_sandbox_the_attack_needs_only_public_splits(tmp_path: Path) -> None:
    """The package is importable in the sandbox: the attack is perfect there unless splits are secret."""
    from selftaught.broker import Broker
    from selftaught.config import Budgets, SandboxConfig
    from selftaught.lm import ScriptedLM
    from selftaught.sandbox import ForkServerSandbox
    from selftaught.store import RunRecorder
    from selftaught.tasks import get_task
    from selftaught.tasks.secret import SplitSecret

    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    with ForkServerSandbox(SandboxConfig()) as sandbox:
        broker = Broker(sandbox, ScriptedLM(lambda request, index: ""), RunRecorder(store, run_id), Budgets())
        public = broker.evaluate(lookup_solution("lpn"), get_task("lpn"), "test", "public")
        hidden = broker.evaluate(lookup_solution("lpn"), get_task("lpn", SplitSecret.new()), "test", "hidden")
    assert public.score == 1.0
    assert hidden.score < HONEST


def test_a_run_on_the_hard_preset_records_every_parameter(
    lookup_server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _json(capsys, main(["run", "--task", "lpn:preset=hard", "--iterations", "0", "--repeats", "1",
                              "--runs-dir", str(tmp_path), *FLAGS]))
    assert doc["status"] == "finished" and doc["iterations"][0]["test"] < HONEST
    (recorded,) = run_splits(RunStore.in_dir(tmp_path), doc["run_id"])
    assert recorded.task == "lpn:preset=hard"
    assert recorded.params == {"bits": 32, "secret_p": 0.3, "n_train": 200, "n_test": 20, "noise": 0.1,
                               "timeout_s": 2.0}
    # The lookup solution's prompt showed the hard parameters to the LM.
    assert any("n_bits = 32" in request.body["messages"][-1]["content"] for request in lookup_server.requests)
