"""Oracle scores of every built-in task and preset: the initial solution, a known-good and a weak one.

The numbers are the val split under a fixed test secret, both scorings, scored in-process the
way the broker scores sandbox output (``solutions.split_score``); the README's tasks table lists
them. A change to a generator, a scorer or an initial solution shows up here first.
"""

from __future__ import annotations

import pytest

from selftaught.tasks import get_task, list_tasks
from selftaught.tasks.secret import SplitSecret
from tests.tasks import solutions as s

pytestmark = pytest.mark.slow

SECRET = SplitSecret(bytes(range(32)))

# spec: (known-good solution, known-weak solution)
CASES: dict[str, tuple[str, str]] = {
    "lpn": (s.PARITY_BRUTE_FORCE, s.PARITY_MAJORITY),
    "lpn:preset=hard": (s.PARITY_ISD, s.PARITY_MAJORITY),
    "parity": (s.PARITY_GAUSS, s.PARITY_MAJORITY),
    "parity:preset=hard": (s.PARITY_GAUSS, s.PARITY_MAJORITY),
    "string_grid": (s.STRING_GRID_BITSET, s.STRING_GRID_ALL_A),
    "string_grid:preset=hard": (s.STRING_GRID_BITSET, s.STRING_GRID_ALL_A),
    "qap": (s.QAP_LOCAL_SEARCH, s.QAP_IDENTITY),
    "qap:preset=hard": (s.QAP_LOCAL_SEARCH.replace("range(150)", "range(3)"), s.QAP_IDENTITY),
    "three_sat": (s.THREE_SAT_WALKSAT, s.THREE_SAT_ALL_TRUE),
    "three_sat:preset=hard": (s.THREE_SAT_WALKSAT, s.THREE_SAT_ALL_TRUE),
    "maxcut": (s.MAXCUT_MULTI_START, s.MAXCUT_ALTERNATE),
    "maxcut:preset=hard": (s.MAXCUT_MULTI_START, s.MAXCUT_ALTERNATE),
}

# (spec, scoring): (initial solution, known-good, known-weak) on val
PINNED: dict[tuple[str, str], tuple[float, float, float]] = {
    ("lpn", "normalised"): (0.513, 1.000, 0.467),
    ("lpn", "reference"): (0.513, 1.000, 0.467),
    ("lpn:preset=hard", "normalised"): (0.507, 1.000, 0.497),
    ("lpn:preset=hard", "reference"): (0.507, 1.000, 0.497),
    ("parity", "normalised"): (0.523, 1.000, 0.463),
    ("parity", "reference"): (0.523, 1.000, 0.463),
    ("parity:preset=hard", "normalised"): (0.515, 1.000, 0.510),
    ("parity:preset=hard", "reference"): (0.515, 1.000, 0.510),
    ("string_grid", "normalised"): (0.420, 1.000, 0.424),
    ("string_grid", "reference"): (0.420, 1.000, 0.424),
    ("string_grid:preset=hard", "normalised"): (0.416, 1.000, 0.418),
    ("string_grid:preset=hard", "reference"): (0.416, 1.000, 0.418),
    ("qap", "normalised"): (0.796, 0.992, 0.061),
    ("qap", "reference"): (0.207, 0.198, 0.238),
    ("qap:preset=hard", "normalised"): (0.891, 0.962, 0.069),
    ("qap:preset=hard", "reference"): (0.221, 0.218, 0.244),
    ("three_sat", "normalised"): (0.350, 1.000, 0.000),
    ("three_sat", "reference"): (0.010, 1.000, 0.010),
    ("three_sat:preset=hard", "normalised"): (0.000, 1.000, 0.000),
    ("three_sat:preset=hard", "reference"): (0.010, 1.000, 0.010),
    ("maxcut", "normalised"): (0.573, 0.595, 0.504),
    ("maxcut", "reference"): (0.573, 0.595, 0.504),
    ("maxcut:preset=hard", "normalised"): (0.762, 0.821, 0.504),
    ("maxcut:preset=hard", "reference"): (0.762, 0.821, 0.504),
}


def test_every_task_and_preset_is_pinned() -> None:
    builtins = {"lpn", "parity", "string_grid", "qap", "three_sat", "maxcut"}
    assert builtins <= set(list_tasks())
    assert {spec.split(":")[0] for spec in CASES} == builtins
    for name in builtins:
        assert {spec for spec in CASES if spec.split(":")[0] == name} == {name, f"{name}:preset=hard"}
    assert set(PINNED) == {(spec, scoring) for spec in CASES for scoring in ("normalised", "reference")}


@pytest.mark.parametrize("spec, scoring", sorted(PINNED))
def test_oracle_scores(spec: str, scoring: str) -> None:
    task = get_task(spec, SECRET, scoring)  # type: ignore[arg-type]
    good, weak = CASES[spec]
    initial, good_score, weak_score = PINNED[(spec, scoring)]
    assert s.split_score(task, task.initial_solution) == pytest.approx(initial, abs=0.02)
    assert s.split_score(task, good) == pytest.approx(good_score, abs=0.02)
    assert s.split_score(task, weak) == pytest.approx(weak_score, abs=0.02)
