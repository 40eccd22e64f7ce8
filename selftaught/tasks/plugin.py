"""Task plugins: a user's own task, declared in one Python file or registered by a package.

A task file is trusted user code, imported normally. It builds its task with ``define_task`` and
binds it to the module-level name ``TASK``::

    from selftaught.tasks.plugin import Invalid, define_task

    def generate(rng, split, index):          # rng: random.Random, seeded per (name, split, index)
        values = [rng.randint(0, 99) for _ in range(8)]
        return {"args": [values], "answer": sorted(values)}

    def score(instance, output):              # trusted; output is untrusted plain JSON data
        if not isinstance(output, list):
            raise Invalid("expected a list")  # -> Score(0, "invalid output: expected a list")
        return float(output == instance.answer)

    TASK = define_task(
        name="sort8", description="...", initial_solution="def algorithm(values): ...",
        score=score, generate=generate, split_sizes={"train": 10, "val": 10, "test": 20},
    )

``get_task("path/to/file.py")`` loads it. Instances come either from ``generate(rng, split, index)``
with ``split_sizes`` (generated lazily and cached; ``rng`` is ``random.Random("NAME/SPLIT/INDEX")``
for ``train``, and for ``val`` and ``test`` also seeded from the run's split secret, which
``generate`` never sees: see ``selftaught.tasks.secret``) or from ``instances={"train": [...],
"val": [...], "test": [...]}`` (fixed lists are as public as the file that holds them). Each instance is an ``Instance``
or a dict ``{"args": [...], "answer": ...}``; args and answer must be JSON-safe (no NaN). ``score``
returns a float or a ``Score``; raising ``Invalid`` (or any other exception) scores the output 0
with the message as the reason; a value outside [0, 1] is clipped and flagged.

A package registers tasks through the ``selftaught.tasks`` entry-point group: the entry point
names a callable ``register_plugin(register)`` that calls ``register(name, factory)``, where
``factory()`` returns a task (for example a ``define_task`` result). Every mistake in a task file
or declaration is one ``TaskError`` that names the file or task and the problem.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import math
import random
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from selftaught.errors import TaskError
from selftaught.records import Instance, Score, Split
from selftaught.tasks.base import Task
from selftaught.tasks.common import SPLITS, Invalid, bounded
from selftaught.tasks.secret import SplitSecret, split_seed

__all__ = ["DeclaredTask", "Invalid", "define_task", "load_task_file"]

Generate = Callable[[random.Random, Split, int], Any]
Scorer = Callable[[Instance, Any], Any]


def _instance(item: Any, where: str) -> Instance:
    if isinstance(item, dict) and set(item) <= {"args", "answer"} and "args" in item:
        item = Instance(args=tuple(item["args"]), answer=item.get("answer"))
    if not isinstance(item, Instance):
        raise TaskError(f"{where} must be an Instance or a dict with 'args' (and 'answer'), got {item!r:.60}")
    try:
        json.dumps([list(item.args), item.answer], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TaskError(f"{where} is not JSON-safe: {exc}") from exc
    return Instance(args=tuple(item.args), answer=item.answer)


class _Generated(Sequence[Instance]):
    """A split drawn lazily from a ``generate`` function, each instance checked and cached."""

    def __init__(self, task: DeclaredTask, generate: Generate, split: Split, size: int) -> None:
        self._task, self._generate, self._split = task, generate, split
        self._items: list[Instance | None] = [None] * size
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._items))[index]]
        position = range(len(self._items))[index]
        with self._lock:
            item = self._items[position]
            if item is None:
                where = f"task {self._task.name!r}: instance {self._split}[{position}]"
                seed = f"{self._task.name}/{self._split}/{position}"
                hidden = split_seed(self._task.secret, self._task.name, self._split, position)
                rng = random.Random(f"{seed}/{hidden:032x}" if hidden else seed)
                try:
                    drawn = self._generate(rng, self._split, position)
                except Exception as exc:
                    raise TaskError(f"{where}: generate raised {type(exc).__name__}: {exc}") from exc
                item = self._items[position] = _instance(drawn, where)
            return item


class DeclaredTask:
    """A task built by ``define_task``; implements the ``Task`` protocol."""

    def __init__(
        self,
        *,
        name: str,
        entry: str,
        description: str,
        initial_solution: str,
        call_timeout_s: float,
        array_args: frozenset[int],
        scorer: Scorer,
        splits: Mapping[Split, Sequence[Instance]],
    ) -> None:
        self.name = name
        self.entry = entry
        self.description = description
        self.initial_solution = initial_solution
        self.call_timeout_s = call_timeout_s
        self.array_args = array_args
        self._scorer = scorer
        self._splits = dict(splits)
        self.secret: SplitSecret | None = None

    def with_secret(self, secret: SplitSecret | None) -> DeclaredTask:
        """The same task whose generated hidden splits are drawn under ``secret``."""
        twin = DeclaredTask(name=self.name, entry=self.entry, description=self.description,
                            initial_solution=self.initial_solution, call_timeout_s=self.call_timeout_s,
                            array_args=self.array_args, scorer=self._scorer, splits={})
        twin.secret = secret
        twin._splits = {
            split: _Generated(twin, items._generate, split, len(items)) if isinstance(items, _Generated) else items
            for split, items in self._splits.items()
        }
        return twin

    def instances(self, split: Split) -> Sequence[Instance]:
        """The split's instances; deterministic and the same on every call."""
        if split not in self._splits:
            raise TaskError(f"task {self.name!r} has no split {split!r}; splits are {list(self._splits)}")
        return self._splits[split]

    def score(self, instance: Instance, output: Any) -> Score:
        """The declared scorer's verdict, in [0, 1]; an exception it raises scores 0."""
        try:
            result = self._scorer(instance, output)
        except Invalid as exc:
            return Score(0.0, f"invalid output: {exc}")
        except Exception as exc:
            return Score(0.0, f"scorer rejected the output: {type(exc).__name__}: {exc}")
        if isinstance(result, Score):
            return bounded(float(result.value), result.reason)
        if isinstance(result, bool) or not isinstance(result, int | float):
            raise TaskError(f"task {self.name!r}: score returned {result!r:.60}, not a number or Score")
        return bounded(float(result))


