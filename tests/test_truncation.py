"""Truncation as data: answers a server cuts off at the completion limit are counted where a user looks.

A STOP run against a fake server that cuts off its answers to improver prompts (``finish_reason: length``)
shows the count in its step lines, its summary, ``safety`` and the dashboard; the cut-off code is
not taken for whole code.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from selftaught.cli import main
from selftaught.dashboard.pages_runs import run_page
from selftaught.lm import Reply
from selftaught.proxy.helpers import HELPERS_SOURCE
from selftaught.store.reader import StoreReader
from tests.conftest import FAKE_KEY, ScriptedServer

pytestmark = pytest.mark.slow


class CuttingServer(ScriptedServer):
    """The scripted server, but every answer to a prompt that quotes an improver is cut off halfway
    with ``length`` (answers to other prompts come back whole)."""

    def respond(self, body: dict[str, Any]) -> Reply:
        reply = super().respond(body)
        if "def improve_algorithm" not in body["messages"][-1]["content"]:
            return reply
        texts = tuple(text[: len(text) // 2] if text else text for text in reply.texts or ())
        return Reply(texts=texts, finish_reasons=("length",) * len(texts))


def test_a_run_with_cut_off_answers_counts_them_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with CuttingServer(hanging=False) as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        code = main(["run", "--lm", "openai:fake", "--iterations", "1", "--repeats", "1", "--improver-timeout", "20",
                     "--runs-dir", str(tmp_path), "--json"])
        out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    db = sqlite3.connect(tmp_path / "selftaught.db")
    cut = db.execute("SELECT COALESCE(SUM(truncated), 0) FROM lm_calls WHERE run_id=?",
                     (summary["run_id"],)).fetchone()[0]
    assert cut > 0 and summary["truncated"] == cut
    events = db.execute("SELECT detail FROM events WHERE run_id=? AND kind='truncated'",
                        (summary["run_id"],)).fetchall()
    assert len(events) == cut
    assert all("cut off at max_tokens" in detail and "/c0/g0 sample" in detail for (detail,) in events)
    assert "truncated (raise --max-completion-tokens)" in err  # the step line
    assert err.index("cost bound (estimate): at most") < err.index("step 0/1")  # the bound comes first

    assert main(["safety", summary["run_id"], "--runs-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"]["truncated"] == cut

    page = run_page(StoreReader.open(tmp_path / "selftaught.db"), summary["run_id"])
    assert f"{cut:,} cut off at the completion limit" in page


def test_extract_code_ignores_a_block_left_open() -> None:
    namespace: dict[str, Any] = {}
    exec(HELPERS_SOURCE, namespace)  # noqa: S102 - our own helper source, run to test it
    extract = namespace["extract_code"]
    assert extract("idea\n```python\ndef f(x):\n    return [x,\n") is None  # cut off mid-expression
    assert extract("```python\ndef f(x):\n    return x\n```\n") == "def f(x):\n    return x"
    assert extract("```python\nx = 1\n```\n```python\ndef g(\n") == "x = 1"


def test_the_dashboard_shows_why_each_sample_of_a_call_ended(tmp_path: Path) -> None:
    from selftaught.dashboard.pages_lm import lm_call_page
    from selftaught.records import LMRequest, LMResponse
    from selftaught.store import RunRecorder, RunStore

    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "m", 0, {}, [])
    RunRecorder(store, run_id).lm_call(
        LMRequest("sys", "hi", n=2, tag="t1/c0/g0"),
        LMResponse(("whole", "cut"), "m", 10, 5, finish_reasons=("stop", "length"), cached_prompt_tokens=4,
                   usage_estimated=True))
    call_id = store._db.execute("SELECT id FROM lm_calls").fetchone()[0]
    page = lm_call_page(StoreReader.open(tmp_path / "selftaught.db"), run_id, call_id)
    assert "stop, length" in page and "Response 2 of 2 (cut off at the completion limit)" in page
    assert "Response 1 of 2</h3>" in page and "4 prompt tokens read" in page and "estimated" in page
