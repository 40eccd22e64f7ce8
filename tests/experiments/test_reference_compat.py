"""Improvers written for the paper's reference interface run unchanged on every built-in task.

The improver below is written in the reference code's style (our own text): it reads
``utility.str`` and ``utility.budget``, asks ``language_model.batch_prompt`` for
``max_responses_per_call`` samples and ``language_model.prompt`` for one more, applies
``extract_code`` to a whole list of answers (the reference helper accepts a string or a list),
and returns the candidate ``max(..., key=utility)`` picks.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from selftaught.config import Budgets
from selftaught.meta_utility import TaskUtility
from selftaught.records import LMRequest
from selftaught.tasks import get_task, list_tasks
from tests.experiments.conftest import Wired

pytestmark = pytest.mark.slow

BUDGETS = Budgets(lm_calls=2, responses_per_call=2, utility_calls=3, improver_timeout_s=60)

OWN_HELPER = '''
def extract_code(answers):
    """The largest fenced block of one answer (None if there is none), or of each answer of a list."""
    if isinstance(answers, list):
        return [extract_code(answer) for answer in answers]
    blocks, current, inside = [], [], False
    for line in answers.split("\\n"):
        if line.startswith("```"):
            if inside:
                blocks.append("\\n".join(current))
                current = []
            inside = not inside
        elif inside:
            current.append(line)
    return max(blocks, key=len) if blocks else None
'''

REFERENCE_STYLE = '''
def improve_algorithm(initial_solution, utility, language_model):
    """Asks for improvements of a solution and keeps the one the utility scores highest."""
    role = "You are a careful algorithms engineer who makes programs score better."
    request = f"""Make this solution better:
```python
{initial_solution}
```
It will be scored by:
```python
{utility.str}
```
Reply with the full new solution in a python code block."""
    n_messages = min(language_model.max_responses_per_call, utility.budget)
    answers = language_model.batch_prompt(role, [request] * n_messages, temperature=0.7)
    answers += language_model.prompt(role, request, n_responses=1, temperature=0.4)
    candidates = [code for code in extract_code(answers) if code]
    candidates = candidates[: utility.budget]
    if not candidates:
        return initial_solution
    return max(candidates, key=utility)
'''


def _echo_solution(request: LMRequest, index: int) -> str:
    """Answers with the solution from the prompt's first code block, renamed per sample."""
    solution = request.user.split("```python\n", 1)[1].split("\n```", 1)[0]
    return f"Sure.\n```python\n# variant {index}\n{solution}\n```\n"


@pytest.mark.parametrize("task_name", list_tasks())
def test_reference_style_improver_runs_on_every_task(wire: Callable[..., Wired], task_name: str) -> None:
    wired = wire(_echo_solution, BUDGETS)
    task = get_task(task_name)
    run = wired.broker.improve(OWN_HELPER + REFERENCE_STYLE, task.initial_solution,
                               TaskUtility(wired.broker, task, "train"), f"compat/{task_name}")
    assert run.reason == "" and run.solution is not None
    assert run.lm_calls == 2 and run.utility_calls == 3  # 2 + 1 samples, each scored once
    assert task.initial_solution.strip() in run.solution
    assert 0.0 <= wired.broker.evaluate(run.solution, task, "val", "check").score <= 1.0


def test_from_helpers_import_extract_code_works_in_the_sandbox(wire: Callable[..., Wired]) -> None:
    wired = wire(_echo_solution, BUDGETS)
    task = get_task("lpn")
    run = wired.broker.improve("from helpers import extract_code\n" + REFERENCE_STYLE, task.initial_solution,
                               TaskUtility(wired.broker, task, "train"), "compat/helpers")
    assert run.reason == "" and run.solution is not None
