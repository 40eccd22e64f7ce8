"""ScriptedLM: lists cycled or consumed, functions, history, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from selftaught.errors import LMUnavailable
from selftaught.lm import LanguageModel, ScriptedLM
from selftaught.records import LMRequest


def test_list_is_cycled_per_sample() -> None:
    lm = ScriptedLM(["a", "b", "c"])
    assert isinstance(lm, LanguageModel)
    assert lm.complete(LMRequest(system="s", user="u", n=2)).texts == ("a", "b")
    assert lm.complete(LMRequest(system="s", user="u", n=2)).texts == ("c", "a")


def test_consumed_list_runs_out() -> None:
    lm = ScriptedLM(["a"], cycle=False)
    assert lm.complete(LMRequest(system="", user="u")).texts == ("a",)
    with pytest.raises(LMUnavailable, match="ran out"):
        lm.complete(LMRequest(system="", user="u"))


def test_function_script_and_history() -> None:
    lm = ScriptedLM(lambda request, index: f"{request.user}#{index}", name="echo")
    response = lm.complete(LMRequest(system="", user="two words", n=3, tag="t0"))
    assert response.texts == ("two words#0", "two words#1", "two words#2")
    assert response.model == "echo" and response.prompt_tokens == 2 and response.completion_tokens == 6
    assert [r.tag for r in lm.history] == ["t0"]


def test_bad_scripts_are_refused() -> None:
    with pytest.raises(TypeError):
        ScriptedLM("abc")
    with pytest.raises(ValueError):
        ScriptedLM([])


def test_threads_never_share_a_consumed_text() -> None:
    texts = [str(i) for i in range(200)]
    lm = ScriptedLM(texts, cycle=False)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: lm.complete(LMRequest(system="", user="u", n=2)).texts, range(100)))
    assert sorted(t for pair in results for t in pair) == sorted(texts)
    assert len(lm.history) == 100
