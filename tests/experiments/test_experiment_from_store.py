"""``selftaught experiment --from-runs`` aggregates STOP runs already in the store."""

import json
from pathlib import Path

import pytest

from selftaught.cli import main
from selftaught.records import Iteration
from selftaught.store import RunStore


def test_stored_runs_are_aggregated_per_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore.in_dir(tmp_path)
    run_ids = []
    for test_scores in ((0.5, 0.7), (0.5, 0.9)):
        run_id = store.create_run("lpn", "x", 0, {}, [])
        seed = store.add_program(run_id, "improver", "seed")
        better = store.add_program(run_id, "improver", "better", seed)
        store.add_iteration(run_id, Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.5, val_se=0.0,
                                              test=test_scores[0], test_se=0.0, accepted=True))
        store.add_iteration(run_id, Iteration(t=1, candidate_id=better, incumbent_id=better, val=0.8, val_se=0.0,
                                              test=test_scores[1], test_se=0.0, accepted=True))
        run_ids.append(run_id)
    other = store.create_run("lpn,parity", "x", 0, {}, [], kind="transfer")
    store.close()

    assert main(["experiment", "--from-runs", ",".join(run_ids), "--runs-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runs"] == run_ids
    step1 = doc["experiment"]["steps"][1]
    assert step1["t"] == 1 and step1["runs"] == 2 and step1["adopted"] == 2
    assert step1["incumbent_test"]["mean"] == pytest.approx(0.8)  # the mean of 0.7 and 0.9
    assert step1["incumbent_test"]["se"] == pytest.approx(0.1)

    assert main(["experiment", "--from-runs", other, "--runs-dir", str(tmp_path)]) == 1
    assert "is not a STOP run" in capsys.readouterr().err
