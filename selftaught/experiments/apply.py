"""Apply an improver to tasks: once (``improve_once``), or as a normalised meta-utility (``score_improver``).

Every improver run improves the task's initial solution against the ``train`` utility with fresh
budgets (as in the meta-utility); what it returns is scored on held-out splits. A run that fails
or returns nothing scores 0 and still counts. Task scores are put on one scale with
``selftaught.experiments.normalise`` (raw and normalised are both reported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from selftaught.broker import Broker
from selftaught.errors import ConfigError
from selftaught.experiments.baselines import Usage
from selftaught.experiments.normalise import mean_over_tasks, normalised_gain
from selftaught.meta_utility import MetaUtility, TaskUtility
from selftaught.records import Split
from selftaught.stats import Estimate, mean_and_se
from selftaught.store import RunStore
from selftaught.tasks.base import Task

__all__ = [
    "ImproveResult",
    "ImproverScore",
    "TaskScore",
    "estimate_json",
    "improve_once",
    "initial_score",
    "measure_usage",
    "score_improver",
    "score_on_task",
]


def estimate_json(estimate: Estimate) -> dict[str, Any]:
    """An estimate as plain data: mean, se, n and the per-run scores."""
    return {"mean": estimate.mean, "se": estimate.se, "n": len(estimate.scores), "scores": list(estimate.scores)}


@dataclass(frozen=True)
class ImproveResult:
    """One improver run on a task: the solution it returned (or why none) and scores before and after."""

    task: str
    solution: str | None
    reason: str
    lm_calls: int
    utility_calls: int
    initial_val: float
    initial_test: float
    val: float
    test: float
    program_id: int | None = None  # the returned solution as stored in the run

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "solution": self.solution, "program_id": self.program_id, "reason": self.reason,
                "lm_calls": self.lm_calls,
                "utility_calls": self.utility_calls, "initial": {"val": self.initial_val, "test": self.initial_test},
                "improved": {"val": self.val, "test": self.test}}


def improve_once(broker: Broker, task: Task, improver_source: str, tag: str) -> ImproveResult:
    """Run the improver once on the task's initial solution (``train`` utility); score both on val and test."""
    run = broker.improve(improver_source, task.initial_solution, TaskUtility(broker, task, "train"), tag)
    before = {split: broker.evaluate(task.initial_solution, task, split, f"{tag}/initial/{split}").score
              for split in ("val", "test")}
    after, program_id = {"val": 0.0, "test": 0.0}, None
    if run.solution is None:
        broker.recorder.event("improver_failed", f"{tag}: {run.reason}")
    else:
        for split in ("val", "test"):
            scored = broker.evaluate(run.solution, task, split, f"{tag}/{split}")
            after[split], program_id = scored.score, scored.program_id
    return ImproveResult(task.name, run.solution, run.reason, run.lm_calls, run.utility_calls, before["val"],
                         before["test"], after["val"], after["test"], program_id)


@dataclass(frozen=True)
class TaskScore:
    """An improver on one task: u(s), the raw scores of its runs, and the same normalised (per run)."""

    task: str
    initial: Estimate
    raw: Estimate
    normalised: Estimate

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "initial": estimate_json(self.initial), "raw": estimate_json(self.raw),
                "normalised": estimate_json(self.normalised)}


@dataclass(frozen=True)
class ImproverScore:
    """An improver's meta-utility over tasks: per task, and the mean of the normalised task scores."""

    improver: str
    split: str
    tasks: tuple[TaskScore, ...]
    mean_normalised: float
    se_normalised: float | None  # None when a task was scored by a single run
    mean_raw: float

    def to_json(self) -> dict[str, Any]:
        return {"improver": self.improver, "split": self.split, "tasks": [t.to_json() for t in self.tasks],
                "mean_normalised": self.mean_normalised, "se_normalised": self.se_normalised,
                "mean_raw": self.mean_raw}


def initial_score(broker: Broker, task: Task, repeats: int, tag: str, split: Split = "test") -> Estimate:
    """u(s): the task's initial solution scored ``repeats`` times (seeded apart, for randomised solutions)."""
    return _parallel(repeats, lambda i: broker.evaluate(task.initial_solution, task, split,
                                                        f"{tag}/initial/r{i}/{split}").score)


def score_on_task(
    broker: Broker, task: Task, improver_source: str, repeats: int, tag: str, split: Split, initial: Estimate,
) -> TaskScore:
    """The improver's ``repeats`` runs on ``task`` scored on ``split``, raw and normalised against ``initial``."""
    meta = MetaUtility(broker, task, repeats, broker.budgets)
    raw = meta.estimate(improver_source, tag, (split,))[split]
    normalised = mean_and_se([normalised_gain(score, initial.mean) for score in raw.scores])
    return TaskScore(task.name, initial, raw, normalised)


def score_improver(
    broker: Broker,
    tasks: Sequence[Task],
    improver_source: str,
    repeats: int,
    tag: str,
    *,
    split: Split = "test",
    name: str = "improver",
    initials: dict[str, Estimate] | None = None,
) -> ImproverScore:
    """The improver's normalised meta-utility over ``tasks`` (``initials``: u(s) per task name, if known)."""
    if not tasks or repeats < 1:
        raise ConfigError(f"scoring an improver needs at least one task and one repeat, not {len(tasks)} and {repeats}")
    rows = []
    for task in tasks:
        initial = (initials or {}).get(task.name) or initial_score(broker, task, repeats, f"{tag}/{task.name}", split)
        rows.append(score_on_task(broker, task, improver_source, repeats, f"{tag}/{task.name}", split, initial))
    mean, se = mean_over_tasks([r.normalised.mean for r in rows], [r.normalised.se for r in rows])
    return ImproverScore(name, split, tuple(rows), mean, se, sum(r.raw.mean for r in rows) / len(rows))


def measure_usage(
    broker: Broker, store: RunStore, run_id: str, task: Task, improver_source: str, runs: int, tag: str,
) -> Usage:
    """Run the improver ``runs`` times on ``task`` and return what it spent per run, on average.

    LM samples are counted from the LM calls ``broker`` recorded in ``store`` under ``run_id``.
    """
    if runs < 1:
        raise ConfigError(f"measuring usage needs at least one run, not {runs}")

    def one(index: int) -> tuple[int, int, int]:
        run_tag = f"{tag}/r{index}"
        run = broker.improve(improver_source, task.initial_solution, TaskUtility(broker, task, "train"), run_tag)
        _, samples = store.lm_samples(run_id, f"{run_tag}/c")
        return run.lm_calls, samples, run.utility_calls

    with ThreadPoolExecutor(max_workers=runs, thread_name_prefix="usage") as pool:
        spent = list(pool.map(one, range(runs)))
    return Usage(*(sum(column) / runs for column in zip(*spent, strict=True)))


def _parallel(count: int, work: Callable[[int], float]) -> Estimate:
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="repeat") as pool:
        return mean_and_se(list(pool.map(work, range(count))))