def _check_text(name: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaskError(f"task {name!r}: {field} must be a non-empty string")
    return value


def _check_solution(name: str, entry: str, source: str) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise TaskError(f"task {name!r}: initial_solution does not parse: {exc}") from exc
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    if entry not in defined:
        raise TaskError(f"task {name!r}: initial_solution does not define {entry}()")


def _splits(
    task: DeclaredTask,
    instances: Mapping[str, Iterable[Any]] | None,
    generate: Generate | None,
    split_sizes: Mapping[str, int] | None,
) -> dict[Split, Sequence[Instance]]:
    name = task.name
    if (instances is None) == (generate is None):
        raise TaskError(f"task {name!r}: give exactly one of instances= or generate=")
    given: Mapping[str, Any] | None = instances if instances is not None else split_sizes
    label = "instances" if instances is not None else "split_sizes"
    if not isinstance(given, Mapping) or set(given) != set(SPLITS):
        raise TaskError(f"task {name!r}: {label} must map exactly the splits {list(SPLITS)}")
    result: dict[Split, Sequence[Instance]] = {}
    for split in SPLITS:
        if instances is not None:
            items = list(instances[split])
            result[split] = [_instance(x, f"task {name!r}: instance {split}[{i}]") for i, x in enumerate(items)]
            size = len(result[split])
        else:
            if not callable(generate) or split_sizes is None:
                raise TaskError(f"task {name!r}: generate is not callable")
            size = given[split]
            if isinstance(size, bool) or not isinstance(size, int):
                raise TaskError(f"task {name!r}: split_sizes[{split!r}] must be an int")
            result[split] = _Generated(task, generate, split, size)
        if size < 1:
            raise TaskError(f"task {name!r}: split {split!r} has no instances")
    return result


def define_task(
    *,
    name: str,
    description: str,
    initial_solution: str,
    score: Scorer,
    instances: Mapping[str, Iterable[Any]] | None = None,
    generate: Generate | None = None,
    split_sizes: Mapping[str, int] | None = None,
    entry: str = "algorithm",
    call_timeout_s: float = 1.0,
    array_args: Iterable[int] = (),
) -> DeclaredTask:
    """Declare a task; see the module docstring. Raises ``TaskError`` naming any problem."""
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise TaskError(f"task name {name!r} must be a non-empty word (letters, digits, '_', '-')")
    if not isinstance(entry, str) or not entry.isidentifier():
        raise TaskError(f"task {name!r}: entry {entry!r} is not a Python identifier")
    _check_text(name, "description", description)
    _check_solution(name, entry, _check_text(name, "initial_solution", initial_solution))
    if not callable(score):
        raise TaskError(f"task {name!r}: score is not callable")
    if isinstance(call_timeout_s, bool) or not isinstance(call_timeout_s, int | float):
        raise TaskError(f"task {name!r}: call_timeout_s must be a number of seconds")
    if not (math.isfinite(call_timeout_s) and call_timeout_s > 0):
        raise TaskError(f"task {name!r}: call_timeout_s must be positive and finite")
    positions = list(array_args)
    if not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in positions):
        raise TaskError(f"task {name!r}: array_args must be argument positions (ints >= 0)")
    task = DeclaredTask(
        name=name,
        entry=entry,
        description=description,
        initial_solution=initial_solution,
        call_timeout_s=float(call_timeout_s),
        array_args=frozenset(positions),
        scorer=score,
        splits={},
    )
    task._splits = _splits(task, instances, generate, split_sizes)
    return task


_files_lock = threading.Lock()
_files: dict[Path, Task] = {}


def load_task_file(path: Path) -> Task:
    """The task bound to ``TASK`` in the Python file at ``path`` (imported once, then cached)."""
    resolved = path.expanduser().resolve()
    with _files_lock:
        if resolved in _files:
            return _files[resolved]
        if not resolved.is_file():
            raise TaskError(f"task file {path} does not exist")
        digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
        module_name = f"selftaught_task_file_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, resolved)
        if spec is None or spec.loader is None:
            raise TaskError(f"task file {path} cannot be imported as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except TaskError as exc:
            sys.modules.pop(module_name, None)
            raise TaskError(f"task file {path}: {exc}") from exc
        except (Exception, SystemExit) as exc:  # a task file must not take the caller down
            sys.modules.pop(module_name, None)
            raise TaskError(f"task file {path} failed to import: {type(exc).__name__}: {exc}") from exc
        task = getattr(module, "TASK", None)
        if task is None:
            raise TaskError(f"task file {path} defines no TASK (write TASK = define_task(...))")
        if not isinstance(task, Task):
            raise TaskError(f"task file {path}: TASK is a {type(task).__name__}, not a task")
        _files[resolved] = task
        return task
