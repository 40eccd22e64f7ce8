"""The real openai SDK against FakeOpenAIServer over loopback."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.lm import FakeOpenAIServer, OpenAICompatibleLM, Reply, RetryingLM, RetryPolicy, in_order
from selftaught.lm.retry import LMTransientError
from selftaught.records import LMRequest

KEY = "sk-test-0123456789abcdef"
FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer("hello world") as fake:
        yield fake


def make(server: FakeOpenAIServer, **kwargs: Any) -> OpenAICompatibleLM:
    return OpenAICompatibleLM("test-model", api_key=KEY, base_url=server.base_url, timeout_s=5, **kwargs)


def counter_responder(ignore_n: bool) -> Any:
    count = iter(range(1000))

    def respond(body: dict[str, Any]) -> Reply:
        wanted = 1 if ignore_n else int(body.get("n") or 1)
        return Reply(texts=tuple(f"text {next(count)}" for _ in range(wanted)), prompt_tokens=10, completion_tokens=2)

    return respond


def test_n_honoured_in_one_request() -> None:
    with FakeOpenAIServer(counter_responder(ignore_n=False)) as fake:
        response = make(fake).complete(LMRequest(system="sys", user="hi", n=3, temperature=0.3, max_tokens=50))
        requests = fake.requests
    assert response.texts == ("text 0", "text 1", "text 2")
    assert len(requests) == 1
    body = requests[0].body
    assert body["n"] == 3 and body["model"] == "test-model"
    assert body["temperature"] == 0.3 and body["max_tokens"] == 50
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    assert (response.prompt_tokens, response.completion_tokens) == (10, 2)
    assert response.model == "openai:test-model" and response.latency_s > 0


def test_n_ignored_asks_for_the_remainder() -> None:
    with FakeOpenAIServer(counter_responder(ignore_n=True)) as fake:
        response = make(fake).complete(LMRequest(system="", user="hi", n=3))
        requests = fake.requests
    assert response.texts == ("text 0", "text 1", "text 2")
    assert [r.body.get("n", 1) for r in requests] == [3, 2, 1]
    assert requests[0].body["messages"] == [{"role": "user", "content": "hi"}]
    assert (response.prompt_tokens, response.completion_tokens) == (30, 6)  # summed over requests


def test_surplus_choices_are_dropped() -> None:
    with FakeOpenAIServer(Reply(texts=("a", "b", "c"))) as fake:
        assert make(fake).complete(LMRequest(system="", user="hi", n=2)).texts == ("a", "b")


def test_key_is_sent_as_bearer(server: FakeOpenAIServer) -> None:
    make(server).complete(LMRequest(system="", user="hi"))
    assert server.requests[0].authorization == f"Bearer {KEY}"
    assert server.requests[0].path == "/v1/chat/completions"


def test_500_then_success_with_retries() -> None:
    with FakeOpenAIServer(in_order([Reply(status=500), Reply(status=503), "fine"])) as fake:
        lm = RetryingLM(make(fake), FAST, rng=random.Random(0))
        assert lm.complete(LMRequest(system="", user="hi")).texts == ("fine",)
        assert len(fake.requests) == 3


def test_500_alone_is_transient(server: FakeOpenAIServer) -> None:
    with FakeOpenAIServer(Reply(status=500, error_message="boom")) as fake, pytest.raises(LMTransientError) as info:
        make(fake).complete(LMRequest(system="", user="hi"))
    assert "HTTP 500" in str(info.value) and "boom" in str(info.value)


def test_429_retry_after_is_honoured() -> None:
    with FakeOpenAIServer(in_order([Reply(status=429, retry_after="1"), "fine"])) as fake:
        waits: list[float] = []
        lm = RetryingLM(make(fake), FAST, rng=random.Random(0), sleep=waits.append)
        assert lm.complete(LMRequest(system="", user="hi")).texts == ("fine",)
    assert waits == [1.0]  # the server's Retry-After is a floor on the jittered backoff


def test_429_retry_after_zero_really_sleeps_and_succeeds() -> None:
    with FakeOpenAIServer(in_order([Reply(status=429, retry_after="0"), "fine"])) as fake:
        lm = RetryingLM(make(fake), FAST)
        assert lm.complete(LMRequest(system="", user="hi")).texts == ("fine",)


def test_retries_run_out_into_lm_unavailable() -> None:
    with FakeOpenAIServer(Reply(status=503)) as fake:
        lm = RetryingLM(make(fake), FAST)
        with pytest.raises(LMUnavailable, match="failed after 4 attempts.*HTTP 503"):
            lm.complete(LMRequest(system="", user="hi"))
        assert len(fake.requests) == 4


def test_malformed_json_is_transient_then_retried() -> None:
    with FakeOpenAIServer(in_order([Reply(raw_body="{not json"), "fine"])) as fake:
        with pytest.raises(LMTransientError, match="malformed response"):
            make(fake).complete(LMRequest(system="", user="hi"))
        assert RetryingLM(make(fake), FAST).complete(LMRequest(system="", user="hi")).texts == ("fine",)


def test_empty_choices_are_asked_again_then_give_up() -> None:
    with FakeOpenAIServer(in_order([Reply(choices=0), "fine"])) as fake:
        assert make(fake).complete(LMRequest(system="", user="hi", n=2)).texts == ("fine", "fine")
    with FakeOpenAIServer(Reply(choices=0)) as fake:
        with pytest.raises(LMUnavailable, match="no choices 3 times"):
            make(fake).complete(LMRequest(system="", user="hi"))
        assert len(fake.requests) == 3


def test_null_content_becomes_empty_text() -> None:
    with FakeOpenAIServer(Reply(texts=(None, "x"))) as fake:
        assert make(fake).complete(LMRequest(system="", user="hi", n=2)).texts == ("", "x")


def test_unreachable_server_fails_quickly() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lm = OpenAICompatibleLM("m", api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout_s=120)
    started = time.monotonic()
    with pytest.raises(LMUnavailable, match="cannot reach"):
        lm.complete(LMRequest(system="", user="hi"))
    # A refused connection fails at once rather than waiting out the timeout (half of it: a bound no load reaches).
    assert time.monotonic() - started < 60


def test_timeout_is_transient() -> None:
    with FakeOpenAIServer(Reply(delay_s=1.0)) as fake:
        lm = OpenAICompatibleLM("m", api_key=KEY, base_url=fake.base_url, timeout_s=0.2)
        with pytest.raises(LMTransientError, match="no answer within 0.2 s"):
            lm.complete(LMRequest(system="", user="hi"))


def test_auth_error_is_a_request_error_without_the_key() -> None:
    with FakeOpenAIServer(Reply(status=401, error_message=f"Incorrect API key provided: {KEY}")) as fake:
        lm = RetryingLM(make(fake), FAST)
        with pytest.raises(LMRequestError) as info:
            lm.complete(LMRequest(system="", user="hi"))
        assert len(fake.requests) == 1  # not retried
    message = str(info.value)
    assert "HTTP 401" in message and "OPENAI_API_KEY" in message and KEY not in message


def test_bad_n_and_oversized_prompt_send_nothing(server: FakeOpenAIServer) -> None:
    with pytest.raises(LMRequestError, match="n must be"):
        make(server).complete(LMRequest(system="", user="hi", n=0))
    small = make(server, context_tokens=100)
    with pytest.raises(LMRequestError, match="prompt too long"):
        small.complete(LMRequest(system="", user="word " * 200, max_tokens=10))
    assert server.requests == []


def test_reasoning_models_get_max_completion_tokens(server: FakeOpenAIServer) -> None:
    lm = OpenAICompatibleLM("o3-mini", api_key=KEY, base_url=server.base_url, timeout_s=5)
    lm.complete(LMRequest(system="", user="hi", max_tokens=77))
    body = server.requests[0].body
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body and "temperature" not in body


def test_concurrent_calls(server: FakeOpenAIServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    lm = make(server)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: lm.complete(LMRequest(system="", user=f"q{i}", n=2)), range(8)))
    assert all(r.texts == ("hello world", "hello world") for r in results)
    assert len(server.requests) == 8
