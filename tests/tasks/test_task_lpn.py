"""Oracle tests for learning parity with (and without) noise."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from selftaught.errors import TaskError
from selftaught.tasks import get_task
from selftaught.tasks.common import SPLIT_SEEDS, instance_rng
from selftaught.tasks.lpn import LPNTask
from selftaught.tasks.parity import ParityTask
from tests.tasks.solutions import PARITY_BRUTE_FORCE, PARITY_GAUSS, define, run_split


@pytest.fixture(scope="module")
def lpn() -> LPNTask:
    return LPNTask()


def test_reference_parameters(lpn: LPNTask) -> None:
    assert (lpn.name, lpn.entry, lpn.call_timeout_s, lpn.array_args) == ("lpn", "algorithm", 2.0, {0, 1, 2})
    assert {s: len(lpn.instances(s)) for s in ("train", "val", "test")} == {
        "train": 20,
        "val": 20,
        "test": 50,
    }
    instance = lpn.instances("val")[0]
    train_X, train_y, test_X = (np.array(a) for a in instance.args)
    assert train_X.shape == (100, 10) and train_y.shape == (100,) and test_X.shape == (20, 10)
    assert set(np.unique(train_X)) <= {0, 1} and set(np.unique(train_y)) <= {0, 1}
    json.dumps([instance.args, instance.answer])  # plain JSON data only


def test_labels_are_parities_with_about_five_percent_noise(lpn: LPNTask) -> None:
    flips = total = 0
    secret_bits = []
    for split in ("train", "val", "test"):
        for instance in lpn.instances(split):
            train_X, train_y, test_X = (np.array(a) for a in instance.args)
            secret = np.array(instance.answer["secret"])
            secret_bits.extend(secret)
            assert ((test_X @ secret) % 2).tolist() == instance.answer["test_y"]  # clean test labels
            flips += int(((train_X @ secret) % 2 != train_y).sum())
            total += len(train_y)
    assert 0.03 < flips / total < 0.07
    assert 0.2 < np.mean(secret_bits) < 0.4


def test_splits_are_deterministic_and_distinct() -> None:
    first, second = LPNTask(), LPNTask()
    for split in ("train", "val", "test"):
        assert list(first.instances(split)) == list(second.instances(split))
    assert first.instances("val") is first.instances("val")
    assert len(set(SPLIT_SEEDS.values())) == 3
    seen = set()
    for split in ("train", "val", "test"):
        for instance in first.instances(split):
            seen.add(json.dumps(instance.args))
    assert len(seen) == 90  # no instance repeats within or across splits
    a = instance_rng("lpn", "train", 0).integers(0, 2**62)
    assert a != instance_rng("lpn", "val", 0).integers(0, 2**62)
    assert a != instance_rng("parity", "train", 0).integers(0, 2**62)
    # lazily generated: index 5 alone equals index 5 of the fully generated split
    assert LPNTask().instances("test")[5] == first.instances("test")[5]
    assert first.instances("test")[-1] == first.instances("test")[49]


def test_unknown_split_is_a_task_error(lpn: LPNTask) -> None:
    with pytest.raises(TaskError, match="no split"):
        lpn.instances("dev")  # type: ignore[arg-type]


def test_brute_force_over_all_masks_recovers_the_secret(lpn: LPNTask) -> None:
    masks = np.array(list(itertools.product([0, 1], repeat=10)))
    recovered = 0
    for instance in lpn.instances("val"):
        train_X, train_y = np.array(instance.args[0]), np.array(instance.args[1])
        mistakes = ((train_X @ masks.T) % 2 != train_y[:, None]).sum(axis=0)
        recovered += masks[int(np.argmin(mistakes))].tolist() == instance.answer["secret"]
    assert recovered >= 18


def test_known_good_solution_scores_near_one(lpn: LPNTask) -> None:
    scores = run_split(lpn, PARITY_BRUTE_FORCE, "val")
    assert np.mean(scores) > 0.95
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_known_bad_random_solution_scores_near_half(lpn: LPNTask) -> None:
    np.random.seed(0)
    scores = run_split(lpn, lpn.initial_solution, "test")
    assert 0.4 < np.mean(scores) < 0.6


def test_initial_solution_defines_the_entry(lpn: LPNTask) -> None:
    assert callable(define(lpn.initial_solution))


GOOD = [0, 1] * 10


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (GOOD, None),
        ([bool(v) for v in GOOD], None),
        ([float(v) for v in GOOD], None),
        ([[v] for v in GOOD], None),
        (np.array(GOOD), None),
        (np.array(GOOD).reshape(20, 1), None),
    ],
)
def test_accepted_prediction_forms(lpn: LPNTask, output: object, expected: None) -> None:
    instance = lpn.instances("val")[0]
    truth = instance.answer["test_y"]
    want = sum(p == t for p, t in zip(GOOD, truth, strict=True)) / 20
    score = lpn.score(instance, output if not isinstance(output, np.ndarray) else output.tolist())
    assert score.value == pytest.approx(want) and score.reason == ""


HACKS = [
    np.ones((20, 20), dtype=int).tolist(),  # the paper's broadcasting hack
    np.ones((1, 20), dtype=int).tolist(),
    np.ones((20, 2), dtype=int).tolist(),
    [[[1]]] * 20,
    1,
    0,
    1.0,
    True,
    None,
    {"predictions": GOOD},
    "01" * 10,
    "1",
    GOOD[:19],
    GOOD + [0],
    [],
    [2] * 20,
    [-1] * 20,
    [0.5] * 20,
    [math.nan] * 20,
    [math.inf] * 20,
    ["1"] * 20,
    [None] * 20,
    [[]] * 20,
    GOOD[:19] + [2],
    GOOD[:19] + [math.nan],
    [0, 1] * 9 + [[0], [1]],
    [10**100] * 20,
]


@pytest.mark.parametrize("output", HACKS, ids=range(len(HACKS)))
def test_wrong_shapes_and_values_score_zero(lpn: LPNTask, output: object) -> None:
    for instance in lpn.instances("val")[:3]:
        score = lpn.score(instance, output)
        assert score.value == 0.0 and score.reason


def test_scores_never_leave_the_unit_interval(lpn: LPNTask) -> None:
    rng = np.random.default_rng(1)
    for instance in lpn.instances("train"):
        for output in (rng.integers(0, 2, 20).tolist(), instance.answer["test_y"], HACKS[0]):
            assert 0.0 <= lpn.score(instance, output).value <= 1.0
        assert lpn.score(instance, instance.answer["test_y"]).value == 1.0


def test_description_is_grey_box(lpn: LPNTask) -> None:
    text = lpn.description
    assert "algorithm(train_X, train_y, test_X)" in text and "2 s" in text and "mean" in text
    assert "0.05" in text and "0.3" in text
    for seed in SPLIT_SEEDS.values():
        assert str(seed) not in text
    assert "seed" not in text.lower()


def test_parity_has_no_noise_and_gauss_solves_it() -> None:
    parity = get_task("parity")
    assert isinstance(parity, ParityTask) and parity.name == "parity"
    assert "no label noise" in parity.description
    for instance in parity.instances("val"):
        train_X, train_y = np.array(instance.args[0]), np.array(instance.args[1])
        assert ((train_X @ np.array(instance.answer["secret"])) % 2 == train_y).all()
    assert np.mean(run_split(parity, PARITY_GAUSS, "val")) > 0.95
    assert all(parity.score(i, np.ones((20, 20), dtype=int).tolist()).value == 0 for i in parity.instances("val"))
