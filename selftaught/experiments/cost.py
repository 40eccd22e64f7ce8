"""What a command may cost before it starts: LM calls, samples, tokens and dollars its budgets allow.

Budgets bound everything an improver can spend: one improver run makes at most ``L =
budgets.lm_calls`` LM calls of at most ``R = budgets.responses_per_call`` samples each, and at most
``U = budgets.utility_calls`` utility calls. What a command does with improver runs is fixed:

- a *downstream run* (an improver improving a task's solution) spends at most ``L`` calls and
  ``L * R`` samples; its utility calls only run solutions;
- the meta-utility of an improver is ``repeats`` downstream runs;
- STOP step 0 scores the seed: ``repeats`` downstream runs for val and ``repeats`` more for test;
- STOP step t >= 1 runs the incumbent on its own source with the meta-utility as its utility
  (``L`` calls of its own, and up to ``U`` meta-utility calls of ``repeats`` downstream runs
  each), then scores the candidate on test (``repeats`` runs) and on val as the acceptance rule
  asks: ``repeats`` runs under ``best`` and ``paper``, twice that under ``paired`` (the incumbent
  is run again on the same repeats), and up to twice ``max(max_repeats, repeats)`` under
  ``sequential``;
- ``improve``: 1 downstream run; ``score``: tasks x repeats; ``transfer``: improvers x tasks x runs;
  ``baseline``: runs (3 x runs with ``--match``: the usage measurement and both columns).

Samples bound requests (a request carries at least one sample) and ``samples * max_tokens`` bounds
completion tokens. Prompts are written by untrusted improvers, so their size is bounded only by
the model's context window: the worst case assumes every prompt fills it (when the window is
known); the estimate assumes prompts the size of the seed improver's. Dollars come from the price
table (an estimate: list prices go stale); run-level caps (``max_cost_usd``, ``max_total_tokens``,
``max_calls``) lower the bounds when set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selftaught.config import RunConfig
from selftaught.improver import SEED_IMPROVER
from selftaught.lm.context import context_window
from selftaught.lm.pricing import Price, PriceTable
from selftaught.lm.usage import estimate_tokens
from selftaught.proxy import meta_description
from selftaught.tasks.base import Task

__all__ = ["Counts", "CostBound", "bound", "downstream", "stop_steps"]

_INSTRUCTIONS_TOKENS = 200  # the seed's own words around the code it quotes


@dataclass(frozen=True)
class Counts:
    """Upper bounds of one part of a command: downstream improver runs, LM calls, samples."""

    downstream_runs: int = 0
    lm_calls: int = 0
    samples: int = 0
    improve_calls: int = 0  # LM calls of improvers improving an improver (their prompts quote one)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.downstream_runs + other.downstream_runs, self.lm_calls + other.lm_calls,
                      self.samples + other.samples, self.improve_calls + other.improve_calls)

    def times(self, k: int) -> Counts:
        return Counts(self.downstream_runs * k, self.lm_calls * k, self.samples * k, self.improve_calls * k)


def downstream(config: RunConfig, runs: int = 1) -> Counts:
    """``runs`` improver runs on a downstream task."""
    calls = config.budgets.lm_calls
    return Counts(runs, calls * runs, calls * config.budgets.responses_per_call * runs)


def stop_steps(config: RunConfig) -> tuple[Counts, Counts]:
    """STOP's step 0 and each later step (see the module docstring)."""
    budgets = config.budgets
    meta = downstream(config, config.repeats)
    own = Counts(0, budgets.lm_calls, budgets.lm_calls * budgets.responses_per_call, budgets.lm_calls)
    val_runs = {"paired": 2 * config.repeats, "sequential": 2 * max(config.max_repeats, config.repeats)}
    val = downstream(config, val_runs.get(config.accept, config.repeats))
    return meta.times(2), own + meta.times(budgets.utility_calls) + val + meta


