"""What ``StoreReader`` returns: small frozen records, one per kind of answer the front ends ask for.

Plain data, no connection behind them: a page or a figure can keep them after the reader is closed.
The loop's own ``Iteration`` is reused for the rows of ``iterations``.

Left out: the queries themselves (``selftaught.store.reader``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from selftaught.records import Iteration

__all__ = [
    "CallSamples",
    "EvaluationRow",
    "EventRow",
    "IterationRow",
    "LMCallRow",
    "ProgramInfo",
    "RunSummary",
    "SafetyCount",
    "StepCost",
    "StoredFinding",
    "TransferRow",
]

IterationRow = Iteration
"""One step of the loop, as stored in ``iterations`` (the loop's own record)."""


@dataclass(frozen=True)
class RunSummary:
    """One run as the runs list shows it.

    ``lm_calls`` counts requests sent to the provider; answers taken from the run's response cache
    are ``cached_calls`` (they cost no tokens and no dollars, so they are not in the token and cost sums).
    """

    id: str
    status: str
    task: str
    lm: str
    seed: int
    message: str
    created_at: float
    updated_at: float
    config: dict[str, Any]
    steps: int
    best_val: float | None
    cost_usd: float
    lm_calls: int
    prompt_tokens: int
    completion_tokens: int
    kind: str = "stop"  # stop | improve | score | transfer | baseline | experiment ...
    cached_calls: int = 0


@dataclass(frozen=True)
class StepCost:
    """LM usage of one iteration: the requests sent under tags that start with ``t<step>/`` (cached
    answers are not requests and cost nothing, so they are left out)."""

    step: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class SafetyCount:
    """How many of ``scanned`` programs have at least one finding of ``category``."""

    category: str
    flagged: int
    scanned: int


@dataclass(frozen=True)
class TransferRow:
    """One cell of a transfer table: an improver's score on another task."""

    run_id: str
    program_id: int
    task: str
    score: float
    se: float
    improver: str  # the column label (seed, a file name, RUN_ID:rule)
    initial: float  # u(s) on the same split
    initial_se: float
    runs: int  # independent improver runs behind score and se
    split: str
    normalised: float  # see selftaught.experiments.normalise
    normalised_se: float


@dataclass(frozen=True)
class ProgramInfo:
    """One stored program (an improver or a solution) with its source."""

    id: int
    run_id: str
    kind: str
    source: str
    parent_id: int | None
    sha256: str


@dataclass(frozen=True)
class EvaluationRow:
    """One scoring of a program on a split."""

    id: int
    program_id: int
    tag: str
    task: str
    split: str
    score: float
    instances: int
    failed: int
    reason: str
    elapsed_s: float


@dataclass(frozen=True)
class LMCallRow:
    """One LM request and its answers; ``finish_reasons`` has one entry per sample when recorded."""

    id: int
    tag: str
    model: str
    system: str
    prompt: str
    n: int
    temperature: float
    responses: list[str]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    cached: bool
    finish_reasons: list[str] = field(default_factory=list)
    cached_prompt_tokens: int = 0
    usage_estimated: bool = False


@dataclass(frozen=True)
class EventRow:
    """One runtime event of a run (a timeout, a denial, an invalid output, a budget overrun, ...)."""

    id: int
    kind: str
    program_id: int | None
    detail: str
    created_at: float


class CallSamples(NamedTuple):
    """The texts one LM request returned and why each ended (``[]`` when not recorded)."""

    texts: list[str]
    finish_reasons: list[str]


class StoredFinding(NamedTuple):
    """A static-scan finding as stored: the program it belongs to and that program's kind."""

    program_id: int
    kind: str
    category: str
    detail: str
    line: int
