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


# LPN (any size): information-set decoding. Take the train examples in a random order, keep the
# first ones that are linearly independent over GF(2) until they fix every bit, solve, and keep
# the secret that disagrees with the fewest train labels. Rows are Python ints (bit j = x_j,
# bit n = the label), so one attempt costs about n^2 XORs.
PARITY_ISD = """
import random

import numpy as np


def algorithm(train_X, train_y, test_X):
    X = np.asarray(train_X, dtype=np.int64) % 2
    y = np.asarray(train_y, dtype=np.int64).reshape(-1) % 2
    m, n = X.shape
    rows = [int("".join(map(str, X[i][::-1])), 2) | (int(y[i]) << n) for i in range(m)]
    mask = (1 << n) - 1
    rng = random.Random(0)
    order = list(range(m))
    best, best_errors = np.zeros(n, dtype=np.int64), m + 1
    for _ in range(300):
        rng.shuffle(order)
        basis = {}
        for i in order:
            r = rows[i]
            for bit in sorted(basis, reverse=True):
                if r >> bit & 1:
                    r ^= basis[bit]
            if r & mask:
                basis[(r & mask).bit_length() - 1] = r
                if len(basis) == n:
                    break
        if len(basis) < n:
            continue
        secret = 0
        for bit in range(n):
            row = basis[bit]
            value = (row >> n & 1) ^ (bin(row & secret & ((1 << bit) - 1)).count("1") & 1)
            secret |= value << bit
        s = np.array([secret >> j & 1 for j in range(n)], dtype=np.int64)
        errors = int(((X @ s) % 2 != y).sum())
        if errors < best_errors:
            best, best_errors = s, errors
        if best_errors <= 0.2 * m:
            break
    return (np.asarray(test_X, dtype=np.int64) @ best) % 2
"""

# Parity/LPN, weak: predict the most common train label for every test example (about 50%).
PARITY_MAJORITY = """
import numpy as np


def algorithm(train_X, train_y, test_X):
    label = int(np.mean(train_y) >= 0.5)
    return np.full(len(test_X), label)
"""

# String grid distance (any length): the same dynamic programme with bitsets (bit v of reach[c]:
# partial sum v reachable with the prefix ending in c), then a walk back through the stored sets.
STRING_GRID_BITSET = """
def algorithm(t, dist):
    n = len(t)
    target = dist - sum(a != b for a, b in zip(t, t[1:]))
    layers = [{c: 1 << int(c != t[0]) for c in "AB"}]
    for i in range(1, n):
        prev = layers[-1]
        layers.append({c: (prev[c] | prev["B" if c == "A" else "A"] << 1) << int(c != t[i]) for c in "AB"})
    if target < 0:
        return t
    ends = [c for c in "AB" if layers[-1][c] >> target & 1]
    if not ends:
        return t
    chars, value = [ends[0]], target
    for i in range(n - 1, 0, -1):
        c = chars[-1]
        value -= int(c != t[i])
        other = "B" if c == "A" else "A"
        if layers[i - 1][c] >> value & 1:
            chars.append(c)
        else:
            value -= 1
            chars.append(other)
    return "".join(reversed(chars))
"""

# String grid distance, weak: all 'A'.
STRING_GRID_ALL_A = """
def algorithm(t, dist):
    return "A" * len(t)
"""

# 3-SAT (any size): WalkSAT with incremental true-literal counts and break counts.
THREE_SAT_WALKSAT = """
import random


def algorithm(formula):
    n = max(abs(lit) for clause in formula for lit in clause)
    rng = random.Random(0)
    value = [False] + [rng.random() < 0.5 for _ in range(n)]
    occurs = {}
    for index, clause in enumerate(formula):
        for lit in clause:
            occurs.setdefault(lit, []).append(index)
    true_count = [sum(value[abs(lit)] == (lit > 0) for lit in clause) for clause in formula]
    unsat = [i for i, count in enumerate(true_count) if count == 0]
    where = {i: k for k, i in enumerate(unsat)}

    def drop(i):
        k = where.pop(i)
        last = unsat.pop()
        if last != i:
            unsat[k] = last
            where[last] = k

    def breaks(v):
        lit = v if value[v] else -v
        return sum(1 for i in occurs.get(lit, ()) if true_count[i] == 1)

    for _ in range(200_000):
        if not unsat:
            return value
        clause = formula[unsat[rng.randrange(len(unsat))]]
        scored = [(breaks(abs(lit)), abs(lit)) for lit in clause]
        best = min(scored)
        v = best[1] if best[0] == 0 or rng.random() > 0.4 else abs(rng.choice(clause))
        old = v if value[v] else -v
        value[v] = not value[v]
        for i in occurs.get(old, ()):
            true_count[i] -= 1
            if true_count[i] == 0:
                where[i] = len(unsat)
                unsat.append(i)
        for i in occurs.get(-old, ()):
            if true_count[i] == 0:
                drop(i)
            true_count[i] += 1
    return value
"""

# 3-SAT, weak: every variable true.
THREE_SAT_ALL_TRUE = """
def algorithm(formula):
    n = max(abs(lit) for clause in formula for lit in clause)
    return [True] * (n + 1)
"""

# Max-Cut, weak: alternate the sides (a fixed, input-blind partition: about half the weight).
MAXCUT_ALTERNATE = """
def algorithm(adjacency):
    return [i % 2 for i in range(len(adjacency))]
"""

# QAP, weak: the identity assignment (no better than random on average).
QAP_IDENTITY = """
def algorithm(F, D, P):
    return list(range(len(F)))
"""


def split_score(task: Task, source: str, split: str = "val") -> float:
    """The score of a split as the broker reports it: ``random`` and ``numpy.random`` seeded as in a
    sandbox job, a raising call a failure, and a task's ``combine`` (reference scoring) applied."""
    import random

    instances = list(task.instances(split))  # type: ignore[arg-type]
    random.seed(0)
    np.random.seed(0)
    algorithm = define(source)
    scores, failures = [], []
    for instance in instances:
        args = [np.array(arg) if i in task.array_args else arg for i, arg in enumerate(instance.args)]
        try:
            output = plain(algorithm(*args))
        except Exception:
            scores.append(0.0)
            failures.append("error")
            continue
        scored = task.score(instance, output)
        scores.append(scored.value)
        failures.append("invalid" if scored.reason.startswith(("invalid output", "scorer rejected")) else "")
    combine = getattr(task, "combine", None)
    return float(combine(scores, failures)) if combine else sum(scores) / len(scores)


# Max-Cut: the best of 8 local searches (single-node flips, best improvement first), one started
# from the one-pass greedy cut and seven from random cuts.
MAXCUT_MULTI_START = """
import numpy as np


def algorithm(adjacency):
    w = np.asarray(adjacency, dtype=float)
    n = len(w)
    rng = np.random.default_rng(0)
    greedy = np.zeros(n)
    for node in range(n):
        greedy[node] = -1.0 if w[node] @ greedy > 0 else 1.0
    best, best_cut = None, -1.0
    for start in [greedy] + [rng.integers(0, 2, n) * 2.0 - 1 for _ in range(7)]:
        side = start.copy()
        while True:
            gain = side * (w @ side)
            i = int(np.argmax(gain))
            if gain[i] <= 0:
                break
            side[i] = -side[i]
        cut = float((w * (side[:, None] != side[None, :])).sum()) / 2
        if cut > best_cut:
            best, best_cut = side, cut
    return ((best + 1) // 2).astype(int).tolist()
"""