@dataclass(frozen=True)
class CostBound:
    """The bounds of one command for one model, with the figures behind them."""

    command: str
    model: str
    parts: tuple[tuple[str, Counts], ...]
    total: Counts
    max_tokens: int
    window: int | None
    prompt_estimate: int  # prompt tokens in all, if prompts are the size of the seed improver's
    price: Price | None
    caps: dict[str, float]

    @property
    def requests(self) -> int:
        return _capped(self.total.samples, self.caps.get("max_calls"))

    @property
    def completion_tokens(self) -> int:
        return _capped(self.total.samples * self.max_tokens, self.caps.get("max_total_tokens"))

    @property
    def prompt_tokens_worst(self) -> int | None:
        if self.window is None:
            return None
        return _capped(self.requests * max(self.window - self.max_tokens, 0), self.caps.get("max_total_tokens"))

    def cost_worst(self) -> float | None:
        """Dollars if every sample used its whole completion limit and every prompt the whole window."""
        prompt = self.prompt_tokens_worst
        if self.price is None or prompt is None:
            return self.caps.get("max_cost_usd")
        return _capped_cost(self.price.cost_usd(prompt, self.completion_tokens), self.caps.get("max_cost_usd"))

    def cost_estimate(self) -> float | None:
        """Dollars if every sample used its whole completion limit and prompts were seed-sized."""
        if self.price is None:
            return self.caps.get("max_cost_usd")
        return _capped_cost(self.price.cost_usd(self.prompt_estimate, self.completion_tokens),
                            self.caps.get("max_cost_usd"))

    def lines(self) -> list[str]:
        """The bound as a few human lines."""
        out = [f"{self.command} with {self.model}: the budgets allow at most"]
        for label, counts in self.parts:
            out.append(f"  {label}: {counts.downstream_runs:,} downstream improver runs, "
                       f"{counts.lm_calls:,} LM calls, {counts.samples:,} samples")
        out.append(f"  in all: {self.total.lm_calls:,} LM calls, {self.requests:,} requests, "
                   f"{self.total.samples:,} samples, {self.completion_tokens:,} completion tokens "
                   f"({self.max_tokens:,} per sample)")
        worst = self.prompt_tokens_worst
        window = "unknown context window" if worst is None else \
            f"{worst:,} if every prompt filled the {self.window:,}-token context window"
        out.append(f"  prompt tokens: {window}; about {self.prompt_estimate:,} with prompts the size of the "
                   "seed improver's")
        if self.price is None:
            out.append(f"  cost: no price known for {self.model} (add it with lm.prices_file)")
        else:
            out.append(f"  cost (estimate; {self.price.describe()}): at most {_dollars(self.cost_worst())} "
                       f"worst case, about {_dollars(self.cost_estimate())} with seed-sized prompts")
        capped = ", ".join(f"{name} = {value:g}" for name, value in self.caps.items())
        out.append(f"  run-level caps: {capped}" if capped else
                   "  run-level caps: none (--max-cost-usd, --max-tokens, --max-lm-calls stop a run cleanly)")
        return out

    def headline(self) -> str:
        """One line for the start of a real run."""
        return (f"cost bound (estimate): at most {self.requests:,} LM requests, {self.total.samples:,} samples, "
                f"{self.completion_tokens:,} completion tokens; {_dollars(self.cost_worst())} worst case, about "
                f"{_dollars(self.cost_estimate())} (--dry-run shows the arithmetic)")

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command, "model": self.model, "max_tokens": self.max_tokens,
            "parts": [{"label": label, "downstream_runs": c.downstream_runs, "lm_calls": c.lm_calls,
                       "samples": c.samples} for label, c in self.parts],
            "lm_calls": self.total.lm_calls, "requests": self.requests, "samples": self.total.samples,
            "completion_tokens": self.completion_tokens, "prompt_tokens_worst": self.prompt_tokens_worst,
            "prompt_tokens_estimate": self.prompt_estimate, "cost_usd_worst": self.cost_worst(),
            "cost_usd_estimate": self.cost_estimate(), "caps": self.caps,
            "price": None if self.price is None else {"input_usd_per_mtok": self.price.input_usd_per_mtok,
                                                      "output_usd_per_mtok": self.price.output_usd_per_mtok,
                                                      "as_of": self.price.as_of, "source": self.price.source},
        }


def bound(
    command: str,
    config: RunConfig,
    tasks: Sequence[Task],
    prices: PriceTable,
    *,
    runs: int = 1,
    improvers: int = 1,
    match: bool = False,
) -> CostBound:
    """The bounds of ``command`` (run, experiment, improve, score, transfer, baseline) under ``config``.

    ``runs``: experiment runs, transfer/baseline runs per cell; ``improvers``: transfer columns.
    """
    parts: list[tuple[str, Counts]]
    if command in ("run", "experiment"):
        first, later = stop_steps(config)
        parts = [("step 0 (the seed)", first)]
        if config.iterations:
            parts.append((f"each of steps 1..{config.iterations}", later))
        one = first + later.times(config.iterations)
        if command == "experiment":
            parts.append((f"each of {runs} runs", one))
        total = one.times(runs if command == "experiment" else 1)
    elif command == "improve":
        total = downstream(config)
        parts = [("the improver run", total)]
    elif command == "score":
        total = downstream(config, config.repeats).times(len(tasks))
        parts = [(f"{config.repeats} runs on each of {len(tasks)} tasks", total)]
    elif command == "transfer":
        total = downstream(config, runs).times(len(tasks) * improvers)
        parts = [(f"{runs} runs of {improvers} improvers on {len(tasks)} tasks", total)]
    elif command == "baseline":
        total = downstream(config, runs).times(3 if match else 1)
        parts = [(f"{runs} runs" + (" of the matched improver (measured, then scored) and the baseline"
                                    if match else ""), total)]
    else:
        raise ValueError(f"no cost bound for the {command} command")
    leaf_prompt = max((_task_prompt(task) for task in tasks), default=_INSTRUCTIONS_TOKENS)
    improve_prompt = estimate_tokens(SEED_IMPROVER) + estimate_tokens(meta_description(config.repeats,
                                                                                        config.budgets))
    per_request = [(total.samples - total.improve_calls * config.budgets.responses_per_call, leaf_prompt),
                   (total.improve_calls * config.budgets.responses_per_call, improve_prompt + _INSTRUCTIONS_TOKENS)]
    estimate = sum(count * size for count, size in per_request)
    settings = config.lm
    caps = {name: float(value) for name, value in (("max_cost_usd", settings.max_cost_usd),
                                                   ("max_total_tokens", settings.max_total_tokens),
                                                   ("max_calls", settings.max_calls)) if value}
    model_id = settings.spec.partition(":")[2] or settings.spec
    return CostBound(command, settings.spec, tuple(parts), total, settings.max_tokens, context_window(model_id),
                     estimate, prices.price(settings.spec), caps)


def _task_prompt(task: Task) -> int:
    return estimate_tokens(task.initial_solution) + estimate_tokens(task.description) + _INSTRUCTIONS_TOKENS


def _capped(value: int, cap: float | None) -> int:
    return value if cap is None else min(value, int(cap))


def _capped_cost(value: float, cap: float | None) -> float:
    return value if cap is None else min(value, cap)


def _dollars(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"
