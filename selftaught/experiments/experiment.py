"""Several independent STOP runs of one setting, aggregated per iteration with standard errors.

The paper ran 5 GPT-4 runs (25 with weaker models) and plotted the mean test meta-utility per
iteration. ``aggregate`` takes the steps of any number of runs (``app.RunSummary`` objects, or
rows read back with ``from_store``) and reports, per step t and across runs:

- ``incumbent``: the test meta-utility of the improver in force after step t (the candidate if it
  was adopted, else the previous incumbent): what a run stopped at t would hand back;
- ``candidate``: the test meta-utility of the candidate proposed at t (runs without one left out);
- how many runs adopted their candidate at t.

Each run's test numbers come from improver runs its acceptance rule never saw (``stop``), so
neither the per-step means nor the gains are inflated by selection: in a null experiment, with
every improver equally good, they stay flat (``tests/test_estimates.py``).

Standard errors are across runs (each run's own estimate counts as one observation). Runs that
stopped early contribute to the steps they finished. ``gains`` compares each run's last
incumbent with its seed, and counts the runs that gained at least ``threshold`` (the paper: 3%).

``experiment`` runs ``run_one(seed)`` for each seed, one after another, and aggregates; the CLI
gives it a function that starts a STOP run (the app layer does that, this layer cannot).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from selftaught.records import Iteration
from selftaught.stats import Estimate, mean_and_se
from selftaught.store import RunStore

__all__ = ["ExperimentTable", "RunSteps", "StepRow", "StoredRun", "aggregate", "experiment", "from_store"]


class RunSteps(Protocol):
    """A run's id and its steps (``app.RunSummary`` is one)."""

    @property
    def run_id(self) -> str: ...

    @property
    def iterations(self) -> Sequence[Iteration]: ...


@dataclass(frozen=True)
class StoredRun:
    """A run's steps as read from the store."""

    run_id: str
    iterations: tuple[Iteration, ...]


@dataclass(frozen=True)
class StepRow:
    """Step t across runs: incumbent and candidate test meta-utility, and how many runs adopted."""

    t: int
    runs: int
    incumbent: Estimate | None
    candidate: Estimate | None
    adopted: int

    def to_json(self) -> dict[str, Any]:
        def plain(e: Estimate | None) -> dict[str, Any] | None:
            return None if e is None else {"mean": e.mean, "se": e.se, "n": len(e.scores)}

        return {"t": self.t, "runs": self.runs, "incumbent_test": plain(self.incumbent),
                "candidate_test": plain(self.candidate), "adopted": self.adopted}


@dataclass(frozen=True)
class ExperimentTable:
    """Per-step aggregates over ``run_ids``, and per-run gains of the last incumbent over the seed."""

    run_ids: tuple[str, ...]
    steps: tuple[StepRow, ...]
    gains: tuple[float, ...]
    threshold: float

    @property
    def gained(self) -> int:
        """Runs whose last incumbent beat their seed by at least ``threshold`` (test)."""
        return sum(1 for gain in self.gains if gain >= self.threshold)

    def to_json(self) -> dict[str, Any]:
        gain = mean_and_se(self.gains) if self.gains else None
        return {"run_ids": list(self.run_ids), "steps": [row.to_json() for row in self.steps],
                "gain": None if gain is None else {"mean": gain.mean, "se": gain.se, "per_run": list(self.gains)},
                "threshold": self.threshold, "gained": self.gained}


def _incumbent_tests(steps: Sequence[Iteration]) -> dict[int, float]:
    """Test meta-utility of the incumbent after each step of one run (steps without scores carry over)."""
    by_program: dict[int, float] = {}
    found: dict[int, float] = {}
    for row in sorted(steps, key=lambda r: r.t):
        if row.candidate_id is not None and row.test is not None:
            by_program[row.candidate_id] = row.test
        if row.incumbent_id in by_program:
            found[row.t] = by_program[row.incumbent_id]
    return found


def aggregate(runs: Sequence[RunSteps], threshold: float = 0.03) -> ExperimentTable:
    """Per-step means and standard errors across ``runs`` (see the module docstring)."""
    incumbents = [_incumbent_tests(run.iterations) for run in runs]
    last_t = max((row.t for run in runs for row in run.iterations), default=-1)
    steps = []
    for t in range(last_t + 1):
        rows = [row for run in runs for row in run.iterations if row.t == t]
        held = [found[t] for found in incumbents if t in found]
        proposed = [row.test for row in rows if row.test is not None and row.candidate_id is not None]
        steps.append(StepRow(t, len(rows), mean_and_se(held) if held else None,
                             mean_and_se(proposed) if proposed else None, sum(1 for row in rows if row.accepted)))
    gains = []
    for found in incumbents:
        if 0 in found:
            gains.append(found[max(found)] - found[0])
    return ExperimentTable(tuple(run.run_id for run in runs), tuple(steps), tuple(gains), threshold)


def experiment(run_one: Callable[[int], RunSteps], seeds: Sequence[int], threshold: float = 0.03) -> ExperimentTable:
    """Run ``run_one(seed)`` for every seed in turn (independent runs) and aggregate them."""
    if not seeds:
        raise ValueError("an experiment needs at least one seed")
    return aggregate([run_one(seed) for seed in seeds], threshold)


def from_store(store: RunStore, run_ids: Sequence[str]) -> list[StoredRun]:
    """The steps of stored runs, ready for ``aggregate``."""
    return [StoredRun(run_id, tuple(store.iterations(run_id))) for run_id in run_ids]
