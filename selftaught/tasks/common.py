"""Shared machinery of the built-in tasks: seeded lazy splits and output validation.

Splits. Every built-in task has ``train`` (what an improver's utility sees), ``val`` (what the
loop selects on) and ``test`` (reported only) splits. Instance ``index`` of split ``split`` of task
``name`` is generated from ``numpy.random.default_rng(SeedSequence([crc32(name), SPLIT_SEEDS[split],
index, *secret words]))``: ``train`` depends on nothing but those three values; ``val`` and ``test``
also on the task's ``SplitSecret`` (see ``selftaught.tasks.secret``), so code that can read this
module still cannot regenerate them. Without a secret (``secret=None``, for tests and exploring)
the hidden splits are public too. Instances are generated on first use and cached. The per-split
base seeds are distinct, so no two splits share an instance seed.

Parameters. Each task declares ``schema`` (its ``Param`` rows) and ``presets`` (``paper``, the
reference setting and the default, and harder ones); ``params`` holds the resolved values and
``spec`` the canonical spec naming them (see ``selftaught.tasks.params``).

Scoring. Scorers read untrusted plain data. Validators here raise ``Invalid(reason)``;
``SeededTask.score`` turns that into ``Score(0, reason)`` and clips every other raw score into
[0, 1] (a NaN raw score becomes 0), saying so in the reason when it had to.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

from selftaught.errors import TaskError
from selftaught.records import WALL_FACTOR, WALL_SLACK_S, Instance, Score, Split
from selftaught.tasks.params import Param, canonical_spec, resolve
from selftaught.tasks.secret import SplitSecret, split_seed

__all__ = [
    "SPLITS",
    "SPLIT_SEEDS",
    "Invalid",
    "as_column",
    "LazyInstances",
    "SeededTask",
    "as_binary_vector",
    "bounded",
    "fill",
    "as_permutation",
    "instance_rng",
    "plain",
    "time_limit_sentence",
    "with_time_limits",
]

SPLITS: tuple[Split, ...] = ("train", "val", "test")
SPLIT_SEEDS: Mapping[Split, int] = {"train": 7_000_001, "val": 7_000_002, "test": 7_000_003}


class Invalid(Exception):
    """A solution output that cannot be scored; the message is the reason it scores 0."""


def instance_rng(task: str, split: Split, index: int, secret: SplitSecret | None = None) -> np.random.Generator:
    """The random generator for instance ``index`` of ``split`` of the task named ``task``."""
    words = [zlib.crc32(task.encode()), SPLIT_SEEDS[split], index]
    hidden = split_seed(secret, task, split, index)
    if hidden:
        words += [(hidden >> shift) & 0xFFFFFFFF for shift in (0, 32, 64, 96)]
    return np.random.default_rng(np.random.SeedSequence(words))


_TIME_LIMIT = re.compile(r"<time limit per (\w+)>")


def time_limit_sentence(limit_s: float, item: str) -> str:
    """What the sandbox does with one instance's time limit, as task descriptions tell the model."""
    wall = WALL_FACTOR * limit_s + WALL_SLACK_S
    return (f"{limit_s:g} s of CPU time per {item} ({wall:g} s of wall time); past that the call is "
            f"stopped and this {item} scores 0, while the other {item}s still run")


def with_time_limits(text: str, limit_s: float) -> str:
    """``text`` with each ``<time limit per ITEM>`` replaced by ``time_limit_sentence(limit_s, ITEM)``."""
    return _TIME_LIMIT.sub(lambda match: time_limit_sentence(limit_s, match.group(1)), text)


class LazyInstances(Sequence[Instance]):
    """A fixed-length sequence of instances, each generated on first access and then kept."""

    def __init__(self, task: SeededTask, split: Split, size: int) -> None:
        self._task = task
        self._split = split
        self._items: list[Instance | None] = [None] * size

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Instance: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Instance]: ...

    def __getitem__(self, index: int | slice) -> Instance | Sequence[Instance]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._items))[index]]
        position = range(len(self._items))[index]  # IndexError and negative indices as for lists
        item = self._items[position]
        if item is None:
            rng = instance_rng(self._task.name, self._split, position, self._task.secret)
            item = self._task.generate(rng)
            self._items[position] = item
        return item

    def __iter__(self) -> Iterator[Instance]:
        return (self[i] for i in range(len(self._items)))


