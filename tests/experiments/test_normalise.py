"""Normalised gains: bounded, zero at the initial score, exact at the ends, and the mean over tasks."""

from __future__ import annotations

import math

import pytest

from selftaught.experiments import mean_over_tasks, normalised_gain


@pytest.mark.parametrize(
    ("score", "initial", "expected"),
    [
        (0.5, 0.5, 0.0),  # no better than u(s)
        (1.0, 0.5, 1.0),  # solved
        (0.75, 0.5, 0.5),  # half the headroom won
        (0.0, 0.5, -1.0),  # everything lost
        (0.25, 0.5, -0.5),  # half the baseline lost
        (0.2, 0.0, 0.2),  # from nothing: the gain is the score
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 0.0),  # no headroom, nothing lost
        (0.9, 1.0, -0.1),
        (0.567, 0.439, (0.567 - 0.439) / (1 - 0.439)),  # Table 1, string grid
    ],
)
def test_gain_values(score: float, initial: float, expected: float) -> None:
    assert normalised_gain(score, initial) == pytest.approx(expected)


def test_gain_is_bounded_and_monotone_in_the_score() -> None:
    grid = [i / 20 for i in range(21)]
    for initial in grid:
        gains = [normalised_gain(score, initial) for score in grid]
        assert all(-1.0 <= g <= 1.0 for g in gains)
        assert gains == sorted(gains)
    # The one-sided form would give -9 here; tasks near the ceiling cannot swamp a mean.
    assert normalised_gain(0.0, 0.9) == -1.0


def test_out_of_range_scores_are_clipped_and_non_finite_ones_rejected() -> None:
    assert normalised_gain(1.7, 0.5) == 1.0
    assert normalised_gain(-0.2, 0.5) == -1.0
    with pytest.raises(ValueError):
        normalised_gain(math.nan, 0.5)


def test_mean_over_tasks_and_its_standard_error() -> None:
    mean, se = mean_over_tasks([0.2, 0.4, 0.0], [0.03, 0.04, 0.0])
    assert mean == pytest.approx(0.2)
    assert se == pytest.approx(0.05 / 3)
    with pytest.raises(ValueError):
        mean_over_tasks([], [])
