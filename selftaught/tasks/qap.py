"""Modified quadratic assignment (QAP), a transfer task of the paper (Table 1).

A solution's ``algorithm(F, D, P)`` gets three n x n numpy arrays (flow, distance, preference)
and returns an assignment ``a``: a permutation of 0..n-1, facility ``i`` going to location ``a[i]``.
The objective, to be MINIMISED (the one direction used everywhere in this task), is::

    cost(a) = sum_ij F[i, j] * D[a[i], a[j]] - 0.5 * sum_i P[i, a[i]]

Instances (preset ``paper``, the reference parameters): ``n = 15``, ``F, D, P ~ U[0, 1]^(n x n)``.
Splits: ``train`` 10, ``val`` 10, ``test`` 30 instances; ``timeout_s = 0.5`` per call. Preset
``hard``: ``n = 30`` (30! assignments), where the initial annealing schedule falls well short of
the reference search.

Normalisation. With ``mean`` the exact expected cost of a uniformly random permutation (closed form,
see ``random_cost``) and ``ref`` the best cost found by a trusted 2-swap local search from 100 random starts
(``restarts`` of them, 100 for ``paper``)
when the instance is made, one instance scores ``clip((mean - cost(a)) / (mean - ref), 0, 1)``:
0 for no better than random, 1 for matching (or beating) the reference search. An output that is
not a permutation of 0..n-1 (ints, or floats equal to ints) scores 0.

Reference defects fixed: the reference scorer rewarded a *larger* cost while its seed minimised
it, and it added the solution's run time to the cost; here a lower cost is better and time only
matters through the time limit. The initial solution is simulated annealing over swaps (own code,
in the spirit of the paper's GPT-4-written seed), minimising the cost.

Reference scoring (``--scoring reference``, the paper's reference scorer and Table 1's scale): one
instance scores ``(sum_ij F[i, j] D[a[i], a[j]] - 0.5 sum_i P[i, a[i]]) / n^2``, HIGHER being better
(the reference's direction, although its seed minimised), an invalid assignment 0, and the mean
over instances is floored at 0.01. The reference also added the call's run time in seconds to the
objective; that term is left out (it rewarded slow solutions and depends on the machine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selftaught.records import Instance, Score, Split
from selftaught.tasks.common import Invalid, SeededTask, as_permutation, bounded, fill
from selftaught.tasks.params import Param

__all__ = ["QAPTask", "qap_cost", "qap_instance", "random_cost", "reference_cost"]

Matrix = NDArray[np.float64]

_DESCRIPTION = '''\
The utility scores a solution (Python source) that defines `algorithm(F, D, P)`, where F, D and P
are {n} x {n} numpy arrays, returning an assignment: a permutation of range({n}). It works like this
sketch; the real instances are fixed and hidden, and the utility returns the mean score over them:

    import numpy as np

    def cost(F, D, P, a):  # LOWER is better
        n = len(F)
        return sum(F[i, j] * D[a[i], a[j]] for i in range(n) for j in range(n)) - 0.5 * sum(
            P[i, a[i]] for i in range(n))

    def utility(solution_source: str) -> float:
        """Mean normalised score of `algorithm` over the instances, in [0, 1]."""
        algorithm = define(solution_source)["algorithm"]
        scores = []
        for instance in instances:  # a fixed set of instances, each drawn like this:
            F, D, P = np.random.rand({n}, {n}), np.random.rand({n}, {n}), np.random.rand({n}, {n})
            random_cost = ...     # the expected cost of a uniformly random permutation
            reference_cost = ...  # the best cost a strong reference search found
            try:
                a = algorithm(F, D, P)  # <time limit per instance>
            except Exception:  # errors and time-outs score 0
                scores.append(0.0)
                continue
            if sorted(a) != list(range({n})):  # not a permutation: scores 0
                scores.append(0.0)
                continue
            score = (random_cost - cost(F, D, P, a)) / (random_cost - reference_cost)
            scores.append(min(1.0, max(0.0, score)))  # 0: no better than random; 1: as good as the reference
        return sum(scores) / len(scores)
'''

_INITIAL_SOLUTION = '''\
import math
import random

import numpy as np


def algorithm(F, D, P):
    """Simulated annealing over swaps of two facilities, minimising the cost."""
    n = len(F)
    rows = np.arange(n)

    def cost(a):
        a = np.asarray(a)
        return float((F * D[np.ix_(a, a)]).sum() - 0.5 * P[rows, a].sum())

    current = list(range(n))
    random.shuffle(current)
    current_cost = cost(current)
    best, best_cost = current[:], current_cost
    temperature = 1.0
    for _ in range(1000):
        i, j = random.sample(range(n), 2)
        candidate = current[:]
        candidate[i], candidate[j] = candidate[j], candidate[i]
        candidate_cost = cost(candidate)
        delta = candidate_cost - current_cost
        if delta < 0 or random.random() < math.exp(-delta / temperature):
            current, current_cost = candidate, candidate_cost
            if current_cost < best_cost:
                best, best_cost = current[:], current_cost
        temperature *= 0.99
    return best
'''

PREFERENCE_WEIGHT = 0.5


def qap_cost(F: Matrix, D: Matrix, P: Matrix, assignment: NDArray[np.int64]) -> float:
    """The cost of one assignment (lower is better)."""
    a = np.asarray(assignment)
    rows = np.arange(len(a))
    return float((F * D[np.ix_(a, a)]).sum() - PREFERENCE_WEIGHT * P[rows, a].sum())


def random_cost(F: Matrix, D: Matrix, P: Matrix) -> float:
    """The exact expected cost of a uniformly random permutation.

    Pairs i != j land on a uniform pair of distinct locations, each i lands on a uniform location.
    """
    n = len(F)
    trace_f, trace_d = float(np.trace(F)), float(np.trace(D))
    off_diagonal = (F.sum() - trace_f) * (D.sum() - trace_d) / (n * (n - 1))
    return float(off_diagonal + trace_f * trace_d / n - PREFERENCE_WEIGHT * P.sum() / n)


def _swap_costs(F: Matrix, D: Matrix, P: Matrix, perms: NDArray[np.int64]) -> NDArray[np.float64]:
    rows = np.arange(perms.shape[1])
    quadratic = (F[None] * D[perms[:, :, None], perms[:, None, :]]).sum(axis=(1, 2))
    result: NDArray[np.float64] = quadratic - PREFERENCE_WEIGHT * P[rows[None], perms].sum(axis=1)
    return result


def reference_cost(F: Matrix, D: Matrix, P: Matrix, rng: np.random.Generator, restarts: int = 100) -> float:
    """The best cost of a best-improvement 2-swap local search from ``restarts`` random starts."""
    n = len(F)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    best = np.inf
    for _ in range(restarts):
        current = rng.permutation(n)
        current_cost = qap_cost(F, D, P, current)
        while True:
            neighbours = np.repeat(current[None], len(pairs), axis=0)
            index = np.arange(len(pairs))
            neighbours[index, pairs[:, 0]] = current[pairs[:, 1]]
            neighbours[index, pairs[:, 1]] = current[pairs[:, 0]]
            costs = _swap_costs(F, D, P, neighbours)
            k = int(np.argmin(costs))
            if costs[k] >= current_cost - 1e-12:
                break
            current, current_cost = neighbours[k], float(costs[k])
        best = min(best, current_cost)
    return float(best)


def qap_instance(rng: np.random.Generator, n: int = 15, restarts: int = 100) -> Instance:
    """One instance: args ``(F, D, P)`` as nested lists; answer the random and reference costs."""
    F, D, P = (rng.random((n, n)) for _ in range(3))
    return Instance(
        args=(F.tolist(), D.tolist(), P.tolist()),
        answer={"random_cost": random_cost(F, D, P), "reference_cost": reference_cost(F, D, P, rng, restarts)},
    )


REFERENCE_EPS = 0.01


class QAPTask(SeededTask):
    """Modified quadratic assignment; see the module docstring for parameters and scoring."""

    name = "qap"
    initial_solution = _INITIAL_SOLUTION
    array_args = frozenset({0, 1, 2})
    split_sizes: dict[Split, int] = {"train": 10, "val": 10, "test": 30}
    schema = (
        Param("n", 15, "facilities and locations", 2, 200),
        Param("restarts", 100, "random starts of the reference local search", 1, 10_000),
        Param("timeout_s", 0.5, "seconds per instance", 0, 600, low_open=True),
    )
    presets = {"paper": {}, "hard": {"n": 30, "restarts": 5}}
    reference_note = ("each instance scores cost(F, D, P, a) / n**2 with cost as above, but HIGHER is better; "
                      "an assignment that is not a permutation scores 0; the mean is floored at 0.01.")

    def describe(self) -> str:
        return fill(_DESCRIPTION, n=self.params["n"], timeout=self.call_timeout_s)

    def generate(self, rng: np.random.Generator) -> Instance:
        return qap_instance(rng, int(self.params["n"]), int(self.params["restarts"]))

    def raw_score(self, instance: Instance, output: Any) -> float:
        F, D, P = (np.array(arg, dtype=np.float64) for arg in instance.args)
        assignment = np.array(as_permutation(output, len(F)), dtype=np.int64)
        mean, ref = instance.answer["random_cost"], instance.answer["reference_cost"]
        return float((mean - qap_cost(F, D, P, assignment)) / (mean - ref))

    def reference_score(self, instance: Instance, output: Any) -> Score:
        """The reference scale: the objective over n^2, higher is better; an invalid assignment 0."""
        F, D, P = (np.array(arg, dtype=np.float64) for arg in instance.args)
        try:
            assignment = np.array(as_permutation(output, len(F)), dtype=np.int64)
        except Invalid as exc:
            return Score(0.0, f"invalid output: {exc}")
        # The same sum as qap_cost, but the reference rewarded it being LARGER.
        return bounded(qap_cost(F, D, P, assignment) / len(F) ** 2)

    def reference_combine(self, scores: Sequence[float], failures: Sequence[str]) -> float:
        """The reference: the mean over instances, floored at 0.01."""
        return max(super().reference_combine(scores, failures), REFERENCE_EPS)
