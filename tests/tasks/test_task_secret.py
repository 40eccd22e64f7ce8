"""Secret splits: val/test depend on a secret only the broker holds; train stays public."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from selftaught.errors import TaskError
from selftaught.records import Instance
from selftaught.tasks import define_task, get_task
from selftaught.tasks.secret import SplitSecret, instances_fingerprint
from tests.tasks.lookup import ANSWERS, lookup_solution
from tests.tasks.solutions import split_score

SECRET = SplitSecret(bytes(range(32)))
OTHER = SplitSecret(bytes(range(1, 33)))


def _args(task: Any, split: str) -> list[Any]:
    return [instance.args for instance in task.instances(split)]


@pytest.mark.parametrize("name", ["lpn", "parity", "string_grid", "three_sat", "maxcut", "qap"])
def test_hidden_splits_depend_on_the_secret_and_train_does_not(name: str) -> None:
    public, bound, other = get_task(name), get_task(name, SECRET), get_task(name, OTHER)
    assert _args(bound, "train")[:2] == _args(public, "train")[:2] == _args(other, "train")[:2]
    for split in ("val", "test"):
        assert bound.instances(split)[0].args != public.instances(split)[0].args
        assert bound.instances(split)[0].args != other.instances(split)[0].args
    assert get_task(name, SplitSecret(bytes(range(32)))).instances("val")[0] == bound.instances("val")[0]


def test_the_secret_never_shows_in_text() -> None:
    text = f"{SECRET} {SECRET!r} {[SECRET]}"
    assert SECRET.hex() not in text and SECRET.fingerprint in text
    assert SECRET.fingerprint != OTHER.fingerprint and len(SECRET.fingerprint) == 16


def test_secret_files_round_trip_and_bad_ones_are_one_error(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET.hex() + "\n")
    assert SplitSecret.from_file(path) == SECRET
    path.write_text("not hex")
    with pytest.raises(TaskError, match="is not hex"):
        SplitSecret.from_file(path)
    path.write_text("abcd")
    with pytest.raises(TaskError, match="must be 64 hex digits"):
        SplitSecret.from_file(path)
    with pytest.raises(TaskError, match="cannot read secret file"):
        SplitSecret.from_file(tmp_path / "missing")


def test_the_instance_fingerprint_tells_instances_apart() -> None:
    def fingerprint(task: Any) -> str:
        return instances_fingerprint((split, task.instances(split)) for split in ("train", "val", "test"))

    assert fingerprint(get_task("lpn", SECRET)) == fingerprint(get_task("lpn", SplitSecret(bytes(range(32)))))
    assert fingerprint(get_task("lpn", SECRET)) != fingerprint(get_task("lpn", OTHER))
    assert fingerprint(get_task("lpn", SECRET)) != fingerprint(get_task("lpn:bits=11", SECRET))
    # The time limit does not change the instances.
    assert fingerprint(get_task("lpn", SECRET)) == fingerprint(get_task("lpn:timeout_s=5", SECRET))


def test_a_task_files_generate_gets_a_seeded_rng_and_never_the_secret() -> None:
    seen: list[tuple[Any, ...]] = []

    def generate(rng: random.Random, split: str, index: int) -> dict[str, Any]:
        seen.append((type(rng), split, index))
        return {"args": [rng.random()], "answer": None}

    task = define_task(name="draws", description="d", initial_solution="def algorithm(x):\n    return x\n",
                       score=lambda instance, output: 0.0, generate=generate,
                       split_sizes={"train": 2, "val": 2, "test": 2})
    bound = task.with_secret(SECRET)
    assert [i.args for i in bound.instances("train")] == [i.args for i in task.instances("train")]
    assert [i.args for i in bound.instances("val")] != [i.args for i in task.instances("val")]
    assert [i.args for i in get_task_file_twin(task).instances("test")] == [i.args for i in bound.instances("test")]
    assert all(kind is random.Random and isinstance(index, int) for kind, _, index in seen)


def get_task_file_twin(task: Any) -> Any:
    return task.with_secret(SplitSecret(bytes(range(32))))


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_the_lookup_attack_wins_on_public_splits_and_not_on_secret_ones(name: str) -> None:
    source = lookup_solution(name)
    public, bound = get_task(name), get_task(name, SECRET)
    honest = split_score(bound, public.initial_solution)
    for split in ("val", "test"):
        assert split_score(public, source, split) == 1.0  # the hole the secret closes
        assert split_score(bound, source, split) <= max(honest, 0.5) + 0.1


def test_fixed_instance_lists_stay_as_given() -> None:
    task = define_task(name="fixed", description="d", initial_solution="def algorithm(x):\n    return x\n",
                       score=lambda instance, output: 0.0,
                       instances={s: [Instance(args=(1,))] for s in ("train", "val", "test")})
    assert task.with_secret(SECRET).instances("val") == task.instances("val")
