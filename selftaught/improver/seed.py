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
    """Return the largest fenced code block in text, or None.

    Fences nest: a fence line with a language tag opens a block, a bare fence closes the innermost
    one (or opens a block at top level), so code that itself holds fenced text survives whole.
    A block left open at the end of the text (a truncated answer) still counts.
    """
    blocks, current, depth = [], [], 0
    for line in text.splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            opening = fence != "```" or depth == 0
            depth += 1 if opening else -1
            if depth == 1 and opening:
                current = []
                continue
            if depth == 0:
                blocks.append("\\n".join(current))
                continue
        if depth > 0:
            current.append(line)
    if depth > 0:
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
fenced Python code block."""
    n_samples = min(language_model.max_responses_per_call, utility.budget)
    answers = language_model.batch_prompt(expertise, [message] * n_samples, temperature=0.7)
    candidates = [code for code in map(extract_code, answers) if code]
    if not candidates:
        return initial_solution
    return max(candidates, key=utility)
'''
