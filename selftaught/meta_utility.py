"""Utilities improvers optimise: a task's utility on one split, and the meta-utility of an improver.

The meta-utility of an improver is the mean downstream score of the solutions it returns over
``repeats`` independent runs, each with fresh budgets, each improving the task's initial solution
against the ``train`` utility; the returned solutions are then scored on the requested splits
(``train`` when an improver is being improved, ``val``/``test`` when the loop selects and reports).
A run that fails or returns nothing scores 0 and still counts.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from selftaught.broker import Broker
from selftaught.config import Budgets
from selftaught.improver import meta_description
from selftaught.records import Split
from selftaught.tasks.base import Task

__all__ = ["Estimate", "MetaUtility", "TaskUtility", "mean_and_se"]


@dataclass(frozen=True)
class Estimate:
    """A mean over independent runs with its standard error."""

    mean: float
    se: float
    scores: tuple[float, ...]


def mean_and_se(scores: Sequence[float]) -> Estimate:
    """Mean and standard error of the mean (0 for a single score)."""
    mean = sum(scores) / len(scores)
    se = statistics.stdev(scores) / math.sqrt(len(scores)) if len(scores) > 1 else 0.0
    return Estimate(mean, se, tuple(scores))


class TaskUtility:
    """``utility(solution)`` of a downstream task on one split."""

    def __init__(self, broker: Broker, task: Task, split: Split) -> None:
        self.broker = broker
        self.task = task
        self.split = split

    @property
    def description(self) -> str:
        return self.task.description

    def __call__(self, solution: str, tag: str) -> float:
        return self.broker.evaluate(solution, self.task, self.split, tag).score


class MetaUtility:
    """û(improver): mean downstream score over ``repeats`` improver runs (the ``train`` split)."""

    runs_improvers = True  # each call is improver runs: an improver of improvers gets time for them

    def __init__(
        self, broker: Broker, task: Task, repeats: int, budgets: Budgets, parent_id: int | None = None
    ) -> None:
        """``parent_id``: the improver whose candidates this meta-utility scores (for the lineage)."""
        self.broker = broker
        self.task = task
        self.repeats = repeats
        self.parent_id = parent_id
        self._description = meta_description(repeats, budgets)

    @property
    def description(self) -> str:
        return self._description

    def __call__(self, solution: str, tag: str) -> float:
        """The train meta-utility of a candidate improver, recorded as an evaluation of it."""
        if not isinstance(solution, str):  # an improver of improvers may pass anything
            return 0.0
        started = time.monotonic()
        program_id = self.broker.recorder.program("improver", solution, self.parent_id)
        estimate = self.estimate(solution, tag, ("train",))["train"]
        failed = sum(1 for score in estimate.scores if score == 0.0)
        self.broker.recorder.evaluation(program_id, tag, f"meta:{self.task.name}", "train", estimate.mean,
                                        self.repeats, failed, "", time.monotonic() - started)
        return estimate.mean

    def estimate(self, improver: str, tag: str, splits: Sequence[Split]) -> dict[Split, Estimate]:
        """Run ``improver`` ``repeats`` times and score what it returns on each of ``splits``."""
        with ThreadPoolExecutor(max_workers=self.repeats, thread_name_prefix="repeat") as pool:
            futures = [pool.submit(self._one_run, improver, f"{tag}/r{i}", splits) for i in range(self.repeats)]
            runs = [future.result() for future in futures]
        return {split: mean_and_se([run[split] for run in runs]) for split in splits}

    def _one_run(self, improver: str, tag: str, splits: Sequence[Split]) -> dict[Split, float]:
        train = TaskUtility(self.broker, self.task, "train")
        run = self.broker.improve(improver, self.task.initial_solution, train, tag)
        if run.solution is None:
            return {split: 0.0 for split in splits}
        return {split: self.broker.evaluate(run.solution, self.task, split, f"{tag}/{split}").score
                for split in splits}
