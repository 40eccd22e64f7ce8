"""Exact pins of the rules that decide what the loop adopts and reports (issue 16).

Each test drives the real ``stop`` and ``meta_utility`` code on ``TableRunner``, an in-process
implementation of ``meta_utility.Runner`` whose improver runs score exactly what a table says, so a
one-line change to a rule (a tie adopted, a look's alpha, a tag, a split) changes a number here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import pytest

from selftaught.broker import Evaluation, ImproverRun, Utility
from selftaught.config import Budgets, RunConfig
from selftaught.experiments.simulate import InlineExecutor, MemoryRecorder, SimulatedTask
from selftaught.meta_utility import MetaUtility, TaskUtility
from selftaught.records import Iteration, Split
from selftaught.stop import ALPHA, LoopState, decide, run_loop, sequential_looks
from selftaught.tasks.base import Task

_RUN = re.compile(r"/r(\d+)$")


def improver(name: str) -> str:
    """An improver source ``TableRunner`` knows by ``name`` (its first line)."""
    return f"# {name}\ndef improve_algorithm(initial_solution, utility, language_model):\n    return initial_solution\n"


class TableRunner:
    """Improver ``NAME``'s run tagged ``.../r{i}`` scores ``table[NAME, split][i]`` on each split
    (an improver without a ``# NAME`` first line, the seed improver, is ``seed``).

    Every run calls the utility it is given once (so the split that utility scores on is seen);
    a run with the loop's meta-utility (``t{t}/improve``) proposes improver ``proposes``; improver
    ``broken`` returns nothing.
    """

    def __init__(self, table: dict[tuple[str, Split], Sequence[float]], proposes: str = "candidate") -> None:
        self.table = table
        self.proposes = proposes
        self.recorder = MemoryRecorder()
        self.budgets = Budgets()
        self.improved: list[tuple[str, str]] = []  # (improver name, tag) in call order
        self.utility_splits: list[Split] = []  # the split each run's own utility scored on
        self.evaluated: list[tuple[str, Split]] = []  # (tag, split) of each evaluation of a run's solution
        self._lock = threading.Lock()

    def improve(self, improver: str, initial_solution: str, utility: Utility, tag: str) -> ImproverRun:
        first = improver.splitlines()[0]
        name = first.removeprefix("# ") if first.startswith("# ") else "seed"
        with self._lock:
            self.improved.append((name, tag))
        if isinstance(utility, MetaUtility):
            return ImproverRun(globals()["improver"](self.proposes), "", 1, 0)
        utility(initial_solution, f"{tag}/u")
        if name == "broken":
            return ImproverRun(None, "the improver raised", 1, 1)
        return ImproverRun(f"{name}@{tag}", "", 1, 1)

    def evaluate(self, solution: object, task: Task, split: Split, tag: str) -> Evaluation:
        assert isinstance(solution, str)
        with self._lock:
            if tag.endswith("/u"):
                self.utility_splits.append(split)
                return Evaluation(0.0, 1, 0, "", 0)
            self.evaluated.append((tag, split))
        name, run_tag = solution.split("@", 1)
        match = _RUN.search(run_tag)
        assert match, run_tag
        return Evaluation(self.table[name, split][int(match.group(1))], 1, 0, "", 0)


def _meta(runner: TableRunner, repeats: int) -> MetaUtility:
    return MetaUtility(runner, SimulatedTask(), repeats, runner.budgets, executor=InlineExecutor())


def _decide(rule: str, candidate: Sequence[float], incumbent: Sequence[float], bar: float = 0.5,
            repeats: int = 3, max_repeats: int = 12) -> tuple[TableRunner, bool, str, int]:
    runner = TableRunner({("candidate", "val"): candidate, ("incumbent", "val"): incumbent})
    config = RunConfig(repeats=repeats, max_repeats=max_repeats, accept=rule)  # type: ignore[arg-type]
    decision = decide(config, _meta(runner, repeats), improver("candidate"), improver("incumbent"), bar,
                      "t1/eval/val")
    return runner, decision.adopted, decision.reason, decision.val_runs


# --- best ----------------------------------------------------------------------------------------


def test_best_rule_keeps_the_incumbent_on_a_tie() -> None:
    _, adopted, reason, runs = _decide("best", [0.4, 0.5, 0.6], [], bar=0.5)
    assert not adopted and runs == 3
    assert reason == "kept incumbent: val 0.5000 <= incumbent's bar 0.5000"
    _, adopted, reason, _ = _decide("best", [0.4, 0.5, 0.6], [], bar=0.499)
    assert adopted and reason == "adopted: val 0.5000 > incumbent's bar 0.4990"


def test_paper_rule_rejects_only_a_zero() -> None:
    assert not _decide("paper", [0.0, 0.0, 0.0], [], bar=0.9)[1]
    assert _decide("paper", [0.0, 0.0, 0.01], [], bar=0.9)[1]


# --- paired and sequential -----------------------------------------------------------------------


def test_paired_rule_runs_candidate_and_incumbent_on_the_same_tags_candidate_first() -> None:
    runner, adopted, _, runs = _decide("paired", [0.9, 0.8, 0.9], [0.5, 0.5, 0.5])
    assert adopted and runs == 6
    tags = {name: [tag for who, tag in runner.improved if who == name] for name in ("candidate", "incumbent")}
    assert sorted(tags["candidate"]) == sorted(tags["incumbent"]) == [f"t1/eval/val/r{i}" for i in range(3)]
    # The candidate's runs come first, so the incumbent reads the candidate's cached LM answers.
    assert [who for who, _ in runner.improved] == ["candidate"] * 3 + ["incumbent"] * 3


def test_sequential_looks_are_every_repeats_pairs_with_alpha_in_proportion() -> None:
    assert sequential_looks(3, 12) == [(3, pytest.approx(0.005)), (6, pytest.approx(0.01)),
                                       (9, pytest.approx(0.015)), (12, pytest.approx(0.02))]
    assert sequential_looks(4, 10) == [(4, pytest.approx(ALPHA * 4 / 22)), (8, pytest.approx(ALPHA * 8 / 22)),
                                       (10, pytest.approx(ALPHA * 10 / 22))]
    assert sequential_looks(1, 1) == [(1, ALPHA)]


def test_sequential_rule_uses_each_looks_own_alpha() -> None:
    # Differences 0.1, 0.2, 0.3 (twice): after 3 pairs the bound with t(0.995, 2) = 9.925 is below 0
    # (it would be above 0 with the undivided 5%: 0.2 - 2.920 * 0.0577 = +0.031), so the rule looks
    # again; after 6 pairs t(0.99, 5) = 3.365 gives 0.2 - 3.365 * 0.0365 = +0.0771 > 0: adopted.
    diffs = [0.1, 0.2, 0.3, 0.1, 0.2, 0.3]
    runner, adopted, reason, runs = _decide("sequential", [0.5 + d for d in diffs] + [0.5] * 6, [0.5] * 12)
    assert adopted and runs == 12
    assert "99.0% lower bound +0.0771 > 0" in reason and "12 val runs (6 pairs" in reason
    assert sorted(tag for who, tag in runner.improved if who == "incumbent") == sorted(
        f"t1/eval/val/r{i}" for i in range(6))


def test_one_pair_has_no_spread_so_only_the_last_look_adopts_on_it() -> None:
    # repeats=1: the paired rule is d_1 > 0; the sequential rule may not adopt on one pair before its
    # last look (no standard error yet), and adopts at 2 equal pairs (a spread of 0).
    _, adopted, reason, runs = _decide("paired", [0.6], [0.5], repeats=1)
    assert adopted and runs == 2 and "± n/a" in reason
    assert not _decide("paired", [0.5], [0.5], repeats=1)[1]
    _, adopted, reason, runs = _decide("sequential", [0.7, 0.7, 0.7], [0.5] * 3, repeats=1, max_repeats=3)
    assert adopted and runs == 4 and "4 val runs (2 pairs" in reason


def test_sequential_rule_stops_at_the_first_look_without_a_sign_of_improvement() -> None:
    _, adopted, reason, runs = _decide("sequential", [0.5, 0.4, 0.6] * 4, [0.5] * 12)
    assert not adopted and runs == 6 and "no sign of improvement" in reason and "99.5% lower bound" in reason


def test_sequential_rule_gives_up_at_the_cap() -> None:
    # A positive mean that never clears its bound: 0.02 on average with a spread of 0.3.
    candidate = [0.5 + d for d in (0.32, -0.28, 0.02) * 4]
    _, adopted, reason, runs = _decide("sequential", candidate, [0.5] * 12)
    assert not adopted and runs == 24 and "at the cap of 12 pairs" in reason and "98.0% lower bound" in reason


# --- estimates -----------------------------------------------------------------------------------


def test_the_meta_utility_scores_its_inner_runs_on_train() -> None:
    runner = TableRunner({("candidate", "train"): [0.2, 0.4], ("candidate", "val"): [0.9, 0.9]})
    meta = _meta(runner, 2)
    assert meta(improver("candidate"), "t1/improve/u0") == pytest.approx(0.3)  # the train scores' mean
    assert runner.evaluated == [("t1/improve/u0/r0/train", "train"), ("t1/improve/u0/r1/train", "train")]
    assert meta.estimate(improver("candidate"), "t1/eval/val", ("val",))["val"].mean == pytest.approx(0.9)
    # Whatever split an estimate reports, the improver inside each run optimised the train utility.
    assert runner.utility_splits == ["train"] * 4
    assert TaskUtility(runner, SimulatedTask(), "val").split == "val"


def test_a_run_that_returns_nothing_scores_zero_and_counts() -> None:
    meta = _meta(TableRunner({}), 3)
    scores = meta.estimate(improver("broken"), "t1/eval/val", ("val", "test"))
    assert scores["val"].scores == scores["test"].scores == (0.0, 0.0, 0.0) and scores["val"].mean == 0.0
    assert meta(improver("broken"), "t1/improve/u0") == 0.0


def test_test_estimates_never_share_a_tag_with_val() -> None:
    table: dict[tuple[str, Split], Sequence[float]] = {
        (name, split): [0.5 + 0.01 * i for i in range(12)] for name in ("seed", "candidate") for split in ("val",
                                                                                                     "test")}
    runner = TableRunner(table)
    rows = run_loop(runner, SimulatedTask(), RunConfig(iterations=2, repeats=3), runner.recorder,
                    executor=InlineExecutor())
    assert len(rows) == 3
    val = {tag for tag, split in runner.evaluated if split == "val"}
    test = {tag for tag, split in runner.evaluated if split == "test"}
    assert val and test and not {tag.rsplit("/", 1)[0] for tag in val} & {tag.rsplit("/", 1)[0] for tag in test}
    assert test == {f"t{t}/eval/test/r{i}/test" for t in range(3) for i in range(3)}
    assert all(re.fullmatch(r"t\d/eval/val/r\d+/val", tag) for tag in val)


def _row(t: int, candidate: int | None, incumbent: int, val: float | None, accepted: bool) -> Iteration:
    return Iteration(t=t, candidate_id=candidate, incumbent_id=incumbent, val=val, val_se=None, test=val, test_se=None,
                     accepted=accepted, reason="")


def test_resume_keeps_the_bar_of_the_step_that_adopted_the_incumbent() -> None:
    history = [_row(0, 1, 1, 0.5, True), _row(1, 2, 1, 0.9, False), _row(2, None, 1, None, False)]
    assert LoopState.from_history(history) == LoopState(3, 1, 0.5)
    history.append(_row(3, 3, 3, 0.7, True))
    assert LoopState.from_history(history) == LoopState(4, 3, 0.7)
    history.append(_row(4, 4, 3, 0.2, False))
    assert LoopState.from_history(history) == LoopState(5, 3, 0.7)
    assert LoopState.from_history([]) is None


class StepRunner(TableRunner):
    """A ``TableRunner`` whose step ``t`` proposes improver ``proposals[t]`` (None: the run returns nothing)."""

    def __init__(self, table: dict[tuple[str, Split], Sequence[float]], proposals: dict[int, str | None]) -> None:
        super().__init__(table)
        self.proposals = proposals

    def improve(self, improver: str, initial_solution: str, utility: Utility, tag: str) -> ImproverRun:
        if isinstance(utility, MetaUtility):
            name = self.proposals[int(tag.split("/")[0].removeprefix("t"))]
            if name is None:
                return ImproverRun(None, "the improver raised", 1, 0)
            return ImproverRun(globals()["improver"](name), "", 1, 0)
        return super().improve(improver, initial_solution, utility, tag)


def test_resume_after_any_step_continues_exactly_as_the_live_loop() -> None:
    # best rule, one repeat: seed 0.5; a 0.7 adopted; b 0.6 rejected; no candidate; c 0.65 rejected
    # (it would beat a bar moved to b's 0.6); d 0.8 adopted.
    vals = {"seed": 0.5, "a": 0.7, "b": 0.6, "c": 0.65, "d": 0.8}
    table: dict[tuple[str, Split], Sequence[float]] = {
        (name, split): [val] for name, val in vals.items() for split in ("val", "test")}
    runner = StepRunner(table, {1: "a", 2: "b", 3: None, 4: "c", 5: "d"})
    config = RunConfig(iterations=5, repeats=1, accept="best")
    live = run_loop(runner, SimulatedTask(), config, runner.recorder, executor=InlineExecutor())
    assert [row.accepted for row in live] == [True, True, False, False, False, True]
    seed, a, d = live[0].incumbent_id, live[1].incumbent_id, live[5].incumbent_id
    assert [LoopState.from_history(live[:k]) for k in range(1, 7)] == [
        LoopState(1, seed, 0.5), LoopState(2, a, 0.7), LoopState(3, a, 0.7), LoopState(4, a, 0.7),
        LoopState(5, a, 0.7), LoopState(6, d, 0.8)]
    assert [row.reason.rsplit(" ", 1)[-1] for row in live[4:]] == ["0.7000", "0.7000"]
    # Killed after any step and resumed from what was stored, the loop decides every later step as the
    # live loop did: the same incumbents, the same bars, the same rows.
    for k in range(1, 6):
        assert run_loop(runner, SimulatedTask(), config, runner.recorder, live[:k], executor=InlineExecutor()) == live
