"""Max-Cut, a transfer task of the paper (Table 1).

A solution's ``algorithm(adjacency)`` gets a symmetric ``n x n`` numpy array of non-negative integer
edge weights (zero diagonal, 0 = no edge) and returns ``n`` side labels, one per node.

Instances (preset ``paper``, the reference parameters): ``n ~ U{min_nodes..max_nodes} =
U{50..200}`` nodes, each pair joined with probability ``p_edge = 0.4`` by an edge of weight
``U{1..max_weight} = U{1..10}``. Splits: ``train`` 20, ``val`` 20, ``test`` 50 instances;
``timeout_s = 0.1`` per call. Preset ``hard``: 100..200 nodes with ``p_edge = 0.03``: sparse
graphs, where local search wins much more over a greedy cut than on dense ones (the graphs stay as
small as the paper's, since every adjacency matrix is sent to the sandbox within the time limit).

Normalisation: one instance scores ``cut weight / total edge weight`` in [0, 1], where the cut
weight sums the edges whose ends have different labels. A uniformly random partition scores about
0.5 and the best cuts of these dense graphs are only a little higher, so gains look small in
absolute terms. Labels must be all in {0, 1} or all in {-1, 1} (bools and equal floats accepted),
shape (n,) or (n, 1); anything else scores 0. Reference defects fixed: the reference returned the
mean cut weight / 10 (about 961 for a trivial partition, not in [0, 1]) and a single error or
time-out zeroed the whole call. The initial solution is a one-pass greedy that places the nodes in
order, each on the side that cuts more weight to the nodes already placed (O(n^2), well inside the
limit; the paper's seed was an O(n^3) greedy that timed out and scored 0%).

Reference scoring (``--scoring reference``): the reference scorer's rules (a wrong-length answer
makes the whole call 0, an error or time-out makes it 0.01, and the mean is floored at 0.01) on
this module's scale, cut / total weight. The reference's own scale, the mean cut weight divided by
10 (hundreds for these graphs), is not a score in [0, 1], and the paper's Table 1 percentages for
Max-Cut cannot be computed from it; they are not comparable with any score here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from selftaught.records import Instance, Split
from selftaught.tasks.common import Invalid, SeededTask, as_column, fill
from selftaught.tasks.params import Param

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
            n = np.random.randint({min_nodes}, {max_nodes} + 1)
            adjacency = np.zeros((n, n))
            for i in range(n):
                for j in range(i + 1, n):
                    if np.random.rand() < {p_edge}:
                        adjacency[i, j] = adjacency[j, i] = np.random.randint(1, {max_weight} + 1)
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
import numpy as np


def algorithm(adjacency):
    """Greedy: place the nodes in order, each on the side that cuts more weight to those placed."""
    weights = np.asarray(adjacency, dtype=float)
    n = len(weights)
    side = np.zeros(n, dtype=int)
    placed = np.zeros(n, dtype=bool)
    for node in range(n):
        to_one = weights[node, placed & (side == 1)].sum()
        to_zero = weights[node, placed & (side == 0)].sum()
        side[node] = 1 if to_zero > to_one else 0
        placed[node] = True
    return side.tolist()
'''


def cut_weight(adjacency: np.ndarray[Any, Any], labels: list[int]) -> float:
    """The total weight of edges whose two ends carry different labels."""
    side = np.asarray(labels)
    crossing = side[:, None] != side[None, :]
    return float(np.triu(adjacency * crossing, 1).sum())


def maxcut_instance(
    rng: np.random.Generator, min_nodes: int = 50, max_nodes: int = 200, p_edge: float = 0.4, max_weight: int = 10
) -> Instance:
    """One graph: args ``(adjacency,)`` as nested int lists; answer its total edge weight."""
    n = int(rng.integers(min_nodes, max_nodes + 1))
    weights = rng.integers(1, max_weight + 1, size=(n, n)) * (rng.random((n, n)) < p_edge)
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
    initial_solution = _INITIAL_SOLUTION
    array_args = frozenset({0})
    split_sizes: dict[Split, int] = {"train": 20, "val": 20, "test": 50}
    schema = (
        Param("min_nodes", 50, "fewest nodes", 2, 5_000),
        Param("max_nodes", 200, "most nodes", 2, 5_000),
        Param("p_edge", 0.4, "probability two nodes are joined", 0, 1, low_open=True),
        Param("max_weight", 10, "largest edge weight", 1, 1_000_000),
        Param("timeout_s", 0.1, "seconds per instance", 0, 600, low_open=True),
    )
    presets = {"paper": {}, "hard": {"min_nodes": 100, "max_nodes": 200, "p_edge": 0.03}}
    reference_note = ("labels of the wrong length or value make the whole utility 0, and an error or time-out "
                      "makes it 0.01; the mean is floored at 0.01.")

    def check_params(self) -> None:
        self._ordered("min_nodes", "max_nodes")

    def describe(self) -> str:
        p = self.params
        return fill(_DESCRIPTION, min_nodes=p["min_nodes"], max_nodes=p["max_nodes"], p_edge=float(p["p_edge"]),
                    max_weight=p["max_weight"], timeout=self.call_timeout_s)

    def generate(self, rng: np.random.Generator) -> Instance:
        p = self.params
        return maxcut_instance(rng, int(p["min_nodes"]), int(p["max_nodes"]), float(p["p_edge"]),
                               int(p["max_weight"]))

    def raw_score(self, instance: Instance, output: Any) -> float:
        adjacency = np.array(instance.args[0], dtype=np.int64)
        labels = as_labels(output, len(adjacency))
        total: int = instance.answer["total_weight"]
        return cut_weight(adjacency, labels) / total if total else 1.0

    def reference_combine(self, scores: Sequence[float], failures: Sequence[str]) -> float:
        """The reference's rules: a rejected answer makes the whole call 0, an error or time-out 0.01."""
        if "invalid" in failures:
            return 0.0
        if any(failures):
            return REFERENCE_EPS
        return max(super().reference_combine(scores, failures), REFERENCE_EPS)


REFERENCE_EPS = 0.01
