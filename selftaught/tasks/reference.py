"""Scoring as the paper's reference code did (``--scoring reference``), beside the default.

The default scoring is fixed and normalised: every task scores in [0, 1] with one direction, a
failure costs only its instance, and there are no floors. The paper's reference scorers differ per
task in scale, direction and floors, and some let one failure decide a whole call (each task
module's docstring states both definitions). ``ReferenceScoring`` wraps a built-in task so that
the broker scores it the reference way: per instance with the task's ``reference_score``, then the
call as a whole with its ``reference_combine``. The output validation that blocks the paper's shape
hack stays on in both modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from selftaught.records import Instance, Score, Split
from selftaught.tasks.common import SeededTask

__all__ = ["SCORINGS", "ReferenceScoring", "Scoring"]

Scoring = Literal["normalised", "reference"]
SCORINGS: tuple[Scoring, ...] = ("normalised", "reference")


class ReferenceScoring:
    """``task`` with the reference scorer; implements the ``Task`` protocol and ``combine``."""

    scoring: Scoring = "reference"

    def __init__(self, task: SeededTask) -> None:
        self.task = task
        self.name = task.name
        self.entry = task.entry
        note = task.reference_note
        self.description = task.description + (f"\nThis utility scores as the STOP paper's reference code did, which "
                                                f"changes the sketch above: {note}\n" if note else "")
        self.initial_solution = task.initial_solution
        self.call_timeout_s = task.call_timeout_s
        self.array_args = task.array_args
        self.spec = task.spec
        self.params = task.params
        self.secret = task.secret

    def instances(self, split: Split) -> Sequence[Instance]:
        """The wrapped task's instances."""
        return self.task.instances(split)

    def score(self, instance: Instance, output: Any) -> Score:
        """One instance on the reference scale."""
        return self.task.reference_score(instance, output)

    def combine(self, scores: Sequence[float], failures: Sequence[str]) -> float:
        """The score of a whole call (the reference's floors and all-or-nothing rules)."""
        return self.task.reference_combine(scores, failures)
