"""Scorer edges the split-level tests miss: exact scores where a one-line slip would shift them."""

from __future__ import annotations

import pytest

from selftaught.records import Instance
from selftaught.tasks import get_task


def test_string_grid_scores_overshooting_the_distance_like_undershooting_it() -> None:
    task = get_task("string_grid")
    instance = Instance(args=("AB", 2), answer=None)
    assert task.score(instance, "AA").value == 1.0  # Hamming 1 + 0 + 1 transitions
    assert task.score(instance, "BA").value == pytest.approx(0.5 - 2 / 12)  # distance 4: 2 too far
    assert task.score(Instance(args=("AB", 4), answer=None), "AB").value == pytest.approx(0.5 - 2 / 12)  # 2 short


def test_maxcut_cutting_every_edge_scores_exactly_one() -> None:
    task = get_task("maxcut")
    square = [[0, 3, 0, 2], [3, 0, 4, 0], [0, 4, 0, 1], [2, 0, 1, 0]]  # a 4-cycle: bipartite
    instance = Instance(args=(square,), answer={"total_weight": 10})
    assert task.score(instance, [0, 1, 0, 1]).value == 1.0
    assert task.score(instance, [0, 0, 1, 1]).value == pytest.approx((2 + 4) / 10)
