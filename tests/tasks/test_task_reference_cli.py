"""``selftaught transfer --scoring reference``: the table on the paper's scales beside Table 1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selftaught.cli import main
from selftaught.improver import SEED_IMPROVER
from selftaught.lm.fake_server import FakeOpenAIServer, Reply
from tests.conftest import FAKE_KEY
from tests.programs.lpn import fenced
from tests.tasks.solutions import QAP_IDENTITY

pytestmark = pytest.mark.slow

FLAGS = ["--lm", "openai:fake-model", "--improver-timeout", "60", "--runs", "2", "--lm-calls", "1",
         "--responses-per-call", "1", "--utility-calls", "1"]


def _respond(body: dict[str, Any]) -> Reply:
    user = body["messages"][-1]["content"]
    if "def improve_algorithm" in user:
        code = SEED_IMPROVER
    elif "algorithm(F, D, P)" in user:
        code = QAP_IDENTITY
    else:
        code = "def algorithm(t, dist):\n    return 'A' * len(t)\n"
    return Reply(texts=tuple(fenced(code) for _ in range(int(body.get("n") or 1))))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(_respond) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


def test_reference_transfer_prints_the_papers_numbers(
    server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["transfer", "--improvers", "seed", "--tasks", "string_grid,qap", "--runs-dir", str(tmp_path), *FLAGS]
    assert main([*args, "--scoring", "reference", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["scoring"] == "reference"
    assert doc["paper_table1"]["qap"]["u(s)"] == 0.204 and "run-time" in doc["paper_table1"]["qap"]["comparable"]
    qap = doc["rows"][1]
    # On the reference scale (objective / n^2, larger is better) the identity scores about 0.23 ...
    assert 0.15 < qap["improvers"]["seed"]["raw"]["mean"] < 0.3
    assert set(doc["instances"]) == {"string_grid", "qap"}

    assert main([*args, "--scoring", "reference"]) == 0
    out = capsys.readouterr().out
    assert "paper's Table 1" in out and "43.9%" in out and "20.4%" in out

    # ... and about 0.06 on the default scale (minimised, normalised between random and a local search).
    assert main([*args, "--json"]) == 0
    default = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert default["scoring"] == "normalised" and "paper_table1" not in default
    assert default["rows"][1]["improvers"]["seed"]["raw"]["mean"] < 0.15
