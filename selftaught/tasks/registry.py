"""Find tasks by name or by path.

Tasks come from the ``selftaught.tasks`` entry-point group: each entry point names a callable
``register_plugin(register)`` that calls ``register(name, factory)`` once per task, where
``factory()`` builds the task. The built-in tasks load the same way (``register_builtins`` below,
declared in selftaught's own pyproject); when selftaught runs from a source tree without installed
metadata they are registered directly. ``get_task`` also accepts the path of a task file
(see ``selftaught.tasks.plugin``). Built tasks are cached, so their splits are generated once.

A spec may carry parameters (``lpn:preset=hard``, ``lpn:bits=24,noise=0.1``; see
``selftaught.tasks.params``); only the built-in tasks take them. ``secret`` binds the hidden splits
(see ``selftaught.tasks.secret``) and ``scoring="reference"`` wraps a built-in task in the paper's
reference scorer (see ``selftaught.tasks.reference``).
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selftaught.errors import TaskError
from selftaught.tasks.base import Task
from selftaught.tasks.common import SeededTask
from selftaught.tasks.params import parse_spec
from selftaught.tasks.reference import SCORINGS, ReferenceScoring, Scoring
from selftaught.tasks.secret import SplitSecret

__all__ = ["Register", "TaskFactory", "describe_task", "get_task", "list_tasks", "register_builtins"]

TaskFactory = Callable[[], Task]
Register = Callable[[str, TaskFactory], None]

_GROUP = "selftaught.tasks"
_lock = threading.RLock()  # re-entrant: a factory may itself call get_task
_factories: dict[str, TaskFactory] = {}
_built: dict[tuple[str, tuple[tuple[str, str], ...]], Task] = {}
_canonical: dict[str, Task] = {}
_bound: dict[tuple[int, str], tuple[Task, Task]] = {}  # (id(unbound), fingerprint) -> (unbound, bound)
_loaded = False


def register_builtins(register: Register) -> None:
    """Register every built-in task (the ``builtin`` entry point of the ``selftaught.tasks`` group)."""
    from selftaught.tasks.lpn import LPNTask
    from selftaught.tasks.maxcut import MaxCutTask
    from selftaught.tasks.parity import ParityTask
    from selftaught.tasks.qap import QAPTask
    from selftaught.tasks.string_grid import StringGridTask
    from selftaught.tasks.three_sat import ThreeSATTask

    for task in (LPNTask, ParityTask, StringGridTask, QAPTask, ThreeSATTask, MaxCutTask):
        register(task.name, task)


def _register(name: str, factory: TaskFactory) -> None:
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise TaskError(f"task name {name!r} must be a non-empty word (letters, digits, '_', '-')")
    if not callable(factory):
        raise TaskError(f"task {name!r}: factory {factory!r} is not callable")
    known = _factories.get(name)
    if known is not None and known is not factory:
        raise TaskError(f"task {name!r} is registered twice")
    _factories[name] = factory


def _load() -> None:
    global _loaded
    if _loaded:
        return
    builtin_seen = False
    for entry_point in importlib.metadata.entry_points(group=_GROUP):
        builtin_seen = builtin_seen or entry_point.value == f"{__name__}:register_builtins"
        try:
            plugin = entry_point.load()
            plugin(_register)
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(f"task plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}") from exc
    if not builtin_seen:
        register_builtins(_register)
    _loaded = True


def list_tasks() -> list[str]:
    """The names of every registered task, sorted."""
    with _lock:
        _load()
        return sorted(_factories)


def describe_task(name: str) -> dict[str, Any]:
    """A task's name, its presets (with what each changes) and its parameters' default values."""
    with _lock:
        _load()
        factory = _factories.get(name)
    if isinstance(factory, type) and issubclass(factory, SeededTask):
        return {"name": name, "presets": {key: dict(value) for key, value in factory.presets.items()},
                "params": {param.name: param.default for param in factory.schema}}
    return {"name": name, "presets": {}, "params": {}}


def get_task(spec: str, secret: SplitSecret | None = None, scoring: Scoring = "normalised") -> Task:
    """The task a spec names: a registered name (with parameters) or a task file path.

    Raises ``TaskError`` for an unknown name (listing the known ones), a bad parameter, or a bad
    task file. Without ``secret`` the hidden splits are public (anyone can regenerate them).
    """
    if scoring not in SCORINGS:
        raise TaskError(f"scoring must be one of {', '.join(SCORINGS)}, not {scoring!r}")
    name, values = parse_spec(spec)
    task = _unbound(name, values)
    bind = getattr(task, "with_secret", None)
    if secret is not None and callable(bind):
        with _lock:  # one bound task per task and secret, so its splits are generated once
            key = (id(task), secret.fingerprint)
            if key not in _bound:
                _bound[key] = (task, bind(secret))
            task = _bound[key][1]
    if scoring == "reference":
        if not isinstance(task, SeededTask):
            raise TaskError(f"task {name!r} has no reference scoring (only the built-in tasks do)")
        return ReferenceScoring(task)
    return task


def _unbound(name: str, values: dict[str, str]) -> Task:
    if name.endswith(".py") or "/" in name or "\\" in name:
        from selftaught.tasks.plugin import load_task_file

        if values:
            raise TaskError(f"task file {name} takes no parameters (got {', '.join(values)})")
        return load_task_file(Path(name))
    with _lock:
        _load()
        task = _built.get((name, tuple(sorted(values.items()))))
        if task is not None:
            return task
        factory = _factories.get(name)
        if factory is None:
            known = ", ".join(sorted(_factories))
            raise TaskError(f"unknown task {name!r}; known tasks: {known} (or give a task file path)")
        builtin = isinstance(factory, type) and issubclass(factory, SeededTask)
        if values and not builtin:
            raise TaskError(f"task {name!r} takes no parameters (got {', '.join(values)})")
        try:
            task = factory(values) if builtin else factory()  # type: ignore[call-arg]
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(f"task {name!r} could not be built: {exc}") from exc
        # One task object per parameter set, however the spec spelled it (splits generated once).
        task = _canonical.setdefault(str(getattr(task, "spec", name)), task)
        _built[(name, tuple(sorted(values.items())))] = task
        return task
