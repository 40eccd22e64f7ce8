"""The STOP loop (the paper's Algorithm 1): I_t = I_{t-1}(û, source(I_{t-1}), L).

Step 0 scores the seed improver. Each step t runs the incumbent improver, sandboxed, on its own
source with the meta-utility û (train split) as its utility. The candidate it returns gets two
*independent* estimates from separate, separately seeded improver runs:

- val, on runs tagged ``t{t}/eval/val/r{i}``: the only estimate the acceptance rule looks at;
- test, on ``repeats`` runs tagged ``t{t}/eval/test/r{i}``: reported, never used to decide.

Because the decision never sees the test runs, the reported test of an adopted improver is an
unbiased estimate of its test meta-utility (a null experiment, with every improver the same,
gives a flat test curve). The rules (``RunConfig.accept``):

- ``best``: adopt if the candidate's val mean beats the incumbent's bar, the val mean of the
  incumbent's own estimate when it was adopted (kept through rejected steps and across resume);
- ``paper``: adopt unless the candidate failed or scored 0 (the reference code's rule);
- ``paired``: the incumbent is run again on the candidate's very tags, so each pair shares its
  sandbox seeds and, where both send the same prompt at the same call, its cached LM answers
  (common random numbers). With d_i = candidate_i - incumbent_i over ``repeats`` pairs, adopt only
  if the one-sided 95% lower bound mean(d) - q * se(d) is above 0 (q: Student's t, k - 1 df);
  with one pair the rule reduces to d_1 > 0;
- ``sequential`` (default): the paired rule with repeats added until it decides. Looks come after
  every ``repeats`` pairs up to ``max_repeats``; at look j with n_j pairs the candidate is adopted
  when the lower bound with q = t(1 - alpha_j, n_j - 1) is above 0, where alpha_j = 0.05 * n_j /
  sum(n) (a weighted Bonferroni split: the false-adoption rate stays at most 5% over all looks);
  it is rejected as soon as mean(d) <= 0 (no sign of improvement), or at the cap. The reason of
  each step says how many val runs the decision took.

Every step is written to the recorder as soon as it is decided, so a killed run resumes from
the last finished step (``LoopState.from_history``); tags are fixed by the step and repeat, so a
resumed or replayed step gets the same seeds and cached answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from selftaught.config import RunConfig
from selftaught.improver import SEED_IMPROVER
from selftaught.meta_utility import Estimate, MetaUtility, Runner
from selftaught.records import Iteration, Recorder
from selftaught.stats import mean_and_se, t_quantile
from selftaught.tasks.base import Task

__all__ = ["ALPHA", "Decision", "LoopState", "decide", "paired_bound", "run_loop", "sequential_looks"]

ALPHA = 0.05
"""The false-adoption rate the paired and sequential rules allow (one-sided)."""


@dataclass(frozen=True)
class LoopState:
    """Where the loop stands: the next step, the incumbent improver and its val bar (``best``)."""

    next_t: int
    incumbent_id: int
    incumbent_val: float

    def after(self, row: Iteration) -> LoopState:
        """The state once step ``row`` is decided: the live loop and resume both move on with this.

        The incumbent is the one ``row`` leaves in force; the bar becomes the val of ``row``'s
        candidate only when ``row`` adopted it: a rejected step, or one without a candidate, leaves it alone.
        """
        bar = row.val if row.accepted and row.val is not None else self.incumbent_val
        return LoopState(row.t + 1, row.incumbent_id, bar)

    @classmethod
    def from_history(cls, history: Sequence[Iteration]) -> LoopState | None:
        """The state after the stored steps, each applied in turn with ``after`` (None when step 0 never finished)."""
        if not history:
            return None
        state = cls(0, history[0].incumbent_id, 0.0)  # before step 0: nothing adopted, a bar of 0
        for row in history:
            state = state.after(row)
        return state


@dataclass(frozen=True)
class Decision:
    """A rule's verdict on a candidate: its val estimate, adopted or not, why, and the val runs it took."""

    val: Estimate
    adopted: bool
    reason: str
    val_runs: int


