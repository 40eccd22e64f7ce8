"""Utilities improvers optimise: a task's utility on one split, and the meta-utility of an improver.

The meta-utility of an improver is the mean downstream score of the solutions it returns over
``repeats`` independent runs, each with fresh budgets, each improving the task's initial solution
against the ``train`` utility; the returned solutions are then scored on the requested splits
(``train`` when an improver is being improved, ``val`` when the loop selects, ``test`` when it
reports: the loop takes val and test from separate runs, so selection cannot pick lucky test runs).
A run that fails or returns nothing scores 0 and still counts.

Run ``i`` of an estimate tagged ``T`` is tagged ``T/r{i}``: its sandbox seeds follow from that tag,
and so do its cached LM answers for a given prompt, so two improvers run on the same tags share
their random numbers wherever they do the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Protocol

from selftaught.broker import Evaluation, ImproverRun, Utility
from selftaught.config import Budgets
from selftaught.proxy import meta_description
from selftaught.records import Recorder, Split
from selftaught.stats import Estimate, mean_and_se
from selftaught.tasks.base import Task

__all__ = ["Estimate", "MetaUtility", "Runner", "TaskUtility", "mean_and_se"]


class Runner(Protocol):
    """What the meta-utility and the loop need of a broker: ``broker.Broker`` is the real one."""

    @property
    def recorder(self) -> Recorder: ...

    @property
    def budgets(self) -> Budgets: ...

    def improve(self, improver: str, initial_solution: str, utility: Utility, tag: str) -> ImproverRun:
        """Run ``improver`` once on ``initial_solution`` with fresh budgets."""
        ...

    def evaluate(self, solution: object, task: Task, split: Split, tag: str) -> Evaluation:
        """Score ``solution`` on every instance of ``split``."""
        ...


class TaskUtility:
    """``utility(solution)`` of a downstream task on one split."""

    def __init__(self, broker: Runner, task: Task, split: Split) -> None:
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
        self, broker: Runner, task: Task, repeats: int, budgets: Budgets, parent_id: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        """``parent_id``: the improver whose candidates this meta-utility scores (for the lineage);
        ``executor``: where improver runs go (default: a thread per run); its workers must not wait on it."""
        self.broker = broker
        self.task = task
        self.repeats = repeats
        self.parent_id = parent_id
        self.executor = executor
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
        runs = self.runs([(improver, i) for i in range(self.repeats)], tag, splits)
        return {split: mean_and_se([run[split] for run in runs]) for split in splits}

    def runs(self, items: Sequence[tuple[str, int]], tag: str, splits: Sequence[Split]) -> list[dict[Split, float]]:
        """For each ``(improver, i)`` of ``items``, run ``improver`` as run ``tag/r{i}`` (all concurrently)
        and score what it returns on ``splits``; in the order of ``items``."""
        if self.executor is not None:
            futures = [self.executor.submit(self._one_run, improver, f"{tag}/r{i}", splits) for improver, i in items]
            return [future.result() for future in futures]
        with ThreadPoolExecutor(max_workers=max(1, len(items)), thread_name_prefix="repeat") as pool:
            futures = [pool.submit(self._one_run, improver, f"{tag}/r{i}", splits) for improver, i in items]
            return [future.result() for future in futures]

    def _one_run(self, improver: str, tag: str, splits: Sequence[Split]) -> dict[Split, float]:
        train = TaskUtility(self.broker, self.task, "train")
        run = self.broker.improve(improver, self.task.initial_solution, train, tag)
        if run.solution is None:
            return {split: 0.0 for split in splits}
        return {split: self.broker.evaluate(run.solution, self.task, split, f"{tag}/{split}").score
                for split in splits}
