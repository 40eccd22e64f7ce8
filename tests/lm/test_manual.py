"""ManualLM: request files out, answer files in."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from selftaught.errors import LMUnavailable
from selftaught.lm import ManualLM
from selftaught.records import LMRequest


def answer_when_asked(directory: Path, texts: list[str]) -> threading.Thread:
    """A stand-in for the person: waits for a request file, writes its answers."""

    def run() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = sorted(directory.glob("*.request.json"))
            if found:
                payload = json.loads(found[0].read_text())
                for name, text in zip(payload["answer_files"], texts, strict=True):
                    temporary = directory / f".{name}.tmp"
                    temporary.write_text(text)
                    temporary.rename(directory / name)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_round_trip(tmp_path: Path) -> None:
    lm = ManualLM(tmp_path, timeout_s=5, poll_s=0.01)
    helper = answer_when_asked(tmp_path, ["first", "second"])
    response = lm.complete(LMRequest(system="be brief", user="say hi", n=2, tag="t0/c1"))
    helper.join()
    assert response.texts == ("first", "second")
    assert response.model == f"manual:{tmp_path}"
    readable = next(tmp_path.glob("*.md")).read_text()
    assert "be brief" in readable and "say hi" in readable and ".answer-1.md" in readable
    payload = json.loads(next(tmp_path.glob("*.request.json")).read_text())
    assert payload["tag"] == "t0/c1" and payload["n"] == 2


def test_timeout_is_unavailable(tmp_path: Path) -> None:
    lm = ManualLM(tmp_path / "queue", timeout_s=0.1, poll_s=0.02)
    with pytest.raises(LMUnavailable, match="no answer in .*answer-0.md within 0.1 s"):
        lm.complete(LMRequest(system="", user="anyone?"))
    assert len(list((tmp_path / "queue").glob("*.request.json"))) == 1


def test_each_request_gets_its_own_files(tmp_path: Path) -> None:
    lm = ManualLM(tmp_path, timeout_s=0.05, poll_s=0.01)
    for _ in range(2):
        with pytest.raises(LMUnavailable):
            lm.complete(LMRequest(system="", user="same"))
    assert len(list(tmp_path.glob("*.request.json"))) == 2