class SeededTask:
    """Base of the built-in tasks: seeded lazy splits and a scorer that always lands in [0, 1].

    Subclasses set the class attributes below and define ``generate``, ``raw_score`` and
    ``describe`` (the grey-box description for the current ``params``). ``schema`` must have a
    ``timeout_s`` row: it is the per-instance time limit.
    """

    name: str
    entry: str = "algorithm"
    initial_solution: str
    array_args: frozenset[int] = frozenset()
    split_sizes: Mapping[Split, int]
    schema: tuple[Param, ...]
    presets: Mapping[str, Mapping[str, int | float]]
    reference_note: str = ""  # how reference scoring differs from the description's sketch, if it does

    def __init__(self, values: Mapping[str, str] | None = None, secret: SplitSecret | None = None) -> None:
        self.preset, self.params = resolve(self.name, self.schema, self.presets, values or {})
        self.secret = secret
        self.check_params()
        self.spec = canonical_spec(self.name, self.preset, self.params, self.presets, self.schema)
        self.call_timeout_s = float(self.params["timeout_s"])
        self.description = self.describe()
        self._splits: dict[Split, LazyInstances] = {}
        description = getattr(self, "description", None)
        if isinstance(description, str):
            self.description = with_time_limits(description, self.call_timeout_s)

    def with_secret(self, secret: SplitSecret | None) -> SeededTask:
        """The same task (same parameters) whose hidden splits are drawn under ``secret``."""
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.secret = secret
        twin._splits = {}
        return twin

    def describe(self) -> str:
        """The grey-box description shown to the LM, for ``self.params``."""
        raise NotImplementedError

    def check_params(self) -> None:
        """Raise ``TaskError`` for parameters that are each in range but do not fit together."""

    def _ordered(self, low: str, high: str) -> None:
        if self.params[low] > self.params[high]:
            raise TaskError(f"task {self.name!r}: {low}={self.params[low]!r} is above {high}={self.params[high]!r}")

    def reference_score(self, instance: Instance, output: Any) -> Score:
        """One instance scored on the paper's reference scale (``--scoring reference``); by default
        the same as ``score``. Tasks whose reference scorer differs override it and ``combine``."""
        return self.score(instance, output)

    def reference_combine(self, scores: Sequence[float], failures: Sequence[str]) -> float:
        """The reference score of a whole call from per-instance reference scores and failures
        (``""`` scored, ``invalid``, ``timeout``, ``error``, ``missing``); by default the mean."""
        return sum(scores) / len(scores) if scores else 0.0

    def instances(self, split: Split) -> Sequence[Instance]:
        """The split's instances; deterministic (seeded) and the same on every call."""
        if split not in self.split_sizes:
            raise TaskError(f"task {self.name!r} has no split {split!r}; splits are {list(self.split_sizes)}")
        if split not in self._splits:
            self._splits[split] = LazyInstances(self, split, self.split_sizes[split])
        return self._splits[split]

    def generate(self, rng: np.random.Generator) -> Instance:
        """Draw one instance from ``rng``; ``args`` and ``answer`` must be plain JSON data."""
        raise NotImplementedError

    def raw_score(self, instance: Instance, output: Any) -> float:
        """Score a validated output; raise ``Invalid`` for anything malformed."""
        raise NotImplementedError

    def score(self, instance: Instance, output: Any) -> Score:
        """Score one solution output (plain JSON data) in [0, 1]; invalid output scores 0."""
        try:
            value = float(self.raw_score(instance, output))
        except Invalid as exc:
            return Score(0.0, f"invalid output: {exc}")
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            return Score(0.0, f"invalid output: malformed ({type(exc).__name__})")
        return bounded(value)


def fill(template: str, **values: Any) -> str:
    """``template`` with each ``{key}`` of ``values`` replaced (numbers as ``:g``); other braces stay."""
    for key, value in values.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        template = template.replace("{" + key + "}", text)
    return template


def bounded(value: float, reason: str = "") -> Score:
    """``Score(value, reason)`` with ``value`` clipped into [0, 1] (NaN to 0), saying so when it was."""
    if math.isnan(value):
        return Score(0.0, "raw score was NaN")
    if value < 0.0 or value > 1.0:
        note = f"raw score {value!r} clipped to [0, 1]"
        return Score(min(1.0, max(0.0, value)), f"{reason}; {note}" if reason else note)
    return Score(value, reason)


def plain(output: Any) -> Any:
    """Numpy arrays and scalars as plain Python data (the sandbox already sends plain data)."""
    if isinstance(output, np.ndarray | np.generic):
        return output.tolist()
    return output


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _binary(value: Any) -> int:
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, float) and value in (0.0, 1.0):  # NaN compares unequal to both
        return int(value)
    raise Invalid(f"element {_describe(value)} is not 0 or 1")


def as_binary_vector(output: Any, length: int) -> list[int]:
    """``output`` as ``length`` values in {0, 1}: a flat list, or a ``(length, 1)`` nested list.

    Bools and the floats 0.0 / 1.0 are accepted; any other shape, length or value is ``Invalid``.
    """
    return [_binary(value) for value in as_column(output, length, "values 0/1")]


def as_column(output: Any, length: int, what: str) -> list[Any]:
    """``output`` as a flat list of ``length`` items: shape ``(length,)`` or ``(length, 1)``, else ``Invalid``."""
    output = plain(output)
    if not isinstance(output, list | tuple):
        raise Invalid(f"expected a list of {length} {what}, got {type(output).__name__}")
    if len(output) != length:
        raise Invalid(f"expected {length} {what}, got {len(output)}")
    if output and all(isinstance(row, list | tuple) for row in output):
        if not all(len(row) == 1 for row in output):
            raise Invalid(f"expected shape ({length},) or ({length}, 1)")
        output = [row[0] for row in output]
    return list(output)


def as_permutation(output: Any, size: int) -> list[int]:
    """``output`` as a permutation of ``0..size-1`` (ints, or floats equal to ints); else ``Invalid``."""
    output = plain(output)
    if not isinstance(output, list | tuple):
        raise Invalid(f"expected a permutation of 0..{size - 1}, got {type(output).__name__}")
    if len(output) != size:
        raise Invalid(f"expected {size} entries, got {len(output)}")
    values: list[int] = []
    for value in output:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"entry {_describe(value)} is not an integer")
        if isinstance(value, float) and not value.is_integer():
            raise Invalid(f"entry {_describe(value)} is not an integer")
        values.append(int(value))
    if sorted(values) != list(range(size)):
        raise Invalid(f"not a permutation of 0..{size - 1}")
    return values
