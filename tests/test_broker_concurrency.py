"""Distinct messages of one ``batch_prompt`` go out together, within the LM's concurrency limit.

A beam-search improver sends 4 different prompts in one call. The server holds each request until
as many as the limit allows are in flight at once (or ``GATE_S`` passes), so prompts sent together
are answered at once and prompts sent one after another show as a peak of 1: what is asserted is
how many requests were in flight together, never how long the call took.
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

GATE_S = 10.0  # the longest a request waits for company; only a broken batch_prompt waits it out
HOLD_S = 0.2  # then each request stays in flight a little, so more than ``limit`` at once would show
BEAM = """
def improve_algorithm(initial_solution, utility, language_model):
    import time
    started = time.monotonic()
    answers = language_model.batch_prompt("expert", [f"variant {i}" for i in range(4)], temperature=0.7)
    return repr((answers, time.monotonic() - started))
"""


class GatedServer:
    """Answers each prompt with its own text once ``together`` requests are in flight; counts the peak."""

    def __init__(self, together: int) -> None:
        self.together = together
        self.in_flight = 0
        self.peak = 0
        self._changed = threading.Condition()
        self.server = FakeOpenAIServer(self.respond)

    def respond(self, body: dict[str, Any]) -> Reply:
        with self._changed:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.in_flight >= self.together, timeout=GATE_S)
        time.sleep(HOLD_S)
        with self._changed:
            self.in_flight -= 1
        return Reply(text=f"answer to {body['messages'][-1]['content']}")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ForkServerSandbox]:
    with ForkServerSandbox(SandboxConfig()) as box:
        yield box


def _beam(sandbox: ForkServerSandbox, limit: int) -> tuple[list[str], float, int]:
    slow = GatedServer(together=limit)
    with slow.server:
        lm = OpenAICompatibleLM("test-model", api_key="sk-test-0123456789", base_url=slow.server.base_url,
                                timeout_s=60)
        store = RunStore(":memory:")
        run_id = store.create_run("lpn", lm.name, 0, {}, [])
        broker = Broker(sandbox, ConcurrencyLimitedLM(lm, limit), RunRecorder(store, run_id),
                        Budgets(lm_calls=1, responses_per_call=4, utility_calls=1, improver_timeout_s=120))
        task = get_task("lpn")
        run = broker.improve(BEAM, task.initial_solution, TaskUtility(broker, task, "train"), "t")
    assert run.solution is not None, run.reason
    answers, elapsed = eval(run.solution)  # noqa: S307 - our own repr of plain data
    return answers, elapsed, slow.peak


def test_four_distinct_prompts_are_answered_together_in_order(sandbox: ForkServerSandbox) -> None:
    answers, _, peak = _beam(sandbox, limit=4)
    assert answers == [f"answer to variant {i}" for i in range(4)]
    assert peak == 4  # all four in flight at once (sent one after another, the peak would be 1)


def test_the_concurrency_limit_still_holds(sandbox: ForkServerSandbox) -> None:
    answers, elapsed, peak = _beam(sandbox, limit=2)
    assert answers == [f"answer to variant {i}" for i in range(4)]
    assert peak == 2  # two at a time: the limit holds, and the two go out together
    assert elapsed >= 2 * HOLD_S  # two rounds (a lower bound, which no load can break)
