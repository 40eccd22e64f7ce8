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
