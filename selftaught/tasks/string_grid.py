"""String grid distance, a transfer task of the paper (Table 1).

Given a string ``t`` over {A, B} and a target ``dist``, a solution's ``algorithm(t, dist)`` returns
a string ``s`` of the same length over {A, B} with ``grid_dist(s, t) == dist``, where
``grid_dist(s, t) = Hamming(s, t) + transitions(s) + transitions(t)`` and ``transitions(x)`` counts
adjacent unequal characters of ``x``.

Instances (preset ``paper``, the reference parameters): ``len(t) ~ U{min_length..max_length} =
U{1..30}``, ``t`` uniform over {A, B}^len, and ``dist = grid_dist(s*, t)`` for a uniform hidden
``s*`` of the same length, so an answer exists. Splits: ``train`` 20, ``val`` 20, ``test`` 50
instances; ``timeout_s = 0.1`` per call. Preset ``hard``: lengths 200..1000, where neither
exhaustive search nor a dictionary-based dynamic programme fits the time limit; a bitset dynamic
programme or a direct construction does.

Score of one instance, as in the paper: 1 if ``grid_dist(s, t) == dist``; otherwise
``0.5 - |grid_dist(s, t) - dist| / (6 len(t))``, which lies in (0, 0.5] because both distances are
at most ``3 len(t) - 2``. An output that is not a string of ``len(t)`` characters from {A, B}
scores 0. The initial solution returns ``t`` itself (about 44%, as in the paper).

Reference scoring (``--scoring reference``): the same; the reference scorer defined this scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selftaught.records import Instance, Split
from selftaught.tasks.common import Invalid, SeededTask, fill
from selftaught.tasks.params import Param

__all__ = ["StringGridTask", "grid_dist", "transitions"]

_DESCRIPTION = '''\
The utility scores a solution (Python source) that defines `algorithm(t: str, dist: int) -> str`.
It works like this sketch; the real instances are fixed and hidden, and the utility returns the
mean score over them:

    import random

    def transitions(x: str) -> int:
        return sum(a != b for a, b in zip(x, x[1:]))

    def grid_dist(s: str, t: str) -> int:
        return sum(a != b for a, b in zip(s, t)) + transitions(s) + transitions(t)

    def utility(solution_source: str) -> float:
        """Mean score of `algorithm` over the instances, in [0, 1]."""
        algorithm = define(solution_source)["algorithm"]
        scores = []
        for instance in instances:  # a fixed set of instances, each drawn like this:
            length = random.randint({min_length}, {max_length})
            t = "".join(random.choice("AB") for _ in range(length))
            hidden = "".join(random.choice("AB") for _ in range(length))
            dist = grid_dist(hidden, t)  # so some s at exactly this distance exists
            try:
                s = algorithm(t, dist)  # <time limit per instance>
            except Exception:  # errors and time-outs score 0
                scores.append(0.0)
                continue
            if not (isinstance(s, str) and len(s) == len(t) and set(s) <= set("AB")):
                scores.append(0.0)
            elif grid_dist(s, t) == dist:
                scores.append(1.0)
            else:  # partial credit, between 0 and 0.5
                scores.append(0.5 - abs(grid_dist(s, t) - dist) / (6 * len(t)))
        return sum(scores) / len(scores)
'''

_INITIAL_SOLUTION = '''\
def algorithm(t, dist):
    """Return t itself: its distance to itself is twice its number of transitions."""
    return t
'''


def transitions(text: str) -> int:
    """The number of adjacent unequal characters in ``text``."""
    return sum(a != b for a, b in zip(text, text[1:], strict=False))


def grid_dist(s: str, t: str) -> int:
    """Hamming distance of two equal-length strings plus the transitions of each."""
    return sum(a != b for a, b in zip(s, t, strict=True)) + transitions(s) + transitions(t)


def string_grid_instance(rng: np.random.Generator, min_length: int = 1, max_length: int = 30) -> Instance:
    """One instance: args ``(t, dist)``; answer the hidden string it was made from."""
    length = int(rng.integers(min_length, max_length + 1))
    t = "".join(rng.choice(["A", "B"], size=length).tolist())
    hidden = "".join(rng.choice(["A", "B"], size=length).tolist())
    return Instance(args=(t, grid_dist(hidden, t)), answer={"hidden": hidden})


class StringGridTask(SeededTask):
    """String grid distance; see the module docstring for parameters and scoring."""

    name = "string_grid"
    initial_solution = _INITIAL_SOLUTION
    split_sizes: dict[Split, int] = {"train": 20, "val": 20, "test": 50}
    schema = (
        Param("min_length", 1, "shortest t", 1, 100_000),
        Param("max_length", 30, "longest t", 1, 100_000),
        Param("timeout_s", 0.1, "seconds per instance", 0, 600, low_open=True),
    )
    presets = {"paper": {}, "hard": {"min_length": 200, "max_length": 1000}}

    def check_params(self) -> None:
        self._ordered("min_length", "max_length")

    def describe(self) -> str:
        return fill(_DESCRIPTION, min_length=self.params["min_length"], max_length=self.params["max_length"],
                    timeout=self.call_timeout_s)

    def generate(self, rng: np.random.Generator) -> Instance:
        return string_grid_instance(rng, int(self.params["min_length"]), int(self.params["max_length"]))

    def raw_score(self, instance: Instance, output: Any) -> float:
        t: str = instance.args[0]
        dist: int = instance.args[1]
        if not isinstance(output, str):
            raise Invalid(f"expected a string, got {type(output).__name__}")
        if len(output) != len(t):
            raise Invalid(f"expected a string of length {len(t)}, got length {len(output)}")
        if not set(output) <= {"A", "B"}:
            raise Invalid("the string may only contain 'A' and 'B'")
        found = grid_dist(output, t)
        if found == dist:
            return 1.0
        return 0.5 - abs(found - dist) / (6 * len(t))
