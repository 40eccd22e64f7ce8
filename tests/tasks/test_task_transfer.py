"""Oracle tests for the transfer tasks: string grid, QAP, 3-SAT, Max-Cut."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from selftaught.records import Instance
from selftaught.tasks import Task, get_task
from selftaught.tasks.common import SPLIT_SEEDS
from selftaught.tasks.maxcut import cut_weight, maxcut_instance
from selftaught.tasks.qap import qap_cost, qap_instance, random_cost, reference_cost
from selftaught.tasks.string_grid import grid_dist, string_grid_instance
from selftaught.tasks.three_sat import satisfies, three_sat_instance
from tests.tasks.solutions import (
    MAXCUT_LOCAL_SEARCH,
    QAP_LOCAL_SEARCH,
    STRING_GRID_DP,
    THREE_SAT_DPLL,
    define,
    run_split,
)

TRANSFER = ["string_grid", "qap", "three_sat", "maxcut"]
JUNK: list[object] = [None, 1, 1.5, math.nan, "x", {"a": 1}, [], [None], [[1, 2]], True]


@pytest.mark.parametrize("name", TRANSFER)
def test_common_contract(name: str) -> None:
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name and task.entry == "algorithm"
    assert callable(define(task.initial_solution))
    assert 0 < task.call_timeout_s <= 2
    first = task.instances("train")[0]
    json.dumps([first.args, first.answer], allow_nan=False)
    assert first == type(task)().instances("train")[0]  # type: ignore[operator]
    assert first != task.instances("val")[0]
    for seed in SPLIT_SEEDS.values():
        assert str(seed) not in task.description
    assert "algorithm(" in task.description
    for output in JUNK:
        score = task.score(first, output)
        assert score.value == 0.0 and score.reason, output


# --- string grid ---------------------------------------------------------------------------------


def test_string_grid_brute_force_agrees_with_dp() -> None:
    solve = define(STRING_GRID_DP)
    rng = np.random.default_rng(0)
    for _ in range(60):
        instance = string_grid_instance(rng, 1, 8)
        t, dist = instance.args
        reachable = {grid_dist("".join(s), t) for s in itertools.product("AB", repeat=len(t))}
        assert dist in reachable and max(reachable) <= 3 * len(t) - 2
        for target in reachable:
            assert grid_dist(solve(t, target), t) == target


def test_string_grid_scores() -> None:
    task = get_task("string_grid")
    assert np.mean(run_split(task, STRING_GRID_DP)) == 1.0
    initial = run_split(task, task.initial_solution, "test")
    assert 0.35 < np.mean(initial) < 0.55  # the paper: 43.9%
    instance = Instance(args=("AB", 4), answer=None)
    assert task.score(instance, "BA").value == 1.0  # Hamming 2 + 1 + 1 transitions
    assert task.score(instance, "AB").value == pytest.approx(0.5 - 2 / 12)  # distance 2, off by 2
    for bad in ("A", "ABA", "AC", "ab", ["A", "B"]):
        assert task.score(instance, bad).value == 0.0


# --- QAP -----------------------------------------------------------------------------------------


def test_qap_brute_force_on_tiny_instances() -> None:
    rng = np.random.default_rng(0)
    for _ in range(4):
        F, D, P = (rng.random((6, 6)) for _ in range(3))
        costs = [qap_cost(F, D, P, np.array(p)) for p in itertools.permutations(range(6))]
        assert random_cost(F, D, P) == pytest.approx(np.mean(costs))
        assert reference_cost(F, D, P, rng) == pytest.approx(min(costs))
    instance = qap_instance(np.random.default_rng(1), n=6)
    assert instance.answer["reference_cost"] < instance.answer["random_cost"]


def test_qap_minimises_and_normalises() -> None:
    task = get_task("qap")
    good = run_split(task, QAP_LOCAL_SEARCH, "train", limit=3)
    assert min(good) > 0.9
    # the opposite direction (maximising the cost) scores 0: one consistent direction
    maximise = QAP_LOCAL_SEARCH.replace(
        "costs(perms):\n", "costs(perms):\n        return -_costs(perms)\n\n    def _costs(perms):\n"
    )
    assert run_split(task, maximise, "train", limit=2) == [0.0, 0.0]
    initial = run_split(task, task.initial_solution, "train", limit=4)
    assert 0.3 < np.mean(initial) < 1.0
    identity = [task.score(i, list(range(15))).value for i in task.instances("train")]
    assert np.mean(identity) < 0.5
    instance = task.instances("train")[0]
    for bad in ([0] * 15, list(range(14)), list(range(1, 16)), [float(i) + 0.5 for i in range(15)]):
        assert task.score(instance, bad).value == 0.0
    assert task.score(instance, [float(i) for i in range(15)]).value == task.score(instance, list(range(15))).value


# --- 3-SAT ---------------------------------------------------------------------------------------


def test_three_sat_brute_force_on_tiny_instances() -> None:
    task = get_task("three_sat")
    rng = np.random.default_rng(0)
    for _ in range(10):
        instance = three_sat_instance(rng, 5, 8)
        (formula,) = instance.args
        n = max(abs(lit) for clause in formula for lit in clause)
        assert len(formula) % 4 == 0 and all(len(set(map(abs, clause))) == 3 for clause in formula)
        solutions = 0
        for bits in itertools.product([0, 1], repeat=n):
            ok = satisfies(formula, [0, *bits])
            solutions += ok
            assert task.score(instance, [None, *map(bool, bits)]).value == float(ok)
        assert solutions >= 1


def test_three_sat_scores() -> None:
    task = get_task("three_sat")
    for instance in task.instances("val"):
        assert satisfies(instance.args[0], instance.answer["hidden"])
        assert task.score(instance, instance.answer["hidden"]).value == 1.0
    assert np.mean(run_split(task, THREE_SAT_DPLL)) == 1.0
    all_false = [task.score(i, [False] * len(i.answer["hidden"])).value for i in task.instances("val")]
    assert np.mean(all_false) < 0.2
    instance = task.instances("val")[0]
    hidden = instance.answer["hidden"]
    assert task.score(instance, None).value == 0.0  # scores this instance 0, never raises
    assert task.score(instance, hidden[1:]).value == 0.0  # 0-based: wrong length
    assert task.score(instance, [*hidden, 1]).value == 0.0
    assert task.score(instance, [hidden[0], *[2] * (len(hidden) - 1)]).value == 0.0


# --- Max-Cut -------------------------------------------------------------------------------------


def test_maxcut_brute_force_on_tiny_graphs() -> None:
    task = get_task("maxcut")
    search = define(MAXCUT_LOCAL_SEARCH)
    rng = np.random.default_rng(0)
    for _ in range(5):
        instance = maxcut_instance(rng, 8, 10)
        w = np.array(instance.args[0])
        assert (w == w.T).all() and (np.diag(w) == 0).all() and w.max() <= 10
        n = len(w)
        best = 0.0
        for bits in itertools.product([0, 1], repeat=n - 1):
            labels = [0, *bits]
            brute = sum(w[i, j] for i in range(n) for j in range(i + 1, n) if labels[i] != labels[j])
            assert cut_weight(w, labels) == brute
            best = max(best, brute)
        assert task.score(instance, search(w)).value >= 0.9 * best / instance.answer["total_weight"]


def test_maxcut_scores() -> None:
    task = get_task("maxcut")
    good = run_split(task, MAXCUT_LOCAL_SEARCH)
    assert 0.55 < np.mean(good) <= 1.0
    instance = task.instances("val")[0]
    n = len(instance.args[0])
    assert task.score(instance, [0] * n).value == 0.0  # nothing cut
    random_labels = np.random.default_rng(0).integers(0, 2, n).tolist()
    value = task.score(instance, random_labels).value
    assert 0.45 < value < 0.55
    assert task.score(instance, [2 * x - 1 for x in random_labels]).value == value  # -1/1 labels
    assert task.score(instance, [bool(x) for x in random_labels]).value == value
    for bad in ([0, 1, -1] * n, [0, 2] * (n // 2), random_labels[:-1], [random_labels]):
        assert task.score(instance, bad[:n] if len(bad) > n else bad).value == 0.0
