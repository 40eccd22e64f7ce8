"""The seed improver I_0, shipped as source text: the engine sends it to a sandbox, never imports it.

Behaviour follows the paper's seed: one batched LM call asking for
``min(max_responses_per_call, utility.budget)`` samples of the same message at temperature 0.7,
keep the largest fenced code block of each answer, return the candidate the utility scores
highest. The incumbent is not a candidate, so a step can regress. The seed carries its own copy of
``extract_code`` (the same text the sandbox's ``helpers`` module offers), so the LM sees and may
improve how answers are parsed. One difference: when no
answer holds any code, the initial solution comes back unchanged instead of an empty string.
"""

from __future__ import annotations

from selftaught.proxy.helpers import EXTRACT_CODE_SOURCE

__all__ = ["SEED_IMPROVER"]

SEED_IMPROVER = EXTRACT_CODE_SOURCE + "\n\n" + '''\
def improve_algorithm(initial_solution, utility, language_model):
    """Ask the language model for several improvements and keep the one the utility likes best."""
    expertise = (
        "You are a seasoned computer-science researcher and Python programmer "
        "who is especially good at making algorithms better."
    )
    message = f"""Here is a solution to improve:
```python
{initial_solution}
```

It is scored by the following utility (a simplified description of the real one):
```python
{utility.str}
```

Write an improved version of the solution. Be inventive, but respect the constraints above and
keep the same function name and signature. The central change should be new and non-trivial.
First state your idea in a few sentences, then give the complete improved code in a single
fenced Python code block."""
    n_samples = min(language_model.max_responses_per_call, utility.budget)
    answers = language_model.batch_prompt(expertise, [message] * n_samples, temperature=0.7)
    candidates = [code for code in map(extract_code, answers) if code]
    if not candidates:
        return initial_solution
    return max(candidates, key=utility)
'''
