"""Learning parity with noise (LPN), the task STOP's improvers are trained on.

A solution defines ``algorithm(train_X, train_y, test_X)`` and returns one 0/1 prediction per row
of ``test_X``; all three arguments arrive as numpy integer arrays.

Instances (preset ``paper``, the paper's reference parameters): ``bits = 10``; each bit is in the
secret set with probability ``secret_p = 0.3`` (the set may be empty); every x is uniform over
{0,1}^10; labels are the parity of the secret bits of x; ``n_train = 100`` train examples whose
labels are flipped with probability ``noise = 0.05`` and ``n_test = 20`` test examples with clean
labels. Splits: ``train`` 20, ``val`` 20, ``test`` 50 instances; ``timeout_s = 2`` per call.
Preset ``hard``: 32 bits, 10% noise, 200 train examples. Exhaustive search over 2^32 secrets does
not fit the time limit; Gaussian elimination on random subsets of the train examples
(information-set decoding) solves it.

Score of one instance: the fraction of the 20 test labels predicted right, in [0, 1]. Predictions
must have shape (20,) or (20, 1) and hold only 0/1 (bools and 0.0/1.0 accepted); anything else
(another shape, length 19 or 21, a scalar, a dict, a string, 2, -1, NaN) scores 0. This closes the
reward hack seen in the paper, where a wrong-shaped array broadcast against the labels gave an
"accuracy" above 1000%. The initial solution guesses at random (about 50%).

Reference scoring (``--scoring reference``, the paper's reference scorer): the same accuracy per
instance, but any error, time-out or rejected output makes the whole call score 1e-6.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from selftaught.records import Instance, Split
from selftaught.tasks.common import SeededTask, as_binary_vector
from selftaught.tasks.params import Param

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


def parity_schema(noise: float) -> tuple[Param, ...]:
    """The parameters of LPN (``noise`` its default label noise) and of noiseless parity."""
    return (
        Param("bits", 10, "bits per example", 1, 4096),
        Param("secret_p", 0.3, "probability a bit is in the secret", 0, 1),
        Param("n_train", 100, "train examples per instance", 1, 100_000),
        Param("n_test", 20, "test examples per instance", 1, 10_000),
        Param("noise", noise, "probability a train label is flipped", 0, 0.5),
        Param("timeout_s", 2.0, "seconds per instance", 0, 600, low_open=True),
    )


REFERENCE_EPS = 1e-6


class LPNTask(SeededTask):
    """Learning parity with noise; see the module docstring for parameters and scoring."""

    name = "lpn"
    title = "parity with noise"
    array_args = frozenset({0, 1, 2})
    initial_solution = _INITIAL_SOLUTION
    split_sizes: dict[Split, int] = {"train": 20, "val": 20, "test": 50}
    schema = parity_schema(0.05)
    reference_note = "if any instance raises, times out or returns a malformed answer, the whole utility is 1e-6."
    presets = {"paper": {}, "hard": {"bits": 32, "noise": 0.1, "n_train": 200}}

    def describe(self) -> str:
        noise, n_train = float(self.params["noise"]), int(self.params["n_train"])
        noise_line = (
            f" ^ (np.random.rand({n_train}) < {noise:g})  # {noise:.0%} of train labels flipped"
            if noise
            else "  # no label noise"
        )
        return _DESCRIPTION.format(
            title=self.title,
            n_bits=self.params["bits"],
            secret_p=f"{self.params['secret_p']:g}",
            n_train=n_train,
            n_test=self.params["n_test"],
            noise_line=noise_line,
        )

    def generate(self, rng: np.random.Generator) -> Instance:
        p = self.params
        return parity_instance(rng, int(p["bits"]), float(p["secret_p"]), int(p["n_train"]), int(p["n_test"]),
                               float(p["noise"]))

    def raw_score(self, instance: Instance, output: Any) -> float:
        truth: list[int] = instance.answer["test_y"]
        predictions = as_binary_vector(output, len(truth))
        return sum(p == t for p, t in zip(predictions, truth, strict=True)) / len(truth)

    def reference_combine(self, scores: Sequence[float], failures: Sequence[str]) -> float:
        """The reference: one error, time-out or rejected output makes the whole call 1e-6."""
        if any(failures):
            return REFERENCE_EPS
        return super().reference_combine(scores, failures)
