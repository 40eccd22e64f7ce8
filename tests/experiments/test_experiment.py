"""Aggregating independent STOP runs per step, with standard errors across runs."""

from __future__ import annotations

import math

import pytest

from selftaught.experiments import aggregate, experiment, from_store
from selftaught.experiments.experiment import StoredRun
from selftaught.experiments.tables import experiment_rich
from selftaught.records import Iteration
from selftaught.store import RunStore


def _run(run_id: str, steps: list[tuple[float | None, bool]]) -> StoredRun:
    """Step t proposes program t+1 with test score ``steps[t][0]`` (None: no candidate)."""
    rows, incumbent = [], 1
    for t, (test, accepted) in enumerate(steps):
        candidate = None if test is None else t + 1
        if accepted and candidate is not None:
            incumbent = candidate
        rows.append(Iteration(t=t, candidate_id=candidate, incumbent_id=incumbent, val=test, val_se=0.0, test=test,
                              test_se=0.0, accepted=accepted and candidate is not None))
    return StoredRun(run_id, tuple(rows))


RUNS = [
    _run("a", [(0.5, True), (0.7, True), (0.6, False)]),
    _run("b", [(0.4, True), (0.3, False), (None, False)]),
    _run("c", [(0.6, True), (0.8, True)]),  # stopped after step 1
]


def test_incumbent_and_candidate_means_per_step() -> None:
    table = aggregate(RUNS)
    assert [row.t for row in table.steps] == [0, 1, 2]
    assert [row.runs for row in table.steps] == [3, 3, 2]
    step0, step1, step2 = table.steps
    assert step0.incumbent is not None and step0.incumbent.mean == pytest.approx(0.5)
    assert step0.incumbent.se == pytest.approx(0.1 / math.sqrt(3))
    # After step 1: a adopted 0.7, b kept its seed (0.4), c adopted 0.8.
    assert step1.incumbent is not None and step1.incumbent.scores == pytest.approx((0.7, 0.4, 0.8))
    assert step1.candidate is not None and step1.candidate.scores == pytest.approx((0.7, 0.3, 0.8))
    assert step1.adopted == 2
    # Step 2: a rejected 0.6 and keeps 0.7; b proposed nothing and keeps 0.4.
    assert step2.incumbent is not None and step2.incumbent.scores == pytest.approx((0.7, 0.4))
    assert step2.candidate is not None and step2.candidate.scores == pytest.approx((0.6,))
    assert step2.adopted == 0


def test_gains_json_and_table() -> None:
    table = aggregate(RUNS, threshold=0.03)
    assert table.gains == pytest.approx((0.2, 0.0, 0.2))
    assert table.gained == 2
    doc = table.to_json()
    assert doc["gained"] == 2 and doc["steps"][1]["incumbent_test"]["n"] == 3
    assert doc["steps"][2]["candidate_test"]["mean"] == pytest.approx(0.6)
    assert experiment_rich(table).row_count == 3


def test_experiment_runs_each_seed_and_from_store_reads_stored_runs() -> None:
    seen: list[int] = []

    def run_one(seed: int) -> StoredRun:
        seen.append(seed)
        return RUNS[seed - 10]

    table = experiment(run_one, [10, 11, 12])
    assert seen == [10, 11, 12] and table.run_ids == ("a", "b", "c")

    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    seed = store.add_program(run_id, "improver", "# seed\n")
    store.add_iteration(run_id, Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.5, val_se=0.0, test=0.45,
                                          test_se=0.0, accepted=True))
    [stored] = from_store(store, [run_id])
    assert aggregate([stored]).steps[0].incumbent is not None
