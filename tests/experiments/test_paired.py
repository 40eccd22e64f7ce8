"""The paired acceptance rule: the bound's math, and the loop re-scoring the incumbent on the same repeats."""

from __future__ import annotations

import statistics
from collections.abc import Callable

import pytest

from selftaught.config import RunConfig
from selftaught.improver import SEED_IMPROVER
from selftaught.records import LMRequest
from selftaught.stats import t_quantile
from selftaught.stop import paired_bound, run_loop
from selftaught.tasks import get_task
from tests.experiments.conftest import SMALL, Wired, good_when_hinted
from tests.programs.lpn import fenced, hinted_improver


def test_paired_bound_uses_students_t_on_the_differences() -> None:
    candidate, incumbent = [0.8, 0.7, 0.9, 0.6, 0.75], [0.5, 0.6, 0.55, 0.5, 0.6]
    diffs = [c - i for c, i in zip(candidate, incumbent, strict=True)]
    mean, se, lower = paired_bound(candidate, incumbent)
    assert mean == pytest.approx(statistics.mean(diffs))
    assert se == pytest.approx(statistics.stdev(diffs) / 5**0.5)
    assert se is not None and lower == pytest.approx(mean - 2.132 * se, abs=1e-4)  # t(0.95, df=4)
    many = paired_bound([0.1 * (i % 3) for i in range(40)], [0.0] * 40)
    assert many[1] is not None and many[2] == pytest.approx(many[0] - t_quantile(0.95, 39) * many[1])
    assert t_quantile(0.95, 39) == pytest.approx(1.685, abs=1e-3)
    assert paired_bound([0.6], [0.5])[2] == pytest.approx(0.1)  # one repeat: the difference itself
    with pytest.raises(ValueError):
        paired_bound([0.5, 0.6], [0.5])


def test_paired_bound_is_above_zero_only_for_a_reliable_improvement() -> None:
    incumbent = [0.5, 0.6, 0.4]
    assert paired_bound([0.6, 0.7, 0.5], incumbent)[2] > 0.0  # +0.1 every time: no spread at all
    noisy = [0.9, 0.5, 0.5]  # a higher mean, but from one lucky repeat
    assert sum(noisy) > sum(incumbent) and paired_bound(noisy, incumbent)[2] <= 0.0


def _script(improver: str) -> Callable[[LMRequest, int], str]:
    def answer(request: LMRequest, index: int) -> str:
        if "def improve_algorithm" in request.user:
            return fenced(improver)
        return good_when_hinted(request, index)

    return answer


@pytest.mark.slow
@pytest.mark.parametrize(("improver", "adopted"), [(hinted_improver(SEED_IMPROVER), True), (SEED_IMPROVER, False)])
def test_loop_scores_the_incumbent_on_the_candidates_repeats(
    wire: Callable[..., Wired], improver: str, adopted: bool
) -> None:
    wired = wire(_script(improver))
    config = RunConfig(task="lpn", iterations=1, repeats=2, accept="paired", budgets=SMALL)
    rows = run_loop(wired.broker, get_task("lpn"), config, wired.broker.recorder)
    step = rows[1]
    assert step.accepted is adopted and "(paired)" in step.reason
    # Both improvers were run on the same repeat tags, so each pair shares its sandbox seeds.
    db_rows = wired.store._db.execute(
        "SELECT tag, COUNT(*) FROM evaluations WHERE run_id=? AND tag LIKE 't1/eval/val/r%/val' GROUP BY tag",
        (wired.run_id,),
    ).fetchall()
    assert sorted(db_rows) == [("t1/eval/val/r0/val", 2), ("t1/eval/val/r1/val", 2)]
    # The candidate's test estimate comes from runs of its own: no run scored on val was scored on test.
    test_tags = [tag for (tag,) in wired.store._db.execute(
        "SELECT tag FROM evaluations WHERE run_id=? AND split='test' AND tag LIKE 't1/%'", (wired.run_id,))]
    assert sorted(test_tags) == ["t1/eval/test/r0/test", "t1/eval/test/r1/test"]
