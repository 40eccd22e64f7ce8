"""Applying an improver once and scoring it over tasks through a real broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from selftaught.experiments import improve_once, normalised_gain, score_improver
from selftaught.experiments.tables import improve_rich, score_rich
from selftaught.improver import SEED_IMPROVER
from selftaught.tasks import get_task
from tests.experiments.conftest import Wired, good_when_hinted
from tests.programs.lpn import hinted_improver

pytestmark = pytest.mark.slow


def test_improve_once_scores_before_and_after_on_val_and_test(wire: Callable[..., Wired]) -> None:
    wired = wire(good_when_hinted)
    result = improve_once(wired.broker, get_task("lpn"), hinted_improver(SEED_IMPROVER), "improve")
    assert result.solution is not None and result.reason == ""
    assert (result.lm_calls, result.utility_calls) == (1, 2)
    assert result.test > result.initial_test + 0.3 and result.val > 0.9
    assert result.program_id is not None and wired.store.program_source(result.program_id) == result.solution
    splits = {row[0] for row in wired.store._db.execute("SELECT split FROM evaluations")}
    assert splits == {"train", "val", "test"}
    assert result.to_json()["improved"]["test"] == result.test
    assert improve_rich(result).row_count == 2


def test_improve_once_reports_a_failed_improver(wire: Callable[..., Wired]) -> None:
    wired = wire(good_when_hinted)
    result = improve_once(wired.broker, get_task("lpn"), "def improve_algorithm(s, u, lm):\n    1 / 0\n", "bad")
    assert result.solution is None and "ZeroDivisionError" in result.reason
    assert (result.val, result.test) == (0.0, 0.0) and result.initial_test > 0.0


def test_score_improver_normalises_each_task_against_its_initial_solution(wire: Callable[..., Wired]) -> None:
    wired = wire(good_when_hinted)
    tasks = [get_task("lpn"), get_task("parity")]
    score = score_improver(wired.broker, tasks, hinted_improver(SEED_IMPROVER), 2, "score", name="hinted")
    assert [row.task for row in score.tasks] == ["lpn", "parity"]
    for row in score.tasks:
        assert len(row.raw.scores) == 2 and len(row.initial.scores) == 2
        assert row.normalised.scores == pytest.approx(
            tuple(normalised_gain(s, row.initial.mean) for s in row.raw.scores))
    assert score.mean_normalised == pytest.approx(sum(r.normalised.mean for r in score.tasks) / 2)
    assert score.mean_normalised > 0.5  # the good parity solver solves both tasks
    doc = score.to_json()
    assert doc["improver"] == "hinted" and doc["split"] == "test" and len(doc["tasks"]) == 2
    assert score_rich(score).row_count == 3
