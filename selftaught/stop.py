"""The STOP loop (the paper's Algorithm 1): I_t = I_{t-1}(û, source(I_{t-1}), L).

Step 0 scores the seed improver. Each step t runs the incumbent improver, sandboxed, on its own
source with the meta-utility û (train split) as its utility; the candidate it returns is scored
on ``val`` (selection) and ``test`` (reported only) and then adopted or not:

- ``best`` (default): adopt only if the candidate's val meta-utility beats the incumbent's;
- ``paper``: adopt unless the candidate failed or scored 0 (the reference code's rule).

Every step is written to the recorder as soon as it is decided, so a killed run resumes from
the last finished step (``LoopState.from_history``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selftaught.broker import Broker
from selftaught.config import RunConfig
from selftaught.improver import SEED_IMPROVER
from selftaught.meta_utility import MetaUtility
from selftaught.records import Iteration, Recorder
from selftaught.tasks.base import Task

__all__ = ["LoopState", "run_loop"]


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
            accepted, reason = _accept(config.accept, val.mean, state.incumbent_val)
            row = Iteration(t, candidate_id, candidate_id if accepted else state.incumbent_id,
                            val.mean, val.se, test.mean, test.se, accepted, reason)
        rows.append(_decided(recorder, row, on_iteration))
        state = LoopState(t + 1, row.incumbent_id, row.val if row.accepted and row.val is not None
                          else state.incumbent_val)
    return rows


def _accept(rule: str, val: float, incumbent_val: float) -> tuple[bool, str]:
    if rule == "paper":
        return (val > 0.0, "adopted (paper rule)" if val > 0.0 else "rejected: scored 0 (paper rule)")
    if val > incumbent_val:
        return True, f"adopted: val {val:.4f} > incumbent {incumbent_val:.4f}"
    return False, f"kept incumbent: val {val:.4f} <= {incumbent_val:.4f}"


def _decided(recorder: Recorder, row: Iteration, on_iteration: Callable[[Iteration], None]) -> Iteration:
    recorder.iteration(row)
    on_iteration(row)
    return row
