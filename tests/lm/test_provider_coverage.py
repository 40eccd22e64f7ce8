"""Today's providers through the real SDKs on loopback: why samples ended, parameters reasoning
models reject, prompt-cache usage and its price, usage a server leaves out."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from selftaught.lm import (
    AnthropicLM,
    FakeAnthropicServer,
    FakeOpenAIServer,
    Meter,
    MeteredLM,
    OpenAICompatibleLM,
    PriceTable,
    Reply,
    ScriptedLM,
    rejecting,
)
from selftaught.records import LMRequest

KEY = "sk-test-0123456789abcdef"


def openai_lm(server: FakeOpenAIServer, model: str = "test-model") -> OpenAICompatibleLM:
    return OpenAICompatibleLM(model, api_key=KEY, base_url=server.base_url, timeout_s=5)


def anthropic_lm(server: FakeAnthropicServer, model: str = "claude-test") -> AnthropicLM:
    return AnthropicLM(model, api_key=KEY, base_url=server.base_url, timeout_s=5)


def test_openai_finish_reason_length_is_kept_per_sample() -> None:
    reply = Reply(texts=("whole answer", "cut off ```python\ndef f(", None),
                  finish_reasons=("stop", "length", "content_filter"))
    with FakeOpenAIServer(reply) as fake:
        response = openai_lm(fake).complete(LMRequest(system="", user="hi", n=3, max_tokens=8))
    assert response.finish_reasons == ("stop", "length", "content_filter")
    assert response.truncated == 1 and response.texts[2] == ""


def test_anthropic_stop_reason_max_tokens_is_length() -> None:
    with FakeAnthropicServer(Reply(text="cut", finish_reasons=("max_tokens",))) as fake:
        response = anthropic_lm(fake).complete(LMRequest(system="", user="hi", n=2, max_tokens=8))
    assert response.finish_reasons == ("length", "length") and response.truncated == 2
    with FakeAnthropicServer(Reply(text="done")) as fake:
        assert anthropic_lm(fake).complete(LMRequest(system="", user="hi")).finish_reasons == ("stop",)


def test_scripted_lm_stops_at_the_completion_limit() -> None:
    lm = ScriptedLM(["one two three four", "one"], stop_at_max_tokens=True)
    response = lm.complete(LMRequest(system="", user="x", n=2, max_tokens=2))
    assert response.texts == ("one two ", "one") and response.finish_reasons == ("length", "stop")
    assert response.completion_tokens == 3
    unlimited = ScriptedLM(["one two three four"]).complete(LMRequest(system="", user="x", max_tokens=2))
    assert unlimited.texts == ("one two three four",) and unlimited.finish_reasons == ("stop",)


@pytest.mark.parametrize(
    ("rejected", "sent_instead"),
    [("temperature", None), ("max_tokens", "max_completion_tokens")],
)
def test_a_model_rejecting_a_parameter_is_adapted_once_and_remembered(
    rejected: str, sent_instead: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeOpenAIServer(rejecting([rejected], "fine")) as fake, caplog.at_level(logging.WARNING, "selftaught.lm"):
        lm = openai_lm(fake, "new-reasoner")
        first = lm.complete(LMRequest(system="", user="hi", temperature=0.3, max_tokens=64))
        second = lm.complete(LMRequest(system="", user="again", temperature=0.3, max_tokens=64))
        bodies = [request.body for request in fake.requests]
    assert first.texts == second.texts == ("fine",)
    assert len(bodies) == 3  # one refusal, then every request adapted
    assert rejected in bodies[0] and all(rejected not in body for body in bodies[1:])
    if sent_instead is not None:
        assert all(body[sent_instead] == 64 for body in bodies[1:])
    assert lm.adapted == {rejected}
    said = [record.getMessage() for record in caplog.records if rejected in record.getMessage()]
    assert len(said) == 1 and "new-reasoner" in said[0]


def test_a_model_rejecting_n_gets_separate_requests() -> None:
    with FakeOpenAIServer(rejecting(["n"], "one sample")) as fake:
        lm = openai_lm(fake)
        response = lm.complete(LMRequest(system="", user="hi", n=3))
        bodies = [request.body for request in fake.requests]
    assert response.texts == ("one sample",) * 3
    assert bodies[0]["n"] == 3 and [("n" in body) for body in bodies[1:]] == [False] * 3
    assert lm.adapted == {"n"}


def test_known_reasoning_models_never_get_temperature_or_max_tokens(caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAIServer(rejecting(["temperature", "max_tokens"], "ok")) as fake, \
            caplog.at_level(logging.WARNING, "selftaught.lm"):
        lm = openai_lm(fake, "o4-mini")
        for _ in range(2):
            lm.complete(LMRequest(system="", user="hi", max_tokens=99))
        bodies = [request.body for request in fake.requests]
    assert len(bodies) == 2 and all(body["max_completion_tokens"] == 99 and "temperature" not in body
                                    for body in bodies)
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and "max_completion_tokens" in said[0] and "temperature" in said[0]


def test_openai_cached_prompt_tokens_are_read_and_priced_cheaper() -> None:
    reply = Reply(text="ok", prompt_tokens=10_000, completion_tokens=100, cached_prompt_tokens=8_000)
    with FakeOpenAIServer(reply) as fake:
        metered = MeteredLM(openai_lm(fake, "gpt-4o"), Meter(prices=PriceTable()))
        response = metered.complete(LMRequest(system="", user="hi"))
    assert (response.prompt_tokens, response.cached_prompt_tokens) == (10_000, 8_000)
    price = PriceTable().price("openai:gpt-4o")
    assert price is not None and price.cached_input_usd_per_mtok is not None
    expected = (2_000 * price.input_usd_per_mtok + 8_000 * price.cached_input_usd_per_mtok
                + 100 * price.output_usd_per_mtok) / 1e6
    assert response.cost_usd == pytest.approx(expected)
    assert response.cost_usd < price.cost_usd(10_000, 100)


def test_anthropic_cache_reads_and_writes_count_as_prompt_and_are_priced_apart() -> None:
    reply = Reply(text="ok", prompt_tokens=5_000, completion_tokens=50, cached_prompt_tokens=3_000,
                  cache_write_tokens=1_000)
    with FakeAnthropicServer(reply) as fake:
        metered = MeteredLM(anthropic_lm(fake, "claude-sonnet-4"), Meter(prices=PriceTable()))
        response = metered.complete(LMRequest(system="", user="hi"))
    assert (response.prompt_tokens, response.cached_prompt_tokens, response.cache_write_tokens) == (5_000, 3_000,
                                                                                                    1_000)
    expected = (1_000 * 3.00 + 3_000 * 0.30 + 1_000 * 3.75 + 50 * 15.00) / 1e6
    assert response.cost_usd == pytest.approx(expected)


def test_anthropic_marks_a_long_prompt_asked_for_several_samples_for_caching() -> None:
    long_prompt = "word " * 2_000
    with FakeAnthropicServer("ok") as fake:
        anthropic_lm(fake).complete(LMRequest(system="", user=long_prompt, n=2))
        anthropic_lm(fake).complete(LMRequest(system="", user="short", n=2))
        contents: list[Any] = [request.body["messages"][0]["content"] for request in fake.requests]
    assert contents[0][0]["cache_control"] == {"type": "ephemeral"} and contents[0][0]["text"] == long_prompt
    assert contents[2] == "short"


@pytest.mark.parametrize("server_class", [FakeOpenAIServer, FakeAnthropicServer])
def test_usage_missing_from_the_server_is_estimated_and_marked(server_class: Any) -> None:
    with server_class(Reply(text="x" * 400, usage=False)) as fake:
        lm = openai_lm(fake) if server_class is FakeOpenAIServer else anthropic_lm(fake)
        response = lm.complete(LMRequest(system="", user="y" * 80))
    assert response.usage_estimated
    assert (response.prompt_tokens, response.completion_tokens) == (20, 100)
    with server_class(Reply(text="x" * 400)) as fake:
        lm = openai_lm(fake) if server_class is FakeOpenAIServer else anthropic_lm(fake)
        assert not lm.complete(LMRequest(system="", user="y")).usage_estimated
