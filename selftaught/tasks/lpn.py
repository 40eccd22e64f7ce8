"""Learning parity with noise (LPN), the task STOP's improvers are trained on.

A solution defines ``algorithm(train_X, train_y, test_X)`` and returns one 0/1 prediction per row
of ``test_X``; all three arguments arrive as numpy integer arrays.

Instances (the paper's reference parameters): ``n_bits = 10``; each bit is in the secret set with
probability 0.3 (the set may be empty); every x is uniform over {0,1}^10; labels are the parity of
the secret bits of x; 100 train examples whose labels are flipped with probability 0.05 and 20 test
examples with clean labels. Splits: ``train`` 20, ``val`` 20, ``test`` 50 instances; 2 s per call.

Score of one instance: the fraction of the 20 test labels predicted right, in [0, 1]. Predictions
must have shape (20,) or (20, 1) and hold only 0/1 (bools and 0.0/1.0 accepted); anything else
(another shape, length 19 or 21, a scalar, a dict, a string, 2, -1, NaN) scores 0. This closes the
reward hack seen in the paper, where a wrong-shaped array broadcast against the labels gave an
"accuracy" above 1000%. The initial solution guesses at random (about 50%).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selftaught.records import Instance, Split
from selftaught.tasks.common import SeededTask, as_binary_vector, with_time_limits

__all__ = ["LPNTask", "parity_instance"]

_DESCRIPTION = '''\
The utility scores a solution (Python source) that defines
`algorithm(train_X, train_y, test_X)` for learning {title}. It works like this sketch; the
real instances are fixed and hidden, and the utility returns the mean score over them:

    import numpy as np

    def utility(solution_source: str) -> float:
        """Mean test accuracy of `algorithm` over the instances, in [0, 1]."""
        algorithm = define(solution_source)["algorithm"]
        scores = []
        for instance in instances:  # a fixed set of instances, each drawn like this:
            n_bits = {n_bits}
            secret = np.random.rand(n_bits) < {secret_p}  # each bit is in the secret with p = {secret_p}
            train_X = np.random.randint(0, 2, ({n_train}, n_bits))
            test_X = np.random.randint(0, 2, ({n_test}, n_bits))
            train_y = (train_X @ secret) % 2{noise_line}
            test_y = (test_X @ secret) % 2  # test labels are clean
            try:
                predictions = algorithm(train_X, train_y, test_X)  # <time limit per instance>
            except Exception:  # errors and time-outs score 0
                scores.append(0.0)
                continue
            # predictions must have shape ({n_test},) or ({n_test}, 1) and hold only 0/1;
            # any other shape, length or value scores 0
            scores.append(np.mean(np.ravel(predictions) == test_y))
        return float(np.mean(scores))
'''

_INITIAL_SOLUTION = '''\
import numpy as np


def algorithm(train_X, train_y, test_X):
    """Guess every test label at random."""
    return np.random.randint(0, 2, size=len(test_X))
'''


def parity_instance(
    rng: np.random.Generator, n_bits: int, secret_p: float, n_train: int, n_test: int, noise: float
) -> Instance:
    """One parity instance: args ``(train_X, train_y, test_X)``, answer the clean test labels and secret."""
    secret = (rng.random(n_bits) < secret_p).astype(np.int64)
    features = rng.integers(0, 2, size=(n_train + n_test, n_bits), dtype=np.int64)
    labels = (features @ secret) % 2
    flips = (rng.random(n_train) < noise).astype(np.int64)
    train_y = labels[:n_train] ^ flips
    return Instance(
        args=(features[:n_train].tolist(), train_y.tolist(), features[n_train:].tolist()),
        answer={"test_y": labels[n_train:].tolist(), "secret": secret.tolist(), "flips": int(flips.sum())},
    )


class LPNTask(SeededTask):
    """Learning parity with noise; see the module docstring for parameters and scoring."""

    name = "lpn"
    title = "parity with noise"
    call_timeout_s = 2.0
    array_args = frozenset({0, 1, 2})
    initial_solution = _INITIAL_SOLUTION
    n_bits = 10
    secret_p = 0.3
    n_train = 100
    n_test = 20
    noise = 0.05
    split_sizes: dict[Split, int] = {"train": 20, "val": 20, "test": 50}

    def __init__(self) -> None:
        super().__init__()
        noise_line = (
            f" ^ (np.random.rand({self.n_train}) < {self.noise})  # {self.noise:.0%} of train labels flipped"
            if self.noise
            else "  # no label noise"
        )
        self.description = _DESCRIPTION.format(
            title=self.title,
            n_bits=self.n_bits,
            secret_p=self.secret_p,
            n_train=self.n_train,
            n_test=self.n_test,
            noise_line=noise_line,
        )
        self.description = with_time_limits(self.description, self.call_timeout_s)

    def generate(self, rng: np.random.Generator) -> Instance:
        return parity_instance(rng, self.n_bits, self.secret_p, self.n_train, self.n_test, self.noise)

    def raw_score(self, instance: Instance, output: Any) -> float:
        truth: list[int] = instance.answer["test_y"]
        predictions = as_binary_vector(output, len(truth))
        return sum(p == t for p, t in zip(predictions, truth, strict=True)) / len(truth)
