"""Find tasks by name or by path.

Tasks come from the ``selftaught.tasks`` entry-point group: each entry point names a callable
``register_plugin(register)`` that calls ``register(name, factory)`` once per task, where
``factory()`` builds the task. The built-in tasks load the same way (``register_builtins`` below,
declared in selftaught's own pyproject); when selftaught runs from a source tree without installed
metadata they are registered directly. ``get_task`` also accepts the path of a task file
(see ``selftaught.tasks.plugin``). Built tasks are cached, so their splits are generated once.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from pathlib import Path

from selftaught.errors import TaskError
from selftaught.tasks.base import Task

__all__ = ["Register", "TaskFactory", "get_task", "list_tasks", "register_builtins"]

TaskFactory = Callable[[], Task]
Register = Callable[[str, TaskFactory], None]

_GROUP = "selftaught.tasks"
_lock = threading.RLock()  # re-entrant: a factory may itself call get_task
_factories: dict[str, TaskFactory] = {}
_built: dict[str, Task] = {}
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


def _looks_like_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".py") or "/" in name_or_path or "\\" in name_or_path


def get_task(name_or_path: str) -> Task:
    """The task registered as ``name_or_path``, or the one declared in the task file at that path.

    Raises ``TaskError`` for an unknown name (listing the known ones) or a bad task file.
    """
    if _looks_like_path(name_or_path):
        from selftaught.tasks.plugin import load_task_file

        return load_task_file(Path(name_or_path))
    with _lock:
        _load()
        task = _built.get(name_or_path)
        if task is not None:
            return task
        factory = _factories.get(name_or_path)
        if factory is None:
            known = ", ".join(sorted(_factories))
            raise TaskError(f"unknown task {name_or_path!r}; known tasks: {known} (or give a task file path)")
        try:
            task = factory()
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(f"task {name_or_path!r} could not be built: {exc}") from exc
        _built[name_or_path] = task
        return task
