"""Reference scoring: each task scored as the paper's reference code did, validation kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selftaught.broker import Broker
from selftaught.config import Budgets, SandboxConfig
from selftaught.errors import TaskError
from selftaught.lm import ScriptedLM
from selftaught.sandbox import ForkServerSandbox
from selftaught.store import RunRecorder, RunStore
from selftaught.tasks import get_task
from selftaught.tasks.secret import SplitSecret
from tests.tasks import solutions as s

SECRET = SplitSecret(bytes(range(32)))


def _reference(spec: str) -> object:
    return get_task(spec, SECRET, "reference")


def test_lpn_one_failure_makes_the_whole_call_eps() -> None:
    task = _reference("lpn")
    combine = task.combine
    assert combine([1.0, 0.5], ["", ""]) == 0.75
    assert combine([1.0, 0.0], ["", "invalid"]) == 1e-6
    assert combine([1.0, 0.0], ["", "missing"]) == 1e-6
    # The shape check that closes the paper's broadcasting hack stays on.
    instance = task.instances("val")[0]  # type: ignore[attr-defined]
    assert task.score(instance, [[0] * 20] * 20).value == 0.0  # type: ignore[attr-defined]


def test_parity_failures_cost_only_their_instance() -> None:
    assert _reference("parity").combine([1.0, 0.0], ["", "error"]) == 0.5


def test_qap_rewards_a_larger_objective_with_a_floor() -> None:
    task = _reference("qap")
    # The reference's direction: the identity beats a good minimiser, as in the reference code.
    assert s.split_score(task, s.QAP_IDENTITY) > s.split_score(task, s.QAP_LOCAL_SEARCH.replace("150", "5"))
    assert 0.15 < s.split_score(task, s.QAP_IDENTITY) < 0.3
    assert s.split_score(task, "def algorithm(F, D, P):\n    return [0] * len(F)\n") == 0.01
    normalised = get_task("qap", SECRET)
    assert s.split_score(normalised, s.QAP_IDENTITY) < 0.2  # minimised and normalised: near random


def test_three_sat_eps_per_failure_and_none_sinks_the_call() -> None:
    task = _reference("three_sat")
    combine = task.combine
    assert combine([1.0, 0.01], ["", ""]) == pytest.approx(0.505)
    assert combine([1.0, 0.0], ["", "missing"]) == pytest.approx(0.505)  # a time-out costs its instance
    assert combine([1.0, 0.0], ["", "invalid"]) == 0.01  # None (or any rejected answer): the whole call
    instance = task.instances("val")[0]  # type: ignore[attr-defined]
    unsatisfied = [False] * (max(abs(lit) for c in instance.args[0] for lit in c) + 1)
    assert task.score(instance, unsatisfied).value in (0.01, 1.0)  # type: ignore[attr-defined]
    assert s.split_score(task, s.THREE_SAT_ALL_TRUE) == pytest.approx(0.01)
    assert s.split_score(task, s.THREE_SAT_WALKSAT) == 1.0


def test_maxcut_rules() -> None:
    combine = _reference("maxcut").combine
    assert combine([0.6, 0.0], ["", "invalid"]) == 0.0
    assert combine([0.6, 0.0], ["", "timeout"]) == 0.01
    assert combine([0.6, 0.5], ["", ""]) == pytest.approx(0.55)


def test_string_grid_is_the_same_in_both() -> None:
    assert s.split_score(_reference("string_grid"), s.STRING_GRID_ALL_A) == \
        s.split_score(get_task("string_grid", SECRET), s.STRING_GRID_ALL_A)


def test_task_files_have_no_reference_scoring() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "knapsack.py"
    with pytest.raises(TaskError, match="no reference scoring"):
        get_task(str(example), scoring="reference")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ForkServerSandbox]:
    with ForkServerSandbox(SandboxConfig()) as box:
        yield box


def test_the_broker_applies_the_whole_call_rule(sandbox: ForkServerSandbox) -> None:
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    broker = Broker(sandbox, ScriptedLM(lambda request, index: ""), RunRecorder(store, run_id),
                    Budgets(improver_timeout_s=20))
    crashes_once = s.PARITY_BRUTE_FORCE.replace("def algorithm(train_X, train_y, test_X):",
                                                "calls = []\n\ndef algorithm(train_X, train_y, test_X):\n"
                                                "    calls.append(1)\n    if len(calls) == 2:\n"
                                                "        raise ValueError('boom')")
    normalised = broker.evaluate(crashes_once, get_task("lpn", SECRET), "val", "n")
    reference = broker.evaluate(crashes_once, get_task("lpn", SECRET, "reference"), "val", "r")
    assert normalised.score == pytest.approx(19 / 20)
    assert reference.score == 1e-6


def test_the_description_says_how_reference_scoring_differs() -> None:
    assert "HIGHER is better" in _reference("qap").description  # type: ignore[attr-defined]
    assert "HIGHER" not in get_task("qap").description
    assert "whole utility is 1e-6" in _reference("lpn").description  # type: ignore[attr-defined]
    assert _reference("parity").description == get_task("parity").description  # type: ignore[attr-defined]
