"""Task files and define_task: a working plugin, and one clear TaskError per mistake."""

from __future__ import annotations

import math
import random
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selftaught.errors import TaskError
from selftaught.records import Instance, Score
from selftaught.tasks import Task, define_task, get_task
from tests.tasks.solutions import run_split

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "knapsack.py"

SOLUTION = "def algorithm(x):\n    return x\n"


def echo_score(instance: Instance, output: Any) -> float:
    return 1.0 if output == instance.answer else 0.0


def declare(**changes: Any) -> Task:
    fields: dict[str, Any] = {
        "name": "echo",
        "description": "returns its argument",
        "initial_solution": SOLUTION,
        "score": echo_score,
        "instances": {s: [{"args": [i], "answer": i}] for i, s in enumerate(["train", "val", "test"])},
    }
    fields.update(changes)
    return define_task(**fields)


def test_example_task_file_loads_and_scores() -> None:
    task = get_task(str(EXAMPLE))
    assert isinstance(task, Task) and task.name == "knapsack"
    assert task is get_task(str(EXAMPLE))
    assert [len(task.instances(s)) for s in ("train", "val", "test")] == [10, 10, 20]
    greedy = run_split(task, task.initial_solution)
    assert 0.3 < np.mean(greedy) < 1.0
    instance = task.instances("val")[0]
    assert task.score(instance, [0, 0]).value == 0.0
    assert task.score(instance, list(range(20))).value == 0.0  # over capacity
    assert task.score(instance, "nope").reason.startswith("invalid output")


def test_generated_instances_are_seeded_per_split_and_index() -> None:
    def generate(rng: random.Random, split: str, index: int) -> dict[str, Any]:
        return {"args": [rng.random()], "answer": None}

    first = declare(instances=None, generate=generate, split_sizes={"train": 3, "val": 3, "test": 3})
    second = declare(instances=None, generate=generate, split_sizes={"train": 3, "val": 3, "test": 3})
    assert list(first.instances("val")) == list(second.instances("val"))
    values = {first.instances(s)[i].args[0] for s in ("train", "val", "test") for i in range(3)}
    assert len(values) == 9


def test_declared_scores_are_bounded() -> None:
    def wild(instance: Instance, output: Any) -> Any:
        return output

    task = declare(score=wild)
    instance = task.instances("train")[0]
    assert task.score(instance, 5.0).value == 1.0 and "clipped" in task.score(instance, 5.0).reason
    assert task.score(instance, -1).value == 0.0
    assert task.score(instance, math.nan).value == 0.0
    assert task.score(instance, Score(0.25, "partial")) == Score(0.25, "partial")
    with pytest.raises(TaskError, match="not a number"):
        task.score(instance, "text")

    def crash(instance: Instance, output: Any) -> float:
        raise KeyError("boom")

    assert declare(score=crash).score(instance, 1) == Score(0.0, "scorer rejected the output: KeyError: 'boom'")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "non-empty word"),
        ({"name": "a b"}, "non-empty word"),
        ({"description": ""}, "description must be"),
        ({"initial_solution": "def algorithm(:"}, "does not parse"),
        ({"initial_solution": "def solve(x): return x"}, r"does not define algorithm\(\)"),
        ({"entry": "not valid"}, "not a Python identifier"),
        ({"score": 3}, "score is not callable"),
        ({"call_timeout_s": 0}, "positive"),
        ({"call_timeout_s": "1"}, "number of seconds"),
        ({"array_args": [-1]}, "array_args"),
        ({"instances": None}, "exactly one of"),
        ({"generate": lambda rng, s, i: {"args": [1]}}, "exactly one of"),
        ({"instances": {"train": [{"args": [1]}]}}, "exactly the splits"),
        ({"instances": {"train": [], "val": [{"args": [1]}], "test": [{"args": [1]}]}}, "no instances"),
        ({"instances": {s: [{"args": [math.nan]}] for s in ("train", "val", "test")}}, "not JSON-safe"),
        ({"instances": {s: [{"args": [object()]}] for s in ("train", "val", "test")}}, "not JSON-safe"),
        ({"instances": {s: [[1]] for s in ("train", "val", "test")}}, "must be an Instance"),
    ],
)
def test_declaration_mistakes_are_one_task_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError, match=message):
        declare(**changes)


def test_generate_errors_name_the_instance() -> None:
    def broken(rng: random.Random, split: str, index: int) -> Any:
        if index == 1:
            return {"args": [set()]}
        return {"args": [index]}

    task = declare(instances=None, generate=broken, split_sizes={"train": 2, "val": 1, "test": 1})
    assert task.instances("train")[0].args == (0,)
    with pytest.raises(TaskError, match=r"instance train\[1\] is not JSON-safe"):
        task.instances("train")[1]


def write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "task.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = 1\n", "defines no TASK"),
        ("TASK = 3\n", "TASK is a int, not a task"),
        ("import no_such_module_here\n", "failed to import: ModuleNotFoundError"),
        ("def broken(:\n", "failed to import: SyntaxError"),
        ("raise SystemExit(2)\n", "failed to import: SystemExit"),
        (
            "from selftaught.tasks import define_task\nTASK = define_task(name='t', description='d',"
            " initial_solution='def algorithm(): pass', score=None, instances={})\n",
            "score is not callable",
        ),
    ],
)
def test_bad_task_files_are_one_task_error(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        get_task(write(tmp_path, body))


def test_missing_task_file(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="does not exist"):
        get_task(str(tmp_path / "absent.py"))
