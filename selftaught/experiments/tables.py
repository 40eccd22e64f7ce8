"""Writers and rich tables for experiment results; nothing here runs anything.

``write_csv`` / ``write_json`` save a transfer table (CSV in the paper's Table 1 shape: one row per
task, u(s) then each improver's mean and standard error, raw and normalised); ``transfer_rich``,
``score_rich``, ``improve_rich`` and ``experiment_rich`` return renderables for a rich console.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rich.table import Table

from selftaught.errors import ConfigError
from selftaught.experiments.apply import ImproveResult, ImproverScore
from selftaught.experiments.experiment import ExperimentTable
from selftaught.experiments.transfer import TransferTable
from selftaught.stats import Estimate

__all__ = ["csv_rows", "experiment_rich", "improve_rich", "score_rich", "transfer_rich", "write_csv", "write_json"]


def _pct(estimate: Estimate | None) -> str:
    if estimate is None:
        return "-"
    return f"{estimate.mean:.1%} ± {'n/a' if estimate.se is None else f'{estimate.se:.1%}'}"


def _gain(mean: float, se: float | None) -> str:
    """A normalised gain ± its standard error ("n/a" from a single run)."""
    return f"{mean:+.2f} ± {'n/a' if se is None else f'{se:.2f}'}"


def _number(value: float | None) -> str:
    """A CSV cell: six decimals, or empty for a missing standard error."""
    return "" if value is None else f"{value:.6f}"


def csv_rows(table: TransferTable) -> list[list[str]]:
    """The header and one row per task: task, u(s), u(s) se, then per improver score, se, normalised, se.

    A standard error from a single run does not exist: its cell is empty.
    """
    header = ["task", "initial", "initial_se"]
    for column in table.columns:
        header += [column.name, f"{column.name}_se", f"{column.name}_normalised", f"{column.name}_normalised_se"]
    rows = [header]
    for index, task in enumerate(table.tasks):
        row = [task, _number(table.initial[index].mean), _number(table.initial[index].se)]
        for column in table.columns:
            cell = column.score.tasks[index]
            row += [_number(v) for v in (cell.raw.mean, cell.raw.se, cell.normalised.mean, cell.normalised.se)]
        rows.append(row)
    return rows


def write_csv(table: TransferTable, path: Path) -> None:
    """Write ``csv_rows(table)`` to ``path``."""
    try:
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows(csv_rows(table))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


def write_json(table: TransferTable, path: Path) -> None:
    """Write ``table.to_json()`` to ``path``."""
    try:
        path.write_text(json.dumps(table.to_json(), indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


def transfer_rich(table: TransferTable) -> Table:
    """Table 1: per task u(s) and each improver's mean ± se; a last row with the mean normalised gain."""
    out = Table(title=f"Transfer: {table.split} score, mean ± standard error over {table.runs} improver runs")
    out.add_column("task")
    out.add_column("u(s)", justify="right")
    for column in table.columns:
        out.add_column(column.name, justify="right")
    for index, task in enumerate(table.tasks):
        out.add_row(task, _pct(table.initial[index]), *(_pct(c.score.tasks[index].raw) for c in table.columns))
    out.add_row("mean normalised gain", "0.00",
                *(_gain(c.score.mean_normalised, c.score.se_normalised) for c in table.columns),
                style="bold")
    origins = [f"{c.name}: {c.origin}" for c in table.columns if c.origin]
    if origins:
        out.caption = "\n".join(origins)
    return out


def score_rich(score: ImproverScore) -> Table:
    """One improver per task: u(s), raw score and normalised gain; the mean over tasks last."""
    out = Table(title=f"{score.improver} on {score.split}: mean ± se over {len(score.tasks[0].raw.scores)} runs")
    for name in ("task", "u(s)", "score", "normalised gain"):
        out.add_column(name, justify="left" if name == "task" else "right")
    for row in score.tasks:
        out.add_row(row.task, _pct(row.initial), _pct(row.raw), _gain(row.normalised.mean, row.normalised.se))
    out.add_row("mean", "", f"{score.mean_raw:.1%}", _gain(score.mean_normalised, score.se_normalised),
                style="bold")
    return out


def improve_rich(result: ImproveResult) -> Table:
    """The initial solution and the improved one on val and test."""
    out = Table(title=f"{result.task}: {result.lm_calls} LM calls, {result.utility_calls} utility calls")
    for name in ("solution", "val", "test"):
        out.add_column(name, justify="left" if name == "solution" else "right")
    out.add_row("initial u(s)", f"{result.initial_val:.1%}", f"{result.initial_test:.1%}")
    label = "improved" if result.solution is not None else f"failed: {result.reason[:60]}"
    out.add_row(label, f"{result.val:.1%}", f"{result.test:.1%}")
    return out


def experiment_rich(table: ExperimentTable) -> Table:
    """Test meta-utility per step across runs (incumbent and candidate), with adoption counts."""
    out = Table(title=f"Test meta-utility per step over {len(table.run_ids)} runs (mean ± standard error)")
    for name in ("t", "runs", "incumbent", "candidate", "adopted"):
        out.add_column(name, justify="right")
    for row in table.steps:
        out.add_row(str(row.t), str(row.runs), _pct(row.incumbent), _pct(row.candidate), str(row.adopted))
    out.caption = (f"{table.gained} of {len(table.gains)} runs gained at least {table.threshold:.0%} "
                   f"(last incumbent vs. seed, test)")
    return out
