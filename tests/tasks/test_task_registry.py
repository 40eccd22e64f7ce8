"""The task registry: names, entry points, errors."""

from __future__ import annotations

import importlib.metadata

import pytest

from selftaught.errors import TaskError
from selftaught.tasks import Task, get_task, list_tasks, registry


def test_builtins_are_listed_and_cached() -> None:
    names = list_tasks()
    assert set(names) >= {"lpn", "parity", "string_grid", "qap", "three_sat", "maxcut"}
    assert names == sorted(names)
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


def register_demo(register: registry.Register) -> None:
    """A package's entry point: registers the example task file under another name."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "knapsack.py"
    register("demo_knapsack", lambda: get_task(str(example)))


def register_broken(register: registry.Register) -> None:
    raise RuntimeError("cannot start")


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_factories", {})
    monkeypatch.setattr(registry, "_built", {})
    monkeypatch.setattr(registry, "_canonical", {})
    monkeypatch.setattr(registry, "_loaded", False)


def fake_entry_points(*values: str) -> object:
    points = [
        importlib.metadata.EntryPoint(name=f"p{i}", value=value, group="selftaught.tasks")
        for i, value in enumerate(values)
    ]
    return lambda group: points if group == "selftaught.tasks" else []


@pytest.mark.usefixtures("fresh_registry")
def test_entry_point_plugins_add_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        importlib.metadata, "entry_points", fake_entry_points("tests.tasks.test_task_registry:register_demo")
    )
    assert {"demo_knapsack", "lpn", "qap"} <= set(list_tasks())  # built-ins still load without metadata
    assert get_task("demo_knapsack").name == "knapsack"


@pytest.mark.usefixtures("fresh_registry")
def test_broken_entry_point_is_a_task_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        importlib.metadata, "entry_points", fake_entry_points("tests.tasks.test_task_registry:register_broken")
    )
    with pytest.raises(TaskError, match="task plugin 'p0'.*failed to load: cannot start"):
        list_tasks()
