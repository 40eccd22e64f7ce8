'''Baseline improvers, shipped as source text like the seed and run through the same broker.

They get the same proxies, budgets and sandbox as any improver, so a comparison with STOP's
improvers is like for like. Each keeps the largest fenced code block of an answer (the seed's
``extract_code``, copied into its text) and falls back to the initial solution when there is none.

- ``COT_IMPROVER`` (chain of thought, the paper's CoT baseline): one LM call, one sample, asked to
  think step by step and then give the code; no utility calls.
- ``GREEDY_IMPROVER`` (the paper's greedy iterative improver): score the initial solution, then
  spend every LM call asking for ``min(max_responses_per_call, utility calls left)`` improvements
  of the *current best* (with its score in the prompt), score each new one and keep the best; the
  incumbent stays unless a candidate beats it. With the paper's budgets 1 + 4 x 6 = 25 utility calls.
- ``random_sampling_improver(...)`` (compute-matched random sampling): independent samples from
  the *initial* prompt only (no feedback, no iteration), the best by the utility wins. What
  "compute-matched" means exactly: it spends (at most) the same number of LM calls, LM samples
  (completions) and utility calls as the improver it is compared with, measured as that improver's
  mean per run rounded up (``Usage`` / ``measure_usage``); without numbers it spends the full
  budgets (every LM call with ``max_responses_per_call`` samples, every utility call), which is
  what any improver is allowed. Samples are spread evenly over the calls; distinct candidates are
  scored in sampling order until the utility calls run out; if one is left after all candidates,
  the initial solution is scored too and competes (ties go to the earlier candidate).
'''

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from selftaught.errors import ConfigError
from selftaught.improver import SEED_IMPROVER

__all__ = ["BASELINES", "COT_IMPROVER", "GREEDY_IMPROVER", "Usage", "baseline_source", "random_sampling_improver"]


def _seed_function(name: str) -> str:
    """The source of one top-level function of the seed improver (so the parser is not copied by hand)."""
    tree = ast.parse(SEED_IMPROVER)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            segment = ast.get_source_segment(SEED_IMPROVER, node)
            if segment:
                return segment
    raise RuntimeError(f"the seed improver defines no {name}()")  # a packaging error, not a user error


_EXTRACT = _seed_function("extract_code")

_PROMPT = '''

EXPERTISE = (
    "You are a seasoned computer-science researcher and Python programmer "
    "who is especially good at making algorithms better."
)


def improvement_prompt(solution, utility, note=""):
    """The request to improve ``solution``, showing the utility's description."""
    return f"""Here is a solution to improve:
```python
{solution}
```

It is scored by the following utility (a simplified description of the real one):
```python
{utility.str}
```
{note}
Write an improved version of the solution. Keep the same function name and signature.
Give the complete improved code in a single fenced Python code block."""
'''

COT_IMPROVER = _EXTRACT + _PROMPT + '''

def improve_algorithm(initial_solution, utility, language_model):
    """Chain of thought: one LM call, one sample, reasoning step by step before the code."""
    note = ("Think step by step: first explain what limits the current solution, then reason about "
            "a better approach, and only then write the code.")
    answers = language_model.prompt(EXPERTISE, improvement_prompt(initial_solution, utility, note), 1, 0.7)
    code = extract_code(answers[0]) if answers else None
    return code or initial_solution
'''

GREEDY_IMPROVER = _EXTRACT + _PROMPT + '''

def improve_algorithm(initial_solution, utility, language_model):
    """Greedy iterative improvement: improve the current best with every LM call; keep the best."""
    best, best_score = initial_solution, utility(initial_solution)
    scores = {initial_solution: best_score}
    utility_left = utility.budget - 1
    for _ in range(language_model.budget):
        n = min(language_model.max_responses_per_call, utility_left)
        if n < 1:
            break
        note = f"The current solution scores {best_score:.4f}; beat it."
        message = improvement_prompt(best, utility, note)
        for answer in language_model.batch_prompt(EXPERTISE, [message] * n, temperature=0.7):
            code = extract_code(answer)
            if not code or code in scores or utility_left < 1:
                continue
            utility_left -= 1
            scores[code] = utility(code)
            if scores[code] > best_score:
                best, best_score = code, scores[code]
    return best
'''

_RANDOM = _EXTRACT + _PROMPT + '''

def improve_algorithm(initial_solution, utility, language_model):
    """Random sampling: independent samples from the initial prompt; the utility picks the best."""
    per_call = language_model.max_responses_per_call
    calls = language_model.budget if LM_CALLS is None else min(LM_CALLS, language_model.budget)
    samples = calls * per_call if SAMPLES is None else min(SAMPLES, calls * per_call)
    utility_left = utility.budget if UTILITY_CALLS is None else min(UTILITY_CALLS, utility.budget)
    message = improvement_prompt(initial_solution, utility)
    candidates = []
    for call in range(calls):
        n = samples // calls + (1 if call < samples % calls else 0)
        if n < 1:
            continue
        for answer in language_model.batch_prompt(EXPERTISE, [message] * n, temperature=0.7):
            code = extract_code(answer)
            if code and code not in candidates:
                candidates.append(code)
    scored = []
    for code in candidates[:utility_left]:
        scored.append((utility(code), -len(scored), code))
    if utility_left > len(candidates):
        scored.append((utility(initial_solution), -len(scored), initial_solution))
    if not scored:
        return candidates[0] if candidates else initial_solution
    return max(scored)[2]
'''


@dataclass(frozen=True)
class Usage:
    """What an improver spends per run (means over runs): LM calls, LM samples, utility calls."""

    lm_calls: float
    samples: float
    utility_calls: float

    def to_json(self) -> dict[str, float]:
        return {"lm_calls": self.lm_calls, "samples": self.samples, "utility_calls": self.utility_calls}


def random_sampling_improver(usage: Usage | None = None) -> str:
    """The compute-matched random-sampling improver: spends at most ``usage`` rounded up, or the full budgets."""
    limits: dict[str, int | None]
    if usage is None:
        limits = {"LM_CALLS": None, "SAMPLES": None, "UTILITY_CALLS": None}
    else:
        values = (usage.lm_calls, usage.samples, usage.utility_calls)
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ConfigError(f"usage to match must be non-negative numbers, not {usage}")
        calls, samples, utility = (math.ceil(v) for v in values)
        limits = {"LM_CALLS": max(calls, 1), "SAMPLES": max(samples, 1), "UTILITY_CALLS": utility}
    header = "".join(f"{name} = {value!r}\n" for name, value in limits.items())
    return f"# compute-matched random sampling; None = the full budget\n{header}\n{_RANDOM}"


BASELINES = ("cot", "greedy", "random")


def baseline_source(kind: str, usage: Usage | None = None) -> str:
    """The source of baseline ``kind`` (``usage`` matters only to ``random``)."""
    if kind == "cot":
        return COT_IMPROVER
    if kind == "greedy":
        return GREEDY_IMPROVER
    if kind == "random":
        return random_sampling_improver(usage)
    raise ConfigError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
