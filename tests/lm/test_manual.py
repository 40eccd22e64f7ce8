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
        deadline = time.monotonic() + 30
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
    lm = ManualLM(tmp_path, timeout_s=30, poll_s=0.01)
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


def test_waiting_says_which_file_to_answer(tmp_path: Path) -> None:
    said: list[str] = []
    lm = ManualLM(tmp_path, timeout_s=30, poll_s=0.01, notify=said.append)
    helper = answer_when_asked(tmp_path, ["done"])
    lm.complete(LMRequest(system="", user="hello", tag="t1/improve/c0/g0"))
    helper.join()
    assert len(said) == 1
    assert ".answer-0.md" in said[0] and "t1/improve/c0/g0" in said[0] and f"selftaught answer {tmp_path}" in said[0]


def test_the_deadline_is_its_own_setting_and_flag(tmp_path: Path) -> None:
    from selftaught.cli.parser import build_parser
    from selftaught.cli.runs import config_from
    from selftaught.config import LMConfig
    from selftaught.lm import get_lm

    assert LMConfig().manual_timeout_s >= 3600 and LMConfig().timeout_s < LMConfig().manual_timeout_s
    args = build_parser().parse_args(["run", "--lm", f"manual:{tmp_path}", "--manual-timeout", "7200"])
    config = config_from(args, {})
    assert config.lm.manual_timeout_s == 7200
    lm = get_lm(config.lm.spec, config.lm, {}, wrap=False)
    assert isinstance(lm, ManualLM) and lm._timeout_s == 7200


def test_answer_lists_pending_requests_and_writes_one_from_the_editor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from selftaught.cli import main
    from selftaught.lm.manual import pending

    lm = ManualLM(tmp_path, timeout_s=30, poll_s=0.01, notify=lambda line: None)
    result: list[tuple[str, ...]] = []
    waiting = threading.Thread(target=lambda: result.append(lm.complete(LMRequest(system="", user="q?", n=2)).texts))
    waiting.start()
    deadline = time.monotonic() + 30
    while not pending(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert main(["answer", str(tmp_path), "--list"]) == 0
    assert "2 answer(s) missing" in capsys.readouterr().out
    monkeypatch.setenv("EDITOR", "sh -c 'printf \"first answer\" > \"$0\"'")
    monkeypatch.delenv("VISUAL", raising=False)
    assert main(["answer", str(tmp_path)]) == 0
    assert main(["answer", str(tmp_path)]) == 0
    waiting.join(timeout=5)
    assert result == [("first answer", "first answer")]
    assert main(["answer", str(tmp_path)]) == 0
    assert "no requests waiting" in capsys.readouterr().out
