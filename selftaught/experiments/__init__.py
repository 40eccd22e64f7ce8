"""Experiments on improvers: apply once, score over tasks, transfer tables, baselines, multi-run aggregates.

Layer: above ``stop`` and ``meta_utility``, below ``app`` and ``cli``. Functions take a wired
``Broker`` (from ``app.open_session``) and return frozen result records with ``to_json``;
``tables`` turns them into CSV, JSON and rich tables.
"""

from selftaught.experiments.apply import (
    ImproveResult,
    ImproverScore,
    TaskScore,
    improve_once,
    initial_score,
    measure_usage,
    score_improver,
)
from selftaught.experiments.baselines import (
    BASELINES,
    COT_IMPROVER,
    GREEDY_IMPROVER,
    Usage,
    baseline_source,
    random_sampling_improver,
)
from selftaught.experiments.experiment import ExperimentTable, StepRow, aggregate, experiment, from_store
from selftaught.experiments.normalise import mean_over_tasks, normalised_gain
from selftaught.experiments.transfer import (
    RULES,
    Selection,
    TransferColumn,
    TransferTable,
    record_transfer,
    select_improver,
    transfer_table,
)

__all__ = [
    "BASELINES",
    "COT_IMPROVER",
    "GREEDY_IMPROVER",
    "RULES",
    "ExperimentTable",
    "ImproveResult",
    "ImproverScore",
    "Selection",
    "StepRow",
    "TaskScore",
    "TransferColumn",
    "TransferTable",
    "Usage",
    "aggregate",
    "baseline_source",
    "experiment",
    "from_store",
    "improve_once",
    "initial_score",
    "measure_usage",
    "mean_over_tasks",
    "normalised_gain",
    "random_sampling_improver",
    "record_transfer",
    "score_improver",
    "select_improver",
    "transfer_table",
]
