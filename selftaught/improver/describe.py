"""The grey-box description of the meta-utility, shown to an improver that improves improvers.

It tells the LM what is averaged and under which budgets, not which tasks are used, so the
improver cannot overfit to the downstream instances (the paper's design).
"""

from __future__ import annotations

from selftaught.config import Budgets

__all__ = ["meta_description"]


def meta_description(repeats: int, budgets: Budgets) -> str:
    """Python-like pseudo-code of the meta-utility for ``utility.str``."""
    return f'''\
from downstream import sample_task  # hidden: a downstream task, its utility and a starting solution

def meta_utility(improver_source: str) -> float:
    """Scores an improver: how good are the solutions it produces on downstream tasks?

    The improver source must define
        improve_algorithm(initial_solution: str, utility, language_model) -> str
    Each of {repeats} runs starts from a downstream task's initial solution with fresh budgets:
      - utility(solution_str) -> float in [0, 1]; utility.str describes it; it may be called
        at most utility.budget = {budgets.utility_calls} times per run (more calls raise an error);
      - language_model.batch_prompt(expertise, messages, temperature) -> list[str] and
        language_model.prompt(expertise, message, n_responses, temperature) -> list[str];
        at most language_model.budget = {budgets.lm_calls} calls per run, each asking for at most
        language_model.max_responses_per_call = {budgets.responses_per_call} responses.
    A run that raises, exceeds {budgets.improver_timeout_s:.0f} s or returns no string scores 0.
    """
    scores = []
    for _ in range({repeats}):
        task = sample_task()
        solution = run_improver(improver_source, task.initial_solution, task.utility, budgets="fresh")
        scores.append(task.held_out_utility(solution))  # instances the improver never saw
    return sum(scores) / len(scores)
'''
