"""Transfer tables: the selection rule, the table's shape, CSV/JSON, and the stored rows the report reads."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from selftaught.errors import ConfigError
from selftaught.experiments import record_transfer, select_improver, transfer_table
from selftaught.experiments.tables import csv_rows, transfer_rich, write_csv, write_json
from selftaught.improver import SEED_IMPROVER
from selftaught.records import Iteration
from selftaught.store import RunStore
from selftaught.store.reader import StoreReader
from selftaught.tasks import get_task
from tests.experiments.conftest import Wired, good_when_hinted
from tests.programs.lpn import hinted_improver


def _stop_run(store: RunStore, steps: list[tuple[float | None, bool]]) -> tuple[str, list[int]]:
    """A stored STOP run whose step t proposed program t with val score ``steps[t][0]``."""
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    ids = [store.add_program(run_id, "improver", f"# improver {t}\n") for t in range(len(steps))]
    incumbent = ids[0]
    for t, (val, accepted) in enumerate(steps):
        if accepted:
            incumbent = ids[t]
        store.add_iteration(run_id, Iteration(t=t, candidate_id=ids[t], incumbent_id=incumbent, val=val, val_se=0.01,
                                              test=0.5, test_se=0.01, accepted=accepted, reason=""))
    return run_id, ids


def test_best_val_picks_the_highest_adopted_val_and_the_earliest_on_ties() -> None:
    store = RunStore(":memory:")
    run_id, ids = _stop_run(store, [(0.5, True), (0.9, False), (0.7, True), (0.7, True), (0.6, True)])
    chosen = select_improver(store, run_id, "best_val")
    # Step 1 scored 0.9 but was not adopted; steps 2 and 3 tie at 0.7: the earlier wins.
    assert chosen.program_id == ids[2] and chosen.source == "# improver 2\n"
    assert "best_val" in chosen.why and "t=2" in chosen.why and "0.7000" in chosen.why
    last = select_improver(store, run_id, "last")
    assert last.program_id == ids[4] and "I_T" in last.why


def test_selection_errors_are_config_errors() -> None:
    store = RunStore(":memory:")
    empty = store.create_run("lpn", "scripted", 0, {}, [])
    with pytest.raises(ConfigError, match="no finished steps"):
        select_improver(store, empty, "best_val")
    run_id, _ = _stop_run(store, [(0.5, True)])
    with pytest.raises(ConfigError, match="unknown selection rule"):
        select_improver(store, run_id, "best_test")


@pytest.mark.slow
def test_transfer_table_shape_csv_json_and_stored_rows(wire: Callable[..., Wired], tmp_path: Path) -> None:
    wired = wire(good_when_hinted)
    tasks = [get_task("lpn"), get_task("string_grid")]
    improvers = {"seed": SEED_IMPROVER, "hinted": hinted_improver(SEED_IMPROVER)}
    table = transfer_table(wired.broker, tasks, improvers, 2, "transfer", origins={"hinted": "a test improver"})
    assert table.tasks == ("lpn", "string_grid") and table.runs == 2 and table.split == "test"
    assert [c.name for c in table.columns] == ["seed", "hinted"]
    for column in table.columns:
        assert [cell.task for cell in column.score.tasks] == ["lpn", "string_grid"]
        assert all(len(cell.raw.scores) == 2 for cell in column.score.tasks)
    lpn_seed, lpn_hinted = (c.score.tasks[0] for c in table.columns)
    assert lpn_hinted.raw.mean > lpn_seed.raw.mean + 0.2  # the hint brings the good LPN solution
    assert lpn_hinted.normalised.mean > 0.5

    rows = csv_rows(table)
    assert rows[0] == ["task", "initial", "initial_se", "seed", "seed_se", "seed_normalised", "seed_normalised_se",
                       "hinted", "hinted_se", "hinted_normalised", "hinted_normalised_se"]
    assert [row[0] for row in rows[1:]] == ["lpn", "string_grid"]
    write_csv(table, tmp_path / "t.csv")
    with (tmp_path / "t.csv").open() as handle:
        assert list(csv.reader(handle)) == rows
    write_json(table, tmp_path / "t.json")
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc == json.loads(json.dumps(table.to_json()))
    assert set(doc["rows"][0]["improvers"]) == {"seed", "hinted"}
    assert doc["improvers"][1]["origin"] == "a test improver"
    assert transfer_rich(table).row_count == 3  # two tasks and the mean normalised gain

    record_transfer(wired.store, wired.run_id, table)
    stored = wired.store.transfer(wired.run_id)
    assert [(e.improver, e.task) for e in stored] == [("seed", "lpn"), ("seed", "string_grid"),
                                                      ("hinted", "lpn"), ("hinted", "string_grid")]
    assert stored[2].score == pytest.approx(lpn_hinted.raw.mean) and stored[2].runs == 2


def test_the_report_reads_stored_transfer_rows(tmp_path: Path) -> None:
    from selftaught.store import TransferEntry

    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn,parity", "scripted", 0, {}, [], "transfer")
    program = store.add_program(run_id, "improver", SEED_IMPROVER)
    store.add_transfer(run_id, [TransferEntry(program, "seed", "", "lpn", "test", 2, 0.6, 0.05, 0.5, 0.0, 0.2, 0.1)])
    with StoreReader.open(tmp_path / "selftaught.db") as reader:
        [row] = reader.transfer_rows([run_id])
    assert (row.run_id, row.program_id, row.task, row.score, row.se) == (run_id, program, "lpn", 0.6, 0.05)
