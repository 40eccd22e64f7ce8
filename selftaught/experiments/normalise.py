"""Scores of different tasks on one scale: the headroom-normalised gain over the initial solution.

Raw task scores are not comparable (the paper summed them): a 3-SAT solver that lifts 0% to 20%
and a string-grid solver that lifts 44% to 56% both gained, by very different raw amounts and
from very different starting points. Each task score is therefore expressed relative to u(s), the
task's initial solution scored on the same split:

    gain(score, u) = (score - u) / (1 - u)    when score >= u   (share of the headroom won)
                   = (score - u) / u          when score <  u   (share of the baseline lost)

so that +1 means the task was solved perfectly, 0 means no better than the initial solution, and
-1 means everything the initial solution had was lost (a score of 0). Bounded in [-1, 1] on both
sides, so no single task can dominate a mean over tasks (the one-sided form (score - u) / (1 - u)
would reach -9 on a task with u = 0.9). When u = 1 there is no headroom: a score of 1 gains 0.

Each improver run's score is normalised against the *mean* u(s) of the task; the uncertainty of
u(s) itself is not propagated (it is reported beside it). Across tasks the normalised means are
averaged with equal weight, and the standard error of that mean is sqrt(sum se_t^2) / n_tasks
(tasks are scored by independent runs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["mean_over_tasks", "normalised_gain"]


def normalised_gain(score: float, initial: float) -> float:
    """The gain of ``score`` over the initial solution's ``initial``, in [-1, 1] (see the module docstring)."""
    score, initial = _unit(score), _unit(initial)
    if score >= initial:
        headroom = 1.0 - initial
        return 0.0 if headroom <= 0.0 else (score - initial) / headroom
    return (score - initial) / initial  # initial > score >= 0 here, so no division by zero


def mean_over_tasks(means: Sequence[float], ses: Sequence[float | None]) -> tuple[float, float | None]:
    """Equal-weight mean of per-task means and its standard error (independent tasks).

    The standard error is None when any task's is (a task scored by a single run).
    """
    if not means or len(means) != len(ses):
        raise ValueError("need one standard error per task mean, and at least one task")
    mean = sum(means) / len(means)
    if any(se is None for se in ses):
        return mean, None
    return mean, math.sqrt(sum(se * se for se in ses if se is not None)) / len(means)


def _unit(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"a score must be a finite number, not {value!r}")
    return min(max(value, 0.0), 1.0)
