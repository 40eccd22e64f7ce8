"""Distinct messages of one ``batch_prompt`` go out together, within the LM's concurrency limit.

A beam-search improver sends 4 different prompts in one call to a server that takes 1 s per
answer: they must be in flight at the same time (about one latency, not four), answered in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from selftaught.broker import Broker
from selftaught.config import Budgets, SandboxConfig
from selftaught.lm import ConcurrencyLimitedLM, FakeOpenAIServer, OpenAICompatibleLM, Reply
from selftaught.meta_utility import TaskUtility
from selftaught.sandbox import ForkServerSandbox
from selftaught.store import RunRecorder, RunStore
from selftaught.tasks import get_task

LATENCY_S = 1.0
BEAM = """
def improve_algorithm(initial_solution, utility, language_model):
    import time
    started = time.monotonic()
    answers = language_model.batch_prompt("expert", [f"variant {i}" for i in range(4)], temperature=0.7)
    return repr((answers, time.monotonic() - started))
"""


class SlowServer:
    """Answers each prompt with its own text after ``LATENCY_S``; counts requests in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        self.server = FakeOpenAIServer(self.respond)

    def respond(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(LATENCY_S)
        with self._lock:
            self.in_flight -= 1
        return Reply(text=f"answer to {body['messages'][-1]['content']}")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ForkServerSandbox]:
    with ForkServerSandbox(SandboxConfig()) as box:
        yield box


def _beam(sandbox: ForkServerSandbox, limit: int) -> tuple[list[str], float, int]:
    slow = SlowServer()
    with slow.server:
        lm = OpenAICompatibleLM("test-model", api_key="sk-test-0123456789", base_url=slow.server.base_url,
                                timeout_s=10)
        store = RunStore(":memory:")
        run_id = store.create_run("lpn", lm.name, 0, {}, [])
        broker = Broker(sandbox, ConcurrencyLimitedLM(lm, limit), RunRecorder(store, run_id),
                        Budgets(lm_calls=1, responses_per_call=4, utility_calls=1, improver_timeout_s=30))
        task = get_task("lpn")
        run = broker.improve(BEAM, task.initial_solution, TaskUtility(broker, task, "train"), "t")
    assert run.solution is not None, run.reason
    answers, elapsed = eval(run.solution)  # noqa: S307 - our own repr of plain data
    return answers, elapsed, slow.peak


def test_four_distinct_prompts_are_answered_together_in_order(sandbox: ForkServerSandbox) -> None:
    answers, elapsed, peak = _beam(sandbox, limit=4)
    assert answers == [f"answer to variant {i}" for i in range(4)]
    assert peak == 4
    assert elapsed < 4 * LATENCY_S  # sent one after another they take at least 4 latencies


def test_the_concurrency_limit_still_holds(sandbox: ForkServerSandbox) -> None:
    answers, elapsed, peak = _beam(sandbox, limit=2)
    assert answers == [f"answer to variant {i}" for i in range(4)]
    assert peak == 2 and elapsed >= 2 * LATENCY_S
