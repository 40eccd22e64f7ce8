"""Per-run budgets are counted in the broker and cannot be exceeded."""

import threading

import pytest

from selftaught.broker import RunBudget
from selftaught.config import Budgets
from selftaught.errors import BudgetExceeded


def test_lm_budget_counts_calls_and_caps_responses() -> None:
    budget = RunBudget(Budgets(lm_calls=2, responses_per_call=3))
    assert budget.take_lm_call(3) == 0
    with pytest.raises(BudgetExceeded, match="at most 3 responses"):
        budget.take_lm_call(4)
    assert budget.take_lm_call(1) == 1
    with pytest.raises(BudgetExceeded, match="LM budget of 2 calls"):
        budget.take_lm_call(1)
    assert budget.lm_calls == 2


def test_utility_budget_holds_under_concurrent_calls() -> None:
    budget = RunBudget(Budgets(utility_calls=25))
    taken: list[int] = []
    refused: list[int] = []

    def hammer() -> None:
        for _ in range(10):
            try:
                taken.append(budget.take_utility_call())
            except BudgetExceeded:
                refused.append(1)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(25))
    assert len(refused) == 80 - 25
