"""RetryingLM policy details, ConcurrencyLimitedLM, context preflight."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.lm import ConcurrencyLimitedLM, LMTransientError, RetryingLM, RetryPolicy, ScriptedLM
from selftaught.lm.context import check_fits, context_window
from selftaught.lm.retry import error_for_status, parse_retry_after
from selftaught.records import LMRequest


def flaky(failures: list[Exception]) -> ScriptedLM:
    def answer(request: LMRequest, index: int) -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    return ScriptedLM(answer)


def test_backoff_is_jittered_exponential_with_retry_after_floor() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    rng = random.Random(0)
    for retry, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (10, 5.0)]:
        delays = [policy.delay_s(retry, None, rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling and max(delays) > ceiling * 0.8
    assert policy.delay_s(0, 3.0, rng) == 3.0


def test_retrying_sleeps_then_succeeds() -> None:
    waits: list[float] = []
    inner = flaky([LMTransientError("busy", retry_after_s=0.5), LMTransientError("busy")])
    lm = RetryingLM(inner, RetryPolicy(base_delay_s=0.1), rng=random.Random(0), sleep=waits.append)
    assert lm.complete(LMRequest(system="", user="q")).texts == ("ok",)
    assert len(waits) == 2 and waits[0] >= 0.5 and waits[1] <= 0.2


def test_request_errors_and_long_retry_after_are_not_retried() -> None:
    waits: list[float] = []
    lm = RetryingLM(flaky([LMRequestError("bad key")]), sleep=waits.append)
    with pytest.raises(LMRequestError):
        lm.complete(LMRequest(system="", user="q"))
    lm = RetryingLM(flaky([LMTransientError("busy", retry_after_s=3600)]), sleep=waits.append)
    with pytest.raises(LMUnavailable, match="asks to wait 3600 s"):
        lm.complete(LMRequest(system="", user="q"))
    assert waits == []


def test_zero_retries_tries_once() -> None:
    lm = RetryingLM(flaky([LMTransientError("busy")]), RetryPolicy(max_retries=0))
    with pytest.raises(LMUnavailable, match="failed after 1 attempt: busy"):
        lm.complete(LMRequest(system="", user="q"))


def test_status_classification_and_retry_after_parsing() -> None:
    assert isinstance(error_for_status(429, "x", 1.0), LMTransientError)
    assert isinstance(error_for_status(503, "x"), LMTransientError)
    assert isinstance(error_for_status(529, "x"), LMTransientError)
    assert isinstance(error_for_status(401, "x"), LMRequestError)
    assert isinstance(error_for_status(404, "x"), LMRequestError)
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_concurrency_limit_holds() -> None:
    changed = threading.Condition()
    active = peak = entered = 0

    def answer(request: LMRequest, index: int) -> str:
        # Each call waits (up to 10 s) for a second one to be in flight, or for the last call to have
        # started, then stays a moment: the peak is 2 whatever the load, and over 2 if the limit leaks.
        nonlocal active, peak, entered
        with changed:
            active += 1
            entered += 1
            peak = max(peak, active)
            changed.notify_all()
            changed.wait_for(lambda: active >= 2 or entered == 12, timeout=10)
        time.sleep(0.02)
        with changed:
            active -= 1
        return "ok"

    lm = ConcurrencyLimitedLM(ScriptedLM(answer), 2)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: lm.complete(LMRequest(system="", user="q")), range(12)))
    assert peak == 2


def test_concurrency_wait_timeout() -> None:
    holding, release = threading.Event(), threading.Event()

    def answer(request: LMRequest, index: int) -> str:
        holding.set()  # the first call holds the only slot...
        return str(release.wait(30))  # ...until the second has been refused

    lm = ConcurrencyLimitedLM(ScriptedLM(answer), 1, wait_timeout_s=0.05)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(lm.complete, LMRequest(system="", user="q"))
        assert holding.wait(30)
        with pytest.raises(LMUnavailable, match="no free request slot"):
            lm.complete(LMRequest(system="", user="q"))
        release.set()
        assert first.result().texts == ("True",)


def test_context_preflight() -> None:
    assert context_window("gpt-4o-mini-2024-07-18") == 128_000
    assert context_window("claude-sonnet-4-5") == 200_000
    assert context_window("my-local-model") is None
    check_fits(LMRequest(system="", user="x" * 100_000), None, "m")  # unknown window: not checked
    with pytest.raises(LMRequestError, match="at least 200000 prompt tokens"):
        check_fits(LMRequest(system="", user="x" * 1_000_000), 128_000, "openai:gpt-4o")
    with pytest.raises(LMRequestError, match="100 prompt tokens \\+ max_tokens 50 exceed its 120"):
        check_fits(LMRequest(system="", user="q", max_tokens=50), 120, "local", prompt_tokens=100)
