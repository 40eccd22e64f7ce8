"""A real broker for experiment tests: the fork-server sandbox, an in-memory store, a ScriptedLM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from selftaught.broker import Broker
from selftaught.config import Budgets, SandboxConfig
from selftaught.lm import ScriptedLM
from selftaught.records import LMRequest
from selftaught.sandbox import ForkServerSandbox
from selftaught.store import RunRecorder, RunStore
from tests.programs.lpn import GOOD_HINT, GOOD_SOLUTION, MAJORITY_SOLUTION, fenced

SMALL = Budgets(lm_calls=3, responses_per_call=2, utility_calls=7, improver_timeout_s=30)


@dataclass
class Wired:
    broker: Broker
    store: RunStore
    run_id: str
    lm: ScriptedLM


@pytest.fixture(scope="session")
def sandbox() -> Iterator[ForkServerSandbox]:
    with ForkServerSandbox(SandboxConfig()) as box:
        yield box


@pytest.fixture
def wire(sandbox: ForkServerSandbox) -> Callable[..., Wired]:
    """``wire(script, budgets)``: a broker over ``sandbox`` answering LM calls with ``script``."""
    def make(script: Callable[[LMRequest, int], str], budgets: Budgets = SMALL, seed: int = 0) -> Wired:
        lm = ScriptedLM(script)
        store = RunStore(":memory:")
        run_id = store.create_run("lpn", lm.name, seed, {}, [], "test")
        return Wired(Broker(sandbox, lm, RunRecorder(store, run_id), budgets, max_tokens=64, seed=seed),
                     store, run_id, lm)

    return make


def distinct_majority(request: LMRequest, index: int) -> str:
    """A mediocre LPN solution, distinct per call site and sample (so no two candidates are equal)."""
    return fenced(f"# {request.tag} sample {index}\n{MAJORITY_SOLUTION}")


def good_when_hinted(request: LMRequest, index: int) -> str:
    """The good LPN solution when the prompt holds the hint, else a distinct mediocre one."""
    return fenced(GOOD_SOLUTION) if GOOD_HINT in request.user else distinct_majority(request, index)
