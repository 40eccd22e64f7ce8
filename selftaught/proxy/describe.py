"""The grey-box description of the meta-utility, shown to an improver that improves improvers.

It says what ``meta_utility.MetaUtility`` really computes (one hidden downstream task, ``repeats``
runs with fresh budgets, each returned solution scored on the same training instances the
improver's utility scores, failures counted as 0) and under which budgets, but not which task is
used, so the improver cannot overfit to the downstream instances (the paper's design). It also
names the ``helpers`` module the sandbox offers every improver (``proxy.helpers``) and the calls of
``proxy.remotes``, so it must change with them.
"""

from __future__ import annotations

from selftaught.config import Budgets

__all__ = ["meta_description"]


def meta_description(repeats: int, budgets: Budgets) -> str:
    """Python-like pseudo-code of the meta-utility for ``utility.str``."""
    times = "once" if repeats == 1 else f"{repeats} times, independently,"
    return f'''\
from helpers import extract_code  # importable by every improver: extract_code(answer) returns the
                                  # answer's largest fenced code block (None if it has none); given a
                                  # list of answers it returns a list
from downstream import task  # hidden: a downstream task, its utility and its initial solution

def meta_utility(improver_source: str) -> float:
    """Scores an improver: how good are the solutions it produces on the downstream task?

    The improver source must define
        improve_algorithm(initial_solution: str, utility, language_model) -> str
    It is run {times} on the task's initial solution, each run with fresh budgets:
      - utility(solution_str) -> float in [0, 1]: the mean score over the task's training
        instances; utility.str describes it; it may be called at most utility.budget =
        {budgets.utility_calls} times per run (more calls raise an error);
      - language_model.batch_prompt(expertise, messages, temperature) -> list[str] and
        language_model.prompt(expertise, message, n_responses, temperature) -> list[str];
        at most language_model.budget = {budgets.lm_calls} calls per run, each asking for at most
        language_model.max_responses_per_call = {budgets.responses_per_call} responses.
    What a run returns is scored by that same utility, on the same training instances: an
    instance the solution fails on (an exception, invalid output, over the task's time limit)
    scores 0 for that instance. A run that raises, exceeds {budgets.improver_timeout_s:.0f} s
    (LM waits included) or returns no string scores 0, and still counts in the mean.
    """
    scores = []
    for _ in range({repeats}):
        solution = run_improver(improver_source, task.initial_solution, task.utility, budgets="fresh")
        scores.append(task.utility(solution))  # the training instances the utility above scores
    return sum(scores) / len(scores)
'''
