"""Trusted solution sources and a helper that runs them in-process, for the task oracle tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from selftaught.tasks.base import Task

# Brute force over all 2^n secrets: the mask with the fewest train mistakes predicts the test labels.
PARITY_BRUTE_FORCE = """
import itertools
import numpy as np


def algorithm(train_X, train_y, test_X):
    n = train_X.shape[1]
    masks = np.array(list(itertools.product([0, 1], repeat=n)))
    predicted = (train_X @ masks.T) % 2
    mistakes = (predicted != train_y[:, None]).sum(axis=0)
    best = masks[int(np.argmin(mistakes))]
    return (test_X @ best) % 2
"""

# Gaussian elimination over GF(2) on the (noiseless) train examples.
PARITY_GAUSS = """
import numpy as np


def algorithm(train_X, train_y, test_X):
    rows = np.concatenate([train_X, train_y[:, None]], axis=1).astype(np.int64) % 2
    n = train_X.shape[1]
    pivot_row = 0
    pivots = []
    for col in range(n):
        hits = np.nonzero(rows[pivot_row:, col])[0]
        if len(hits) == 0:
            continue
        r = pivot_row + hits[0]
        rows[[pivot_row, r]] = rows[[r, pivot_row]]
        for other in range(len(rows)):
            if other != pivot_row and rows[other, col]:
                rows[other] ^= rows[pivot_row]
        pivots.append(col)
        pivot_row += 1
    secret = np.zeros(n, dtype=np.int64)
    for i, col in enumerate(pivots):
        secret[col] = rows[i, n]
    return (test_X @ secret) % 2
"""


def define(source: str) -> Any:
    """The ``algorithm`` defined by trusted test source."""
    namespace: dict[str, Any] = {}
    exec(compile(source, "<solution>", "exec"), namespace)
    return namespace["algorithm"]


def plain(value: Any) -> Any:
    """What the sandbox would send back: numpy data as plain lists and scalars."""
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


def run_split(task: Task, source: str, split: str = "val", limit: int | None = None) -> list[float]:
    """Score ``source`` on a split in-process, as the broker would score sandbox output."""
    algorithm = define(source)
    scores = []
    for instance in list(task.instances(split))[:limit]:  # type: ignore[arg-type]
        args = [np.array(arg) if i in task.array_args else arg for i, arg in enumerate(instance.args)]
        scores.append(task.score(instance, plain(algorithm(*args))).value)
    return scores


# String grid distance: dynamic programming over (position, last character) -> reachable partial sums.
STRING_GRID_DP = """
def algorithm(t, dist):
    n = len(t)
    target = dist - sum(a != b for a, b in zip(t, t[1:]))
    layers = [{c: {int(c != t[0]): None} for c in "AB"}]
    for i in range(1, n):
        layer = {}
        for c in "AB":
            sums = {}
            for prev, reach in layers[-1].items():
                for value in reach:
                    sums.setdefault(value + (c != t[i]) + (c != prev), (prev, value))
            layer[c] = sums
        layers.append(layer)
    for c in "AB":
        if target in layers[-1][c]:
            chars, value = [c], target
            for i in range(n - 1, 0, -1):
                prev, value = layers[i][chars[-1]][value]
                chars.append(prev)
            return "".join(reversed(chars))
    return t
"""

# 3-SAT: DPLL with unit propagation.
THREE_SAT_DPLL = """
def algorithm(formula):
    n = max(abs(lit) for clause in formula for lit in clause)

    def solve(clauses, assigned):
        while True:
            units = [c[0] for c in clauses if len(c) == 1]
            if not units:
                break
            lit = units[0]
            assigned = {**assigned, abs(lit): lit > 0}
            clauses = [[x for x in c if x != -lit] for c in clauses if lit not in c]
            if any(not c for c in clauses):
                return None
        if not clauses:
            return assigned
        lit = clauses[0][0]
        for choice in (lit, -lit):
            reduced = [[x for x in c if x != -choice] for c in clauses if choice not in c]
            if any(not c for c in reduced):
                continue
            found = solve(reduced, {**assigned, abs(choice): choice > 0})
            if found is not None:
                return found
        return None

    found = solve([list(c) for c in formula], {})
    if found is None:
        return None
    return [False] + [found.get(v, False) for v in range(1, n + 1)]
"""

# Max-Cut: best-improvement single-node flips from a random partition.
MAXCUT_LOCAL_SEARCH = """
import numpy as np


def algorithm(adjacency):
    w = np.asarray(adjacency, dtype=float)
    side = np.random.default_rng(0).integers(0, 2, len(w)) * 2 - 1
    while True:
        gain = side * (w @ side)  # flipping node i changes the cut by this much
        i = int(np.argmax(gain))
        if gain[i] <= 0:
            return ((side + 1) // 2).tolist()
        side[i] = -side[i]
"""

# QAP: the reference search itself (2-swap local search from many random starts).
QAP_LOCAL_SEARCH = """
import numpy as np


def algorithm(F, D, P):
    n = len(F)
    rows = np.arange(n)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    index = np.arange(len(pairs))
    rng = np.random.default_rng(1)

    def costs(perms):
        quadratic = (F[None] * D[perms[:, :, None], perms[:, None, :]]).sum(axis=(1, 2))
        return quadratic - 0.5 * P[rows[None], perms].sum(axis=1)

    best, best_cost = None, np.inf
    for _ in range(150):
        current = rng.permutation(n)
        current_cost = costs(current[None])[0]
        while True:
            neighbours = np.repeat(current[None], len(pairs), axis=0)
            neighbours[index, pairs[:, 0]] = current[pairs[:, 1]]
            neighbours[index, pairs[:, 1]] = current[pairs[:, 0]]
            c = costs(neighbours)
            k = int(np.argmin(c))
            if c[k] >= current_cost - 1e-12:
                break
            current, current_cost = neighbours[k], c[k]
        if current_cost < best_cost:
            best, best_cost = current, current_cost
    return best.tolist()
"""
