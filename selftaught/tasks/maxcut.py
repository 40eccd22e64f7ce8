"""Max-Cut, a transfer task of the paper (Table 1).

A solution's ``algorithm(adjacency)`` gets a symmetric ``n x n`` numpy array of non-negative integer
edge weights (zero diagonal, 0 = no edge) and returns ``n`` side labels, one per node.

Instances (reference parameters): ``n ~ U{50..200}`` nodes, each pair joined with probability 0.4
by an edge of weight ``U{1..10}``. Splits: ``train`` 20, ``val`` 20, ``test`` 50 instances; 0.1 s
per call.

Normalisation: one instance scores ``cut weight / total edge weight`` in [0, 1], where the cut
weight sums the edges whose ends have different labels. A uniformly random partition scores about
0.5 and the best cuts of these dense graphs are only a little higher, so gains look small in
absolute terms. Labels must be all in {0, 1} or all in {-1, 1} (bools and equal floats accepted),
shape (n,) or (n, 1); anything else scores 0. Reference defects fixed: the reference returned the
mean cut weight / 10 (about 961 for a trivial partition, not in [0, 1]) and a single error or
time-out zeroed the whole call. The initial solution is an O(n^3) greedy that places one node at a
time on the side that cuts most; like the paper's seed, it usually exceeds the time limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selftaught.records import Instance, Split
from selftaught.tasks.common import Invalid, SeededTask, as_column

__all__ = ["MaxCutTask", "cut_weight", "maxcut_instance"]

_DESCRIPTION = '''\
The utility scores a solution (Python source) that defines `algorithm(adjacency)` for Max-Cut:
`adjacency` is a symmetric n x n numpy array of edge weights (0 = no edge) and `algorithm` returns
a list of n labels, 0 or 1, putting each node on one side of the cut. It works like this sketch;
the real instances are fixed and hidden, and the utility returns the mean score over them:

    import numpy as np

    def utility(solution_source: str) -> float:
        """Mean fraction of edge weight that `algorithm` cuts, in [0, 1]."""
        algorithm = define(solution_source)["algorithm"]
        scores = []
        for instance in instances:  # a fixed set of graphs, each drawn like this:
            n = np.random.randint(50, 201)
            adjacency = np.zeros((n, n))
            for i in range(n):
                for j in range(i + 1, n):
                    if np.random.rand() < 0.4:
                        adjacency[i, j] = adjacency[j, i] = np.random.randint(1, 11)
            try:
                labels = algorithm(adjacency)  # <time limit per graph>
            except Exception:  # errors and time-outs score 0
                scores.append(0.0)
                continue
            # labels: n values, all 0/1 (or all -1/1); any other length or value scores 0
            labels = np.ravel(labels)
            cut = sum(adjacency[i, j] for i in range(n) for j in range(i + 1, n) if labels[i] != labels[j])
            scores.append(cut / adjacency[np.triu_indices(n, 1)].sum())
        return sum(scores) / len(scores)
'''

_INITIAL_SOLUTION = '''\
def algorithm(adjacency):
    """Greedy: repeatedly place the unplaced node whose best side cuts the most weight."""
    n = len(adjacency)
    side = [None] * n
    unplaced = set(range(n))
    while unplaced:
        best = (-1, None, None)
        for node in unplaced:
            for label in (0, 1):
                gain = sum(
                    adjacency[node][other]
                    for other in range(n)
                    if side[other] is not None and side[other] != label
                )
                if gain > best[0]:
                    best = (gain, node, label)
        _, node, label = best
        side[node] = label
        unplaced.remove(node)
    return side
'''


def cut_weight(adjacency: np.ndarray[Any, Any], labels: list[int]) -> float:
    """The total weight of edges whose two ends carry different labels."""
    side = np.asarray(labels)
    crossing = side[:, None] != side[None, :]
    return float(np.triu(adjacency * crossing, 1).sum())


def maxcut_instance(
    rng: np.random.Generator, min_nodes: int = 50, max_nodes: int = 200, p_edge: float = 0.4
) -> Instance:
    """One graph: args ``(adjacency,)`` as nested int lists; answer its total edge weight."""
    n = int(rng.integers(min_nodes, max_nodes + 1))
    weights = rng.integers(1, 11, size=(n, n)) * (rng.random((n, n)) < p_edge)
    upper = np.triu(weights, 1)
    adjacency = upper + upper.T
    return Instance(args=(adjacency.tolist(),), answer={"total_weight": int(upper.sum())})


def _label(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (-1, 0, 1):  # NaN equals none of them
        return int(value)
    text = repr(value)
    raise Invalid(f"label {text if len(text) <= 40 else text[:37] + '...'} is not 0/1 or -1/1")


def as_labels(output: Any, n: int) -> list[int]:
    """``output`` as ``n`` side labels, all in {0, 1} or all in {-1, 1}; else ``Invalid``."""
    labels = [_label(value) for value in as_column(output, n, "labels")]
    if not (set(labels) <= {0, 1} or set(labels) <= {-1, 1}):
        raise Invalid("labels mix 0/1 with -1/1")
    return labels


class MaxCutTask(SeededTask):
    """Max-Cut on dense random weighted graphs; see the module docstring for scoring."""

    name = "maxcut"
    description = _DESCRIPTION
    initial_solution = _INITIAL_SOLUTION
    call_timeout_s = 0.1
    array_args = frozenset({0})
    split_sizes: dict[Split, int] = {"train": 20, "val": 20, "test": 50}

    def generate(self, rng: np.random.Generator) -> Instance:
        return maxcut_instance(rng)

    def raw_score(self, instance: Instance, output: Any) -> float:
        adjacency = np.array(instance.args[0], dtype=np.int64)
        labels = as_labels(output, len(adjacency))
        total: int = instance.answer["total_weight"]
        return cut_weight(adjacency, labels) / total if total else 1.0
