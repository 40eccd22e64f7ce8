"""3-SAT, a transfer task of the paper (Table 1).

A solution's ``algorithm(formula)`` gets a formula as a list of clauses, each a list of three
non-zero integer literals (``v`` is variable v, ``-v`` its negation, variables numbered from 1), and
returns an assignment: a list ``a`` of length ``max_var + 1``, where ``max_var`` is the largest
variable in the formula, ``a[v]`` the truth value of variable v and ``a[0]`` ignored (the
reference's convention). Values may be bools, 0/1 or 0.0/1.0.

Instances (reference parameters): ``n ~ U{5..50}`` variables and ``m = 4n`` clauses, planted
satisfiable: a hidden assignment is drawn, then random clauses over three distinct variables with
random signs are kept only when the hidden assignment satisfies them. Splits: ``train`` 20, ``val``
20, ``test`` 50 instances; 0.1 s per call.

Score of one instance: 1 if the assignment satisfies every clause, else 0. Reference defects fixed:
a ``None`` (or any other invalid) return scores that instance 0 and never the whole call, a failure
scores 0 rather than 0.01, and the scorer never looks at the clock (the time limit is the
sandbox's). The initial solution is a WalkSAT-style random walk (noise 0.4, at most 1000 flips)
that returns ``None`` when it gives up (own code, in the spirit of the paper's seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selftaught.records import Instance, Split
from selftaught.tasks.common import Invalid, SeededTask, as_binary_vector, plain

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
            n = random.randint(5, 50)  # variables 1..n
            hidden = [None] + [random.random() < 0.5 for _ in range(n)]
            formula = []  # 4n clauses of three literals: v means variable v, -v its negation
            while len(formula) < 4 * n:
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
    """Random walk: flip a variable of an unsatisfied clause until all hold, or give up."""
    n = max(abs(lit) for clause in formula for lit in clause)
    assignment = [False] * (n + 1)

    def holds(clause):
        return any(assignment[abs(lit)] == (lit > 0) for lit in clause)

    for _ in range(1000):
        unsatisfied = [clause for clause in formula if not holds(clause)]
        if not unsatisfied:
            return assignment
        clause = random.choice(unsatisfied)
        if random.random() < 0.4:
            variable = abs(random.choice(clause))
        else:  # the flip that leaves the fewest clauses unsatisfied
            def broken_after_flip(lit):
                v = abs(lit)
                assignment[v] = not assignment[v]
                count = sum(not holds(c) for c in formula)
                assignment[v] = not assignment[v]
                return count

            variable = abs(min(clause, key=broken_after_flip))
        assignment[variable] = not assignment[variable]
    return None
'''


def satisfies(formula: list[list[int]], assignment: list[int]) -> bool:
    """Whether ``assignment`` (indexed by variable, entry 0 unused) satisfies every clause."""
    return all(any(assignment[abs(lit)] == (lit > 0) for lit in clause) for clause in formula)


def three_sat_instance(rng: np.random.Generator, min_vars: int = 5, max_vars: int = 50) -> Instance:
    """One planted-satisfiable instance: args ``(formula,)``; answer the hidden assignment."""
    n = int(rng.integers(min_vars, max_vars + 1))
    hidden = [0] + rng.integers(0, 2, size=n).tolist()
    formula: list[list[int]] = []
    while len(formula) < 4 * n:
        variables = (rng.choice(n, size=3, replace=False) + 1).tolist()
        signs = rng.integers(0, 2, size=3).tolist()
        clause = [v if s else -v for v, s in zip(variables, signs, strict=True)]
        if any(hidden[abs(lit)] == (lit > 0) for lit in clause):
            formula.append(clause)
    return Instance(args=(formula,), answer={"hidden": hidden})


class ThreeSATTask(SeededTask):
    """Planted 3-SAT; see the module docstring for parameters and scoring."""

    name = "three_sat"
    description = _DESCRIPTION
    initial_solution = _INITIAL_SOLUTION
    call_timeout_s = 0.1
    split_sizes: dict[Split, int] = {"train": 20, "val": 20, "test": 50}

    def generate(self, rng: np.random.Generator) -> Instance:
        return three_sat_instance(rng)

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
