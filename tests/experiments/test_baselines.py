"""Baseline improvers run through a real broker and sandbox and stay within their budgets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from selftaught.experiments import (
    COT_IMPROVER,
    GREEDY_IMPROVER,
    Usage,
    baseline_source,
    measure_usage,
    random_sampling_improver,
)
from selftaught.improver import SEED_IMPROVER
from selftaught.meta_utility import TaskUtility
from selftaught.records import LMRequest
from selftaught.tasks import get_task
from tests.experiments.conftest import SMALL, Wired, distinct_majority, good_when_hinted
from tests.programs.lpn import GOOD_HINT, GOOD_SOLUTION, HOSTILE_SOLUTIONS, fenced

pytestmark = pytest.mark.slow
LPN = get_task("lpn")


def _improve(wired: Wired, source: str, tag: str = "b") -> tuple[str | None, int, int]:
    run = wired.broker.improve(source, LPN.initial_solution, TaskUtility(wired.broker, LPN, "train"), tag)
    assert run.reason == "", run.reason
    return run.solution, run.lm_calls, run.utility_calls


def test_chain_of_thought_is_one_call_one_sample_and_no_utility_calls(wire: Callable[..., Wired]) -> None:
    wired = wire(distinct_majority)
    solution, lm_calls, utility_calls = _improve(wired, COT_IMPROVER)
    assert (lm_calls, utility_calls) == (1, 0)
    [request] = wired.lm.history
    assert request.n == 1 and "step by step" in request.user
    assert solution is not None and "def algorithm" in solution


def test_greedy_spends_every_call_and_keeps_the_incumbent_when_nothing_beats_it(wire: Callable[..., Wired]) -> None:
    crash = HOSTILE_SOLUTIONS["crash"]
    wired = wire(lambda request, index: fenced(f"# {request.tag} {index}\n{crash}"))
    solution, lm_calls, utility_calls = _improve(wired, GREEDY_IMPROVER)
    assert solution == LPN.initial_solution  # every candidate scored 0: the incumbent stays
    assert lm_calls == SMALL.lm_calls
    assert utility_calls == 1 + SMALL.lm_calls * SMALL.responses_per_call == SMALL.utility_calls
    assert all(r.n <= SMALL.responses_per_call for r in wired.lm.history)


def test_greedy_improves_the_current_best(wire: Callable[..., Wired]) -> None:
    def script(request: LMRequest, index: int) -> str:
        if GOOD_HINT in request.user:  # asked to improve the good solution: offer something worse
            return distinct_majority(request, index)
        return fenced(f"# {GOOD_HINT}\n{GOOD_SOLUTION}") if index == 0 else distinct_majority(request, index)

    wired = wire(script)
    solution, _, _ = _improve(wired, GREEDY_IMPROVER)
    assert solution is not None and GOOD_SOLUTION.strip() in solution
    prompts = [r.user for r in wired.lm.history]
    assert GOOD_HINT not in prompts[0] and all(GOOD_HINT in p for p in prompts[1:])


def test_random_sampling_with_full_budgets_spends_them_all(wire: Callable[..., Wired]) -> None:
    wired = wire(good_when_hinted)
    solution, lm_calls, utility_calls = _improve(wired, baseline_source("random"))
    samples = SMALL.lm_calls * SMALL.responses_per_call
    assert lm_calls == SMALL.lm_calls and sum(r.n for r in wired.lm.history) == samples
    assert utility_calls == samples + 1 == SMALL.utility_calls  # every sample, then the initial solution
    # Every prompt is the initial prompt: no feedback from one call to the next.
    assert len({r.user for r in wired.lm.history}) == 1
    assert solution is not None and "def algorithm" in solution


def test_random_sampling_matched_to_the_seed_spends_what_the_seed_spends(wire: Callable[..., Wired]) -> None:
    wired = wire(distinct_majority)
    usage = measure_usage(wired.broker, wired.store, wired.run_id, LPN, SEED_IMPROVER, 2, "usage")
    # The seed: one batched call of min(responses per call, utility budget) samples, each scored.
    assert usage == Usage(1.0, 2.0, 2.0)
    before = len(wired.lm.history)
    _, lm_calls, utility_calls = _improve(wired, random_sampling_improver(usage), "matched")
    matched = wired.lm.history[before:]
    assert (lm_calls, sum(r.n for r in matched), utility_calls) == (1, 2, 2)


def test_fractional_usage_is_rounded_up_and_bad_usage_rejected() -> None:
    source = random_sampling_improver(Usage(1.2, 5.5, 0.0))
    assert "LM_CALLS = 2\nSAMPLES = 6\nUTILITY_CALLS = 0\n" in source
    with pytest.raises(Exception, match="non-negative"):
        random_sampling_improver(Usage(-1, 1, 1))
    with pytest.raises(Exception, match="unknown baseline"):
        baseline_source("beam")