def run_loop(
    broker: Runner,
    task: Task,
    config: RunConfig,
    recorder: Recorder,
    history: Sequence[Iteration] = (),
    on_iteration: Callable[[Iteration], None] = lambda row: None,
    executor: Executor | None = None,
) -> list[Iteration]:
    """Run (or resume after ``history``) the loop to ``config.iterations``; returns every step.

    ``executor`` runs the improver runs of the estimates (default: a thread each); the val and the
    test estimate of a step run concurrently.
    """
    rows = list(history)
    state = LoopState.from_history(rows)
    if state is None:
        meta = MetaUtility(broker, task, config.repeats, config.budgets, executor=executor)
        seed_id = recorder.program("improver", SEED_IMPROVER)
        reason = f"seed improver; val and test from separate runs ({config.repeats} each)"
        verdict, test = _estimates(meta, SEED_IMPROVER, "t0", partial(_seed, meta, reason))
        val = verdict.val
        row = Iteration(t=0, candidate_id=seed_id, incumbent_id=seed_id, val=val.mean, val_se=val.se,
                        test=test.mean, test_se=test.se, accepted=True, reason=reason)
        rows.append(_decided(recorder, row, on_iteration))
        state = LoopState.from_history(rows)
        assert state is not None
    for t in range(state.next_t, config.iterations + 1):
        incumbent = recorder.source(state.incumbent_id)
        meta = MetaUtility(broker, task, config.repeats, config.budgets, state.incumbent_id, executor)
        run = broker.improve(incumbent, incumbent, meta, f"t{t}/improve")
        if run.solution is None:
            row = Iteration(t=t, candidate_id=None, incumbent_id=state.incumbent_id, val=None, val_se=None,
                            test=None, test_se=None, accepted=False, reason=f"no candidate: {run.reason}")
        else:
            candidate = run.solution
            candidate_id = recorder.program("improver", candidate, parent_id=state.incumbent_id)
            rule = partial(decide, config, meta, candidate, incumbent, state.incumbent_val, f"t{t}/eval/val")
            verdict, test = _estimates(meta, candidate, f"t{t}", rule)
            val = verdict.val
            row = Iteration(t=t, candidate_id=candidate_id,
                            incumbent_id=candidate_id if verdict.adopted else state.incumbent_id,
                            val=val.mean, val_se=val.se, test=test.mean, test_se=test.se,
                            accepted=verdict.adopted, reason=verdict.reason)
        rows.append(_decided(recorder, row, on_iteration))
        state = state.after(row)
    return rows


def _estimates(
    meta: MetaUtility, improver: str, step: str, rule: Callable[[], Decision]
) -> tuple[Decision, Estimate]:
    """The decision on val (``rule()``) and, concurrently, the test estimate from runs of its own."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-estimate") as pool:
        test = pool.submit(meta.estimate, improver, f"{step}/eval/test", ("test",))
        return rule(), test.result()["test"]


def _seed(meta: MetaUtility, reason: str) -> Decision:
    """Step 0: the seed improver's val estimate; it is adopted by definition."""
    return Decision(meta.estimate(SEED_IMPROVER, "t0/eval/val", ("val",))["val"], True, reason, meta.repeats)


