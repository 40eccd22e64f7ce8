"""The task registry: names, entry points, errors."""

from __future__ import annotations

import pytest

from selftaught.errors import TaskError
from selftaught.tasks import Task, get_task, list_tasks, registry


def test_builtins_are_listed_and_cached() -> None:
    names = list_tasks()
    assert {"lpn", "parity"} <= set(names) and names == sorted(names)
    task = get_task("lpn")
    assert task is get_task("lpn")
    assert isinstance(task, Task) and task.name == "lpn"


def test_unknown_name_names_the_known_tasks() -> None:
    with pytest.raises(TaskError, match="unknown task 'nope'.*lpn"):
        get_task("nope")


def test_register_builtins_registers_through_the_callback() -> None:
    seen: dict[str, object] = {}
    registry.register_builtins(lambda name, factory: seen.setdefault(name, factory))
    assert {"lpn", "parity"} <= set(seen)
    for name, factory in seen.items():
        assert callable(factory) and factory().name == name  # type: ignore[operator]


def test_bad_registrations_are_task_errors() -> None:
    with pytest.raises(TaskError, match="non-empty word"):
        registry._register("", lambda: get_task("lpn"))
    with pytest.raises(TaskError, match="not callable"):
        registry._register("x", 3)  # type: ignore[arg-type]
    with pytest.raises(TaskError, match="registered twice"):
        registry._register("lpn", lambda: get_task("lpn"))
