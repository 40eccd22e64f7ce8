"""The STOP loop (the paper's Algorithm 1): I_t = I_{t-1}(û, source(I_{t-1}), L).

Step 0 scores the seed improver. Each step t runs the incumbent improver, sandboxed, on its own
source with the meta-utility û (train split) as its utility; the candidate it returns is scored
on ``val`` (selection) and ``test`` (reported only) and then adopted or not:

- ``best`` (default): adopt only if the candidate's val meta-utility beats the incumbent's;
- ``paper``: adopt unless the candidate failed or scored 0 (the reference code's rule);
- ``paired``: the incumbent is scored again at step t on the very same repeats as the candidate
  (the same tags ``t{t}/eval/r{i}``, so each pair of runs shares its sandbox seeds and, where both
  improvers send the same prompt at the same call, the same cached LM answers: common random
  numbers). With d_i = candidate_i - incumbent_i over the k repeats, the candidate is adopted only
  if the one-sided 95% lower confidence bound mean(d) - q * se(d) is above 0, where q is the 95%
  quantile of Student's t with k - 1 degrees of freedom (1.645 beyond 30). With k = 1 there is no
  spread to estimate and the rule reduces to d_1 > 0. It costs one more val estimate per step.

Every step is written to the recorder as soon as it is decided, so a killed run resumes from
the last finished step (``LoopState.from_history``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selftaught.broker import Broker
from selftaught.config import RunConfig
from selftaught.improver import SEED_IMPROVER
from selftaught.meta_utility import Estimate, MetaUtility, mean_and_se
from selftaught.records import Iteration, Recorder
from selftaught.tasks.base import Task

__all__ = ["LoopState", "paired_bound", "run_loop"]

# One-sided 95% quantiles of Student's t by degrees of freedom (1..30); 1.645 (normal) beyond.
_T95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761,
        1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701,
        1.699, 1.697)


@dataclass(frozen=True)
class LoopState:
    """Where the loop stands: the next step, the incumbent improver and its val score."""

    next_t: int
    incumbent_id: int
    incumbent_val: float

    @classmethod
    def from_history(cls, history: Sequence[Iteration]) -> LoopState | None:
        """The state after the stored steps (None when step 0 never finished)."""
        if not history:
            return None
        incumbent_val = 0.0
        for row in history:
            if row.accepted and row.val is not None:
                incumbent_val = row.val
        last = history[-1]
        return cls(last.t + 1, last.incumbent_id, incumbent_val)


def run_loop(
    broker: Broker,
    task: Task,
    config: RunConfig,
    recorder: Recorder,
    history: Sequence[Iteration] = (),
    on_iteration: Callable[[Iteration], None] = lambda row: None,
) -> list[Iteration]:
    """Run (or resume after ``history``) the loop to ``config.iterations``; returns every step."""
    meta = MetaUtility(broker, task, config.repeats, config.budgets)
    rows = list(history)
    state = LoopState.from_history(rows)
    if state is None:
        seed_id = recorder.program("improver", SEED_IMPROVER)
        scores = meta.estimate(SEED_IMPROVER, "t0/eval", ("val", "test"))
        row = Iteration(0, seed_id, seed_id, scores["val"].mean, scores["val"].se, scores["test"].mean,
                        scores["test"].se, accepted=True, reason="seed improver")
        rows.append(_decided(recorder, row, on_iteration))
        state = LoopState.from_history(rows)
        assert state is not None
    for t in range(state.next_t, config.iterations + 1):
        incumbent = recorder.source(state.incumbent_id)
        meta = MetaUtility(broker, task, config.repeats, config.budgets, parent_id=state.incumbent_id)
        run = broker.improve(incumbent, incumbent, meta, f"t{t}/improve")
        if run.solution is None:
            row = Iteration(t, None, state.incumbent_id, None, None, None, None, accepted=False,
                            reason=f"no candidate: {run.reason}")
        else:
            candidate_id = recorder.program("improver", run.solution, parent_id=state.incumbent_id)
            scores = meta.estimate(run.solution, f"t{t}/eval", ("val", "test"))
            val, test = scores["val"], scores["test"]
            paired = None
            if config.accept == "paired":  # the incumbent on the candidate's very repeats
                paired = meta.estimate(incumbent, f"t{t}/eval", ("val",))["val"]
            accepted, reason = _accept(config.accept, val, state.incumbent_val, paired)
            row = Iteration(t, candidate_id, candidate_id if accepted else state.incumbent_id,
                            val.mean, val.se, test.mean, test.se, accepted, reason)
        rows.append(_decided(recorder, row, on_iteration))
        state = LoopState(t + 1, row.incumbent_id, row.val if row.accepted and row.val is not None
                          else state.incumbent_val)
    return rows


def paired_bound(candidate: Sequence[float], incumbent: Sequence[float]) -> tuple[float, float, float]:
    """Mean paired difference candidate - incumbent, its standard error, and its one-sided 95% lower bound."""
    if len(candidate) != len(incumbent) or not candidate:
        raise ValueError("paired scores need the same, non-zero number of repeats")
    diff = mean_and_se([c - i for c, i in zip(candidate, incumbent, strict=True)])
    df = len(candidate) - 1
    quantile = 0.0 if df == 0 else _T95[df - 1] if df <= len(_T95) else 1.645
    return diff.mean, diff.se, diff.mean - quantile * diff.se


def _accept(
    rule: str, candidate: Estimate, incumbent_val: float, incumbent: Estimate | None = None
) -> tuple[bool, str]:
    """Whether to adopt the candidate under ``rule``, and why (``incumbent``: its paired re-score)."""
    val = candidate.mean
    if rule == "paired":
        if incumbent is None:
            raise ValueError("the paired rule needs the incumbent's scores on the same repeats")
        mean, se, lower = paired_bound(candidate.scores, incumbent.scores)
        verdict = "adopted" if lower > 0.0 else "kept incumbent"
        return lower > 0.0, (f"{verdict} (paired): val diff {mean:+.4f} ± {se:.4f}, "
                             f"95% lower bound {lower:+.4f} {'>' if lower > 0.0 else '<='} 0")
    if rule == "paper":
        return (val > 0.0, "adopted (paper rule)" if val > 0.0 else "rejected: scored 0 (paper rule)")
    if val > incumbent_val:
        return True, f"adopted: val {val:.4f} > incumbent {incumbent_val:.4f}"
    return False, f"kept incumbent: val {val:.4f} <= {incumbent_val:.4f}"


def _decided(recorder: Recorder, row: Iteration, on_iteration: Callable[[Iteration], None]) -> Iteration:
    recorder.iteration(row)
    on_iteration(row)
    return row