def decide(
    config: RunConfig, meta: MetaUtility, candidate: str, incumbent: str, incumbent_val: float, tag: str
) -> Decision:
    """Score ``candidate`` on val (runs ``tag/r{i}``) as ``config.accept`` asks, and adopt it or not."""
    k = config.repeats
    if config.accept in ("best", "paper"):
        val = meta.estimate(candidate, tag, ("val",))["val"]
        if config.accept == "paper":
            adopted = val.mean > 0.0
            return Decision(val, adopted, "adopted (paper rule)" if adopted else "rejected: scored 0 (paper rule)", k)
        adopted = val.mean > incumbent_val
        relation = ">" if adopted else "<="
        verdict = "adopted" if adopted else "kept incumbent"
        reason = f"{verdict}: val {val.mean:.4f} {relation} incumbent's bar {incumbent_val:.4f}"
        return Decision(val, adopted, reason, k)
    cap = max(config.max_repeats, k) if config.accept == "sequential" else k
    return _paired(meta, candidate, incumbent, tag, sequential_looks(k, cap), config.accept)


def sequential_looks(first: int, cap: int) -> list[tuple[int, float]]:
    """The looks of a sequential paired test: ``(pairs, one-sided alpha)`` after each batch of ``first`` pairs.

    The alphas add up to ``ALPHA`` and grow with the pairs (later looks, with smaller standard
    errors, get more of it), so by the union bound the rule adopts a candidate that is no better
    with probability at most ``ALPHA`` however many looks it takes.
    """
    if first < 1 or cap < first:
        raise ValueError(f"need 1 <= first <= cap, not {first} and {cap}")
    sizes = list(range(first, cap, first)) + [cap]
    total = sum(sizes)
    return [(n, ALPHA * (n / total)) for n in sizes]


def paired_bound(
    candidate: Sequence[float], incumbent: Sequence[float], alpha: float = ALPHA
) -> tuple[float, float | None, float]:
    """Mean paired difference candidate - incumbent, its standard error and its one-sided 1 - alpha lower bound.

    With one pair there is no spread to estimate: the standard error is None and the bound is the difference.
    """
    if len(candidate) != len(incumbent) or not candidate:
        raise ValueError("paired scores need the same, non-zero number of repeats")
    diff = mean_and_se([c - i for c, i in zip(candidate, incumbent, strict=True)])
    if diff.se is None:
        return diff.mean, None, diff.mean
    return diff.mean, diff.se, diff.mean - t_quantile(1.0 - alpha, len(candidate) - 1) * diff.se


def _paired(
    meta: MetaUtility, candidate: str, incumbent: str, tag: str, looks: list[tuple[int, float]], rule: str
) -> Decision:
    """Run candidate and incumbent on the same tags, a batch of pairs per look, until the bound decides."""
    ours: list[float] = []
    theirs: list[float] = []
    for look, (pairs, alpha) in enumerate(looks):
        # The candidate's runs first, then the incumbent's: where both send the same prompt at the same
        # call, the incumbent reads the candidate's cached answer, and a replay does exactly the same.
        new = range(len(ours), pairs)
        ours += [run["val"] for run in meta.runs([(candidate, i) for i in new], tag, ("val",))]
        theirs += [run["val"] for run in meta.runs([(incumbent, i) for i in new], tag, ("val",))]
        mean, se, lower = paired_bound(ours, theirs, alpha)
        last = look == len(looks) - 1
        adopted = lower > 0.0 and (se is not None or last)
        if adopted or mean <= 0.0 or last:
            break
    spread = "n/a" if se is None else f"{se:.4f}"
    bound = f"{1 - alpha:.1%} lower bound {lower:+.4f} {'>' if adopted else '<='} 0"
    why = "" if adopted else ", no sign of improvement" if mean <= 0.0 else f", at the cap of {pairs} pairs"
    cost = f"{2 * pairs} val runs ({pairs} pairs, incumbent {mean_and_se(theirs).mean:.4f} on the same tags)"
    verdict = "adopted" if adopted else "kept incumbent"
    reason = f"{verdict} ({rule}): val diff {mean:+.4f} ± {spread}, {bound}{why}; {cost}"
    return Decision(mean_and_se(ours), adopted, reason, 2 * pairs)


def _decided(recorder: Recorder, row: Iteration, on_iteration: Callable[[Iteration], None]) -> Iteration:
    recorder.iteration(row)
    on_iteration(row)
    return row
