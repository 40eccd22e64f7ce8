"""The task protocol: what a downstream problem provides to the broker and the improver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from selftaught.records import Instance, Score, Split

__all__ = ["Task"]


@runtime_checkable
class Task(Protocol):
    """A problem an improver optimises a solution for.

    The scorer and the instances stay in the trusted broker; only ``description`` (a grey-box
    account of the utility), ``initial_solution`` and instance ``args`` ever reach a sandbox or
    an LM prompt, and ``test`` instances reach no improver at all. The built-in tasks (and task
    files) also have ``with_secret(secret)``: the same task whose ``val`` and ``test`` instances are
    drawn under a split secret, so code that can read the task's source still cannot regenerate
    them (see ``selftaught.tasks.secret``). A task may define ``combine(scores, failures)`` to score
    a whole call (the reference scorers do; see ``selftaught.tasks.reference``).
    """

    name: str
    entry: str  # the function a solution defines, e.g. "algorithm"
    description: str  # shown to the LM as ``utility.str``
    initial_solution: str
    call_timeout_s: float  # CPU seconds per instance (the sandbox adds a wall-clock limit; see Job)
    array_args: frozenset[int]  # argument positions given to the solution as numpy arrays

    def instances(self, split: Split) -> Sequence[Instance]:
        """The split's instances; deterministic (seeded) and the same on every call."""
        ...

    def score(self, instance: Instance, output: Any) -> Score:
        """Score one solution output (plain JSON data) in [0, 1]; invalid output scores 0."""
        ...
