"""Which secret and instances a run uses: kept in the store, reused on resume, checked every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from selftaught import app
from selftaught.config import RunConfig
from selftaught.errors import StoreError, TaskError
from selftaught.store import RunRecorder, RunStore
from selftaught.store.splits import RunSplit, record_split, run_splits
from selftaught.tasks.secret import SplitSecret


def _session(store: RunStore, run_id: str, config: RunConfig, secret: SplitSecret | None) -> app.RunSession:
    broker: Any = None  # RunSession.task needs no broker
    return app.RunSession(store, run_id, config, broker, RunRecorder(store, run_id), secret)


def test_a_store_makes_one_secret_and_keeps_it(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    first = app.run_secret(store, RunConfig())
    assert app.run_secret(store, RunConfig()) == first
    assert app.run_secret(RunStore.in_dir(tmp_path / "other"), RunConfig()) != first


def test_a_secret_file_wins_for_new_runs_and_the_recorded_secret_for_old_ones(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    shared = SplitSecret.new()
    path = tmp_path / "shared.secret"
    path.write_text(shared.hex())
    config = RunConfig(secret_file=str(path))
    assert app.run_secret(store, config) == shared

    run_id = store.create_run("lpn", "scripted", 0, config.to_dict(), [])
    task = _session(store, run_id, config, shared).task("lpn:preset=hard")
    (recorded,) = run_splits(store, run_id)
    assert (recorded.task, recorded.params["bits"], recorded.secret) == ("lpn:preset=hard", 32, shared.fingerprint)
    again = _session(store, run_id, config, shared).task("lpn:preset=hard")
    assert task.instances("val")[0] == again.instances("val")[0]
    # Resuming finds the run's own secret, even after the file is gone.
    path.unlink()
    assert app.run_secret(store, RunConfig(), run_id) == shared


def test_a_run_refuses_to_continue_on_other_instances(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    record_split(store, run_id, RunSplit("lpn", {}, "normalised", "0" * 16, "f" * 16))
    with pytest.raises(TaskError, match="the task or its code changed"):
        _session(store, run_id, RunConfig(), SplitSecret.new()).task("lpn")


def test_a_missing_secret_is_one_clear_error(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    record_split(store, run_id, RunSplit("lpn", {}, "normalised", "0" * 16, "f" * 16))
    with pytest.raises(StoreError, match="no split secret 0000000000000000 .*secret import"):
        app.run_secret(store, RunConfig(), run_id)


def test_a_run_made_before_secret_splits_keeps_its_public_splits(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    program = store.add_program(run_id, "solution", "def algorithm(a, b, c):\n    return [0] * len(c)\n")
    RunRecorder(store, run_id).evaluation(program, "t0", "lpn", "val", 0.5, 20, 0, "", 0.1)
    assert app.run_secret(store, RunConfig(), run_id) is None
    session = _session(store, run_id, RunConfig(), None)
    from selftaught.tasks import get_task

    assert session.task("lpn").instances("val")[0] == get_task("lpn").instances("val")[0]
    assert run_splits(store, run_id)[0].secret == ""
