"""The real anthropic SDK against FakeAnthropicServer over loopback."""

from __future__ import annotations

import random
import socket
from typing import Any

import pytest

from selftaught.config import LMConfig
from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.lm import AnthropicLM, FakeAnthropicServer, Reply, RetryingLM, RetryPolicy, get_lm, in_order
from selftaught.lm.retry import LMTransientError
from selftaught.records import LMRequest

KEY = "sk-ant-test-0123456789"
FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)


def make(server: FakeAnthropicServer, **kwargs: Any) -> AnthropicLM:
    return AnthropicLM("claude-test", api_key=KEY, base_url=server.base_url, timeout_s=5, **kwargs)


def test_n_samples_are_n_requests_with_usage_summed() -> None:
    count = iter(range(100))

    def respond(body: dict[str, Any]) -> Reply:
        return Reply(text=f"answer {next(count)}", prompt_tokens=7, completion_tokens=3)

    with FakeAnthropicServer(respond) as fake:
        response = make(fake).complete(LMRequest(system="sys", user="hi", n=3, max_tokens=99))
        requests = fake.requests
    assert response.texts == ("answer 0", "answer 1", "answer 2")
    assert (response.prompt_tokens, response.completion_tokens) == (21, 9)
    assert response.model == "anthropic:claude-test"
    assert len(requests) == 3
    body = requests[0].body
    assert body["model"] == "claude-test" and body["max_tokens"] == 99 and body["system"] == "sys"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "temperature" not in body
    headers = requests[0].headers
    assert KEY in headers.get("x-api-key", "") or headers.get("authorization") == f"Bearer {KEY}"


def test_temperature_sent_on_request() -> None:
    with FakeAnthropicServer("x") as fake:
        make(fake, send_temperature=True).complete(LMRequest(system="", user="hi", temperature=0.3))
        body = fake.requests[0].body
    assert body["temperature"] == 0.3 and "system" not in body


def test_text_blocks_join_and_empty_content_is_empty_text() -> None:
    with FakeAnthropicServer(in_order([Reply(texts=("a", "b")), Reply(choices=0)])) as fake:
        assert make(fake).complete(LMRequest(system="", user="hi", n=2)).texts == ("ab", "")


def test_overloaded_and_rate_limited_are_retried() -> None:
    replies: list[str | Reply] = [Reply(status=529), Reply(status=429, retry_after="0"), Reply(raw_body="{bad"), "fine"]
    with FakeAnthropicServer(in_order(replies)) as fake:
        lm = RetryingLM(make(fake), FAST, rng=random.Random(1))
        assert lm.complete(LMRequest(system="", user="hi")).texts == ("fine",)
        assert len(fake.requests) == 4


def test_auth_error_is_a_request_error_without_the_key() -> None:
    with FakeAnthropicServer(Reply(status=401, error_message=f"invalid x-api-key {KEY}")) as fake:
        with pytest.raises(LMRequestError) as info:
            RetryingLM(make(fake), FAST).complete(LMRequest(system="", user="hi"))
        assert len(fake.requests) == 1
    assert "HTTP 401" in str(info.value) and "ANTHROPIC_API_KEY" in str(info.value) and KEY not in str(info.value)


def test_server_error_is_transient() -> None:
    with FakeAnthropicServer(Reply(status=500)) as fake, pytest.raises(LMTransientError, match="HTTP 500"):
        make(fake).complete(LMRequest(system="", user="hi"))


def test_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lm = AnthropicLM("claude-test", api_key=KEY, base_url=f"http://127.0.0.1:{port}", timeout_s=5)
    with pytest.raises(LMUnavailable, match="cannot reach"):
        lm.complete(LMRequest(system="", user="hi"))


def test_spec_through_the_registry() -> None:
    with FakeAnthropicServer("pong") as fake:
        env = {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.base_url}
        lm = get_lm("anthropic:claude-haiku-4-5", LMConfig(timeout_s=5), env)
        assert lm.name == "anthropic:claude-haiku-4-5"
        assert lm.complete(LMRequest(system="", user="ping")).texts == ("pong",)
