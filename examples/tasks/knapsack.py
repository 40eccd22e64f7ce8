"""An example task file: 0/1 knapsack, declared with ``define_task``.

Load it with ``get_task("examples/tasks/knapsack.py")`` (or pass the path wherever a task name is
accepted). A solution defines ``algorithm(values, weights, capacity)`` and returns the indices of
the items it packs. One instance scores the packed value divided by the best possible value
(computed here by dynamic programming when the instance is drawn), in [0, 1]; a list that is not
of distinct valid indices, or that goes over the capacity, scores 0.
"""

from __future__ import annotations

import random
from typing import Any

from selftaught.records import Instance
from selftaught.tasks.plugin import Invalid, define_task

N_ITEMS = 20


def best_value(values: list[int], weights: list[int], capacity: int) -> int:
    """The optimum, by dynamic programming over capacities."""
    best = [0] * (capacity + 1)
    for value, weight in zip(values, weights, strict=True):
        for room in range(capacity, weight - 1, -1):
            best[room] = max(best[room], best[room - weight] + value)
    return best[capacity]


def generate(rng: random.Random, split: str, index: int) -> dict[str, Any]:
    """One instance; ``rng`` is already seeded for this (split, index)."""
    values = [rng.randint(1, 100) for _ in range(N_ITEMS)]
    weights = [rng.randint(1, 50) for _ in range(N_ITEMS)]
    capacity = sum(weights) // 3
    return {"args": [values, weights, capacity], "answer": best_value(values, weights, capacity)}


def score(instance: Instance, output: Any) -> float:
    """Packed value / best value; invalid packings raise ``Invalid`` and score 0."""
    values, weights, capacity = instance.args
    if not isinstance(output, list) or not all(type(i) is int for i in output):
        raise Invalid("expected a list of item indices")
    if len(set(output)) != len(output) or not all(0 <= i < len(values) for i in output):
        raise Invalid("indices must be distinct and in range")
    if sum(weights[i] for i in output) > capacity:
        raise Invalid("the packed items are over the capacity")
    return sum(values[i] for i in output) / instance.answer


DESCRIPTION = f"""\
The utility scores a solution that defines `algorithm(values, weights, capacity)` for the 0/1
knapsack problem with {N_ITEMS} items (values 1..100, weights 1..50, capacity a third of the total
weight) and returns a list of distinct item indices whose weights fit in the capacity. Each
instance scores the packed value divided by the best possible value (0 for an invalid or
overweight list, or an error, or more than 1 s); the utility returns the mean over a fixed set of
hidden instances, in [0, 1].
"""

INITIAL_SOLUTION = """\
def algorithm(values, weights, capacity):
    packed, load = [], 0
    for i in range(len(values)):
        if load + weights[i] <= capacity:
            packed.append(i)
            load += weights[i]
    return packed
"""

TASK = define_task(
    name="knapsack",
    description=DESCRIPTION,
    initial_solution=INITIAL_SOLUTION,
    score=score,
    generate=generate,
    split_sizes={"train": 10, "val": 10, "test": 20},
    call_timeout_s=1.0,
)
