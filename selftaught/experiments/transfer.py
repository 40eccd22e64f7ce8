"""Transfer (the paper's Table 1): improvers applied unchanged to tasks they were not improved on.

``transfer_table`` scores each improver on each task over ``runs`` independent improver runs
(fresh budgets each, ``test`` split) beside u(s), the task's initial solution, and reports mean ±
standard error, raw and normalised (``selftaught.experiments.normalise``). The runs are new ones,
made in the transfer's own run: a STOP run's stored test estimates are never reused, so choosing
an improver by its val score cannot select lucky test runs.

Which improver of a STOP run is transferred is decided by a written rule (``select_improver``),
and the reason is kept with the results:

- ``best_val``: of the improvers the run adopted (step 0's seed included), the one with the
  highest val meta-utility; ties go to the earliest step. It never looks at test scores, so the
  transfer numbers stay held out.
- ``last``: the incumbent after the run's last step, I_T (what the paper's loop outputs).

``record_transfer`` stores a table in the ``transfer`` table of the run store, which the report
and dashboard read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from selftaught.broker import Broker
from selftaught.errors import ConfigError
from selftaught.experiments.apply import ImproverScore, estimate_json, initial_score, score_improver
from selftaught.records import Split
from selftaught.stats import Estimate
from selftaught.store import RunStore, TransferEntry
from selftaught.tasks.base import Task

__all__ = ["RULES", "Selection", "TransferColumn", "TransferTable", "record_transfer", "select_improver",
           "transfer_table"]

RULES = ("best_val", "last")


class Selection(NamedTuple):
    """The improver a rule picked from a run: its program id there, its source, and why."""

    program_id: int
    source: str
    why: str


def select_improver(store: RunStore, run_id: str, rule: str = "best_val") -> Selection:
    """The improver of STOP run ``run_id`` chosen by ``rule`` (``best_val`` or ``last``)."""
    if rule not in RULES:
        raise ConfigError(f"unknown selection rule {rule!r}; choose one of {', '.join(RULES)}")
    steps = store.iterations(run_id)
    if not steps:
        raise ConfigError(f"run {run_id} has no finished steps to select an improver from")
    if rule == "last":
        last = steps[-1]
        why = f"last: run {run_id} incumbent after its last step t={last.t} (I_T, the loop's output)"
        return Selection(last.incumbent_id, store.program_source(last.incumbent_id), why)
    adopted = [s for s in steps if s.accepted and s.val is not None and s.candidate_id is not None]
    if not adopted:
        raise ConfigError(f"run {run_id} adopted no scored improver")
    best = max(adopted, key=lambda s: (s.val, -s.t))
    assert best.candidate_id is not None and best.val is not None
    spread = "n/a" if best.val_se is None else f"{best.val_se:.4f}"
    why = (f"best_val: run {run_id} step t={best.t} (program {best.candidate_id}), val {best.val:.4f} ± "
           f"{spread}, the highest val meta-utility of the {len(adopted)} adopted improvers "
           f"(steps {', '.join(str(s.t) for s in adopted)})")
    return Selection(best.candidate_id, store.program_source(best.candidate_id), why)


@dataclass(frozen=True)
class TransferColumn:
    """One improver of a transfer table: its label, how it was chosen, its stored program and scores."""

    name: str
    origin: str
    program_id: int
    score: ImproverScore


@dataclass(frozen=True)
class TransferTable:
    """Per task, u(s) and each improver's mean ± se over ``runs`` runs on ``split``."""

    tasks: tuple[str, ...]
    initial: tuple[Estimate, ...]
    columns: tuple[TransferColumn, ...]
    runs: int
    split: str

    def to_json(self) -> dict[str, Any]:
        """The table as plain data: ``rows`` (one per task) and ``improvers`` (with their means over tasks)."""
        rows = []
        for index, task in enumerate(self.tasks):
            cells = {}
            for column in self.columns:
                cell = column.score.tasks[index]
                cells[column.name] = {"raw": estimate_json(cell.raw), "normalised": estimate_json(cell.normalised)}
            rows.append({"task": task, "initial": estimate_json(self.initial[index]), "improvers": cells})
        improvers = [{"name": c.name, "origin": c.origin, "program_id": c.program_id,
                      "mean_raw": c.score.mean_raw, "mean_normalised": c.score.mean_normalised,
                      "se_normalised": c.score.se_normalised} for c in self.columns]
        return {"split": self.split, "runs": self.runs, "rows": rows, "improvers": improvers}


def transfer_table(
    broker: Broker,
    tasks: Sequence[Task],
    improvers: Mapping[str, str],
    runs: int,
    tag: str,
    *,
    origins: Mapping[str, str] | None = None,
    split: Split = "test",
) -> TransferTable:
    """Score each of ``improvers`` (label -> source) on each task over ``runs`` runs, beside u(s).

    Each improver is stored as a program of the broker's run; ``origins`` (label -> how it was
    chosen) is kept with the table. Improver runs of one cell run concurrently, cells one by one.
    """
    if not tasks or not improvers:
        raise ConfigError("a transfer table needs at least one task and one improver")
    if runs < 2:
        raise ConfigError(f"runs must be at least 2 (a standard error needs two runs), not {runs}")
    initials = {task.name: initial_score(broker, task, runs, f"{tag}/{task.name}", split) for task in tasks}
    columns = []
    for index, (name, source) in enumerate(improvers.items()):
        program_id = broker.recorder.program("improver", source)
        score = score_improver(broker, tasks, source, runs, f"{tag}/i{index}", split=split, name=name,
                               initials=initials)
        columns.append(TransferColumn(name, (origins or {}).get(name, ""), program_id, score))
    return TransferTable(tuple(t.name for t in tasks), tuple(initials[t.name] for t in tasks), tuple(columns),
                         runs, split)


def record_transfer(store: RunStore, run_id: str, table: TransferTable) -> None:
    """Store every cell of ``table`` in the ``transfer`` table under ``run_id``."""
    entries = []
    for column in table.columns:
        for index, cell in enumerate(column.score.tasks):
            initial = table.initial[index]
            entries.append(TransferEntry(column.program_id, column.name, column.origin, cell.task, table.split,
                                         table.runs, cell.raw.mean, _stored(cell.raw.se), initial.mean,
                                         _stored(initial.se), cell.normalised.mean, _stored(cell.normalised.se)))
    store.add_transfer(run_id, entries)


def _stored(se: float | None) -> float:
    if se is None:  # transfer_table never makes one: it needs two runs per cell
        raise ValueError("a stored transfer cell needs a standard error (at least two runs)")
    return se
