"""Budgets of one improver run, counted in the trusted broker where sandboxed code cannot reach."""

from __future__ import annotations

import threading

from selftaught.config import Budgets
from selftaught.errors import BudgetExceeded

__all__ = ["RunBudget"]


class RunBudget:
    """Counts LM calls and utility calls of one improver run; raises once a budget is spent."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self.lm_calls = 0
        self.utility_calls = 0
        self._lock = threading.Lock()

    def take_lm_call(self, responses: int) -> int:
        """Count one LM call asking for ``responses`` samples; returns the call's index."""
        if responses > self.budgets.responses_per_call:
            raise BudgetExceeded(
                f"an LM call may ask for at most {self.budgets.responses_per_call} responses, not {responses}"
            )
        with self._lock:
            if self.lm_calls >= self.budgets.lm_calls:
                raise BudgetExceeded(f"the LM budget of {self.budgets.lm_calls} calls is used up")
            self.lm_calls += 1
            return self.lm_calls - 1

    def take_utility_call(self) -> int:
        """Count one utility call; returns the call's index."""
        with self._lock:
            if self.utility_calls >= self.budgets.utility_calls:
                raise BudgetExceeded(f"the utility budget of {self.budgets.utility_calls} calls is used up")
            self.utility_calls += 1
            return self.utility_calls - 1
