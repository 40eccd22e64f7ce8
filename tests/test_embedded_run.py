"""The Quick start's main job in small: a STOP run on the embedded offline model, no key anywhere."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest

from selftaught.cli import main

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
]


def test_a_run_on_the_embedded_model_finishes_and_records_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code = main(["run", "--iterations", "1", "--repeats", "1", "--responses-per-call", "1", "--lm-calls", "1",
                 "--utility-calls", "1", "--max-completion-tokens", "48", "--improver-timeout", "120",
                 "--runs-dir", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "language model: local" in err  # the one line saying which model runs
    doc = json.loads(out)
    assert doc["status"] == "finished" and [row["t"] for row in doc["iterations"]] == [0, 1]
    for row in doc["iterations"]:
        assert row["val"] is None or 0.0 <= row["val"] <= 1.0
    db = sqlite3.connect(tmp_path / "selftaught.db")
    calls = db.execute("SELECT model, n, completion_tokens, responses, cached FROM lm_calls").fetchall()
    assert calls and all(model.startswith("local") and n == 1 for model, n, _, _, _ in calls)
    assert all(json.loads(texts)[0] for _, _, _, texts, _ in calls)
    assert all(tokens > 0 for _, _, tokens, _, cached in calls if not cached)  # an answer from the cache costs none
