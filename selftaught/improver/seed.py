"""The seed improver I_0, shipped as source text: the engine sends it to a sandbox, never imports it.

Behaviour follows the paper's seed: one batched LM call asking for
``min(max_responses_per_call, utility.budget)`` samples of the same message at temperature 0.7,
keep the largest fenced code block of each answer, return the candidate the utility scores
highest. The incumbent is not a candidate, so a step can regress. One difference: when no
answer holds any code, the initial solution comes back unchanged instead of an empty string.
"""

from __future__ import annotations

__all__ = ["SEED_IMPROVER"]

SEED_IMPROVER = '''\
def extract_code(text):
    """Return the largest fenced code block in text (an unclosed last block counts), or None."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    if current:
        blocks.append("\\n".join(current))
    blocks = [block for block in blocks if block.strip()]
    return max(blocks, key=len) if blocks else None


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
```python fenced block."""
    n_samples = min(language_model.max_responses_per_call, utility.budget)
    answers = language_model.batch_prompt(expertise, [message] * n_samples, temperature=0.7)
    candidates = [code for code in map(extract_code, answers) if code]
    if not candidates:
        return initial_solution
    return max(candidates, key=utility)
'''
