"""3-SAT, a transfer task of the paper (Table 1).

A solution's ``algorithm(formula)`` gets a formula as a list of clauses, each a list of three
non-zero integer literals (``v`` is variable v, ``-v`` its negation, variables numbered from 1), and
returns an assignment: a list ``a`` of length ``max_var + 1``, where ``max_var`` is the largest
variable in the formula, ``a[v]`` the truth value of variable v and ``a[0]`` ignored (the
reference's convention). Values may be bools, 0/1 or 0.0/1.0.

Instances (preset ``paper``, the reference parameters): ``n ~ U{min_vars..max_vars} = U{5..50}``
variables and ``m = int(ratio n) = 4n`` clauses, planted satisfiable: a hidden assignment is drawn,
then random clauses over three distinct variables with random signs are kept only when the hidden
assignment satisfies them. Splits: ``train`` 20, ``val`` 20, ``test`` 50 instances; ``timeout_s =
0.1`` per call. Preset ``hard``: 100..200 variables at ratio 4.2, where 2^n assignments are far out
of reach and a naive random walk runs out of time; an incremental WalkSAT solves them.

Score of one instance: 1 if the assignment satisfies every clause, else 0. Reference defects fixed:
a ``None`` (or any other invalid) return scores that instance 0 and never the whole call, a failure
scores 0 rather than 0.01, and the scorer never looks at the clock (the time limit is the
sandbox's). The initial solution is a plain random walk (flip a random variable of a random
unsatisfied clause, at most 50 flips, so it ends well inside the limit) that returns ``None`` when
it gives up (own code, in the spirit of the paper's WalkSAT-style seed, whose 1000 flips with a
greedy step often ran out of time).

Reference scoring (``--scoring reference``, the paper's reference scorer): a satisfied formula
scores 1 and an unsatisfied one (or a time-out) 0.01; any other error or a rejected answer
(``None`` included) makes the whole call 0.01; the mean is floored at 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from selftaught.records import Instance, Score, Split
from selftaught.tasks.common import Invalid, SeededTask, as_binary_vector, fill, plain
from selftaught.tasks.params import Param

__all__ = ["ThreeSATTask", "satisfies", "three_sat_instance"]

_DESCRIPTION = '''\
The utility scores a solution (Python source) that defines `algorithm(formula)` for 3-SAT. It
works like this sketch; the real instances are fixed and hidden, and the utility returns the mean
score over them:

    import random

    def utility(solution_source: str) -> float:
        """Fraction of the formulas that `algorithm` satisfies, in [0, 1]."""
        algorithm = define(solution_source)["algorithm"]
        scores = []
        for instance in instances:  # a fixed set of satisfiable formulas, each drawn like this:
            n = random.randint({min_vars}, {max_vars})  # variables 1..n
            hidden = [None] + [random.random() < 0.5 for _ in range(n)]
            formula = []  # int({ratio} n) clauses of three literals: v means variable v, -v its negation
            while len(formula) < int({ratio} * n):
                clause = [v if random.random() < 0.5 else -v for v in random.sample(range(1, n + 1), 3)]
                if any(hidden[abs(lit)] == (lit > 0) for lit in clause):
                    formula.append(clause)
            try:
                # an assignment: a list of length max_var + 1 (max_var = the largest variable in
                # the formula), assignment[v] = True/False (or 1/0) for variable v, assignment[0] unused
                assignment = algorithm(formula)  # <time limit per formula>
            except Exception:  # errors and time-outs score 0
                scores.append(0.0)
                continue
            # 1 if every clause holds; 0 otherwise, and 0 for None or a malformed assignment
            ok = all(any(assignment[abs(lit)] == (lit > 0) for lit in clause) for clause in formula)
            scores.append(1.0 if ok else 0.0)
        return sum(scores) / len(scores)
'''

_INITIAL_SOLUTION = '''\
import random


def algorithm(formula):
    """Random walk: flip a random variable of an unsatisfied clause until all hold, or give up."""
    n = max(abs(lit) for clause in formula for lit in clause)
    assignment = [False] * (n + 1)
    for _ in range(50):
        unsatisfied = [c for c in formula if not any(assignment[abs(lit)] == (lit > 0) for lit in c)]
        if not unsatisfied:
            return assignment
        variable = abs(random.choice(random.choice(unsatisfied)))
        assignment[variable] = not assignment[variable]
    return None
'''


def satisfies(formula: list[list[int]], assignment: list[int]) -> bool:
    """Whether ``assignment`` (indexed by variable, entry 0 unused) satisfies every clause."""
    return all(any(assignment[abs(lit)] == (lit > 0) for lit in clause) for clause in formula)


def three_sat_instance(rng: np.random.Generator, min_vars: int = 5, max_vars: int = 50,
                       ratio: float = 4.0) -> Instance:
    """One planted-satisfiable instance: args ``(formula,)``; answer the hidden assignment."""
    n = int(rng.integers(min_vars, max_vars + 1))
    hidden = [0] + rng.integers(0, 2, size=n).tolist()
    formula: list[list[int]] = []
    while len(formula) < int(ratio * n):
        variables = (rng.choice(n, size=3, replace=False) + 1).tolist()
        signs = rng.integers(0, 2, size=3).tolist()
        clause = [v if s else -v for v, s in zip(variables, signs, strict=True)]
        if any(hidden[abs(lit)] == (lit > 0) for lit in clause):
            formula.append(clause)
    return Instance(args=(formula,), answer={"hidden": hidden})


class ThreeSATTask(SeededTask):
    """Planted 3-SAT; see the module docstring for parameters and scoring."""

    name = "three_sat"
    initial_solution = _INITIAL_SOLUTION
    split_sizes: dict[Split, int] = {"train": 20, "val": 20, "test": 50}
    schema = (
        Param("min_vars", 5, "fewest variables", 3, 100_000),
        Param("max_vars", 50, "most variables", 3, 100_000),
        Param("ratio", 4.0, "clauses per variable", 0, 10, low_open=True),
        Param("timeout_s", 0.1, "seconds per instance", 0, 600, low_open=True),
    )
    presets = {"paper": {}, "hard": {"min_vars": 100, "max_vars": 200, "ratio": 4.2}}
    reference_note = ("a satisfied formula scores 1, an unsatisfied one or a time-out 0.01; returning None, a "
                      "malformed assignment or raising makes the whole utility 0.01; the mean is floored at 0.01.")

    def check_params(self) -> None:
        self._ordered("min_vars", "max_vars")

    def describe(self) -> str:
        return fill(_DESCRIPTION, min_vars=self.params["min_vars"], max_vars=self.params["max_vars"],
                    ratio=float(self.params["ratio"]), timeout=self.call_timeout_s)

    def generate(self, rng: np.random.Generator) -> Instance:
        p = self.params
        return three_sat_instance(rng, int(p["min_vars"]), int(p["max_vars"]), float(p["ratio"]))

    def raw_score(self, instance: Instance, output: Any) -> float:
        formula: list[list[int]] = instance.args[0]
        max_var = max(abs(lit) for clause in formula for lit in clause)
        output = plain(output)
        if output is None:
            raise Invalid("no assignment (None)")
        if not isinstance(output, list | tuple):
            raise Invalid(f"expected a list of {max_var + 1} truth values, got {type(output).__name__}")
        if len(output) != max_var + 1:
            raise Invalid(f"expected {max_var + 1} entries (entry 0 unused), got {len(output)}")
        assignment = [0] + as_binary_vector(list(output[1:]), max_var)
        return 1.0 if satisfies(formula, assignment) else 0.0

    def reference_score(self, instance: Instance, output: Any) -> Score:
        """The reference scale: 1 if satisfied, else 0.01; a rejected answer 0 (see ``reference_combine``)."""
        scored = self.score(instance, output)
        if scored.reason.startswith("invalid output"):
            return scored
        return Score(1.0 if scored.value == 1.0 else REFERENCE_EPS, scored.reason)

    def reference_combine(self, scores: Sequence[float], failures: Sequence[str]) -> float:
        """The reference: a time-out costs its instance (0.01), any other failure the whole call."""
        if any(failure in ("invalid", "error") for failure in failures):
            return REFERENCE_EPS
        values = [REFERENCE_EPS if failure else score for score, failure in zip(scores, failures, strict=True)]
        return max(sum(values) / len(values), REFERENCE_EPS) if values else REFERENCE_EPS


REFERENCE_EPS = 0.01
