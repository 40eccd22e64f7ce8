"""Every run kind shows as what it is; an improve run's page shows its result and code; answers read as text."""

from __future__ import annotations

from pathlib import Path

from selftaught.dashboard.pages_lm import lm_calls_page
from selftaught.dashboard.pages_runs import run_page, runs_page
from selftaught.records import LMRequest, LMResponse
from selftaught.store import RunRecorder, RunStore
from selftaught.store.reader import StoreReader

NEW_SOLUTION = "def algorithm(train_X, train_y, test_X):\n    return [0] * len(test_X)  # majority\n"
ANSWER = 'Idea: use "majority".\n```python\n' + NEW_SOLUTION + "```\n" + "x = 1\n" * 80


def _improve_run(runs_dir: Path) -> str:
    store = RunStore.in_dir(runs_dir)
    run_id = store.create_run("lpn", "scripted", 0, {}, [], kind="improve")
    rec = RunRecorder(store, run_id)
    initial = rec.program("solution", "def algorithm(a, b, c):\n    return None\n")
    new = rec.program("solution", NEW_SOLUTION)
    for split, before, after in (("val", 0.5, 0.55), ("test", 0.49, 0.53)):
        rec.evaluation(initial, f"improve/initial/{split}", "lpn", split, before, 20, 0, "", 0.1)
        rec.evaluation(new, f"improve/{split}", "lpn", split, after, 20, 0, "", 0.1)
    rec.evaluation(new, "improve/u0", "lpn", "train", 0.6, 20, 0, "", 0.1)
    rec.lm_call(LMRequest("sys", "improve it", n=1, tag="improve/c0/g0"), LMResponse((ANSWER,), "scripted"))
    store.set_status(run_id, "finished")
    store.close()
    return run_id


def test_the_runs_list_has_a_kind_column(tmp_path: Path) -> None:
    run_id = _improve_run(tmp_path)
    html = runs_page(StoreReader.open(tmp_path / "selftaught.db"))
    assert "<th>kind</th>" in html
    row = html.split(f'href="/runs/{run_id}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>improve</td>" in row


def test_an_improve_run_page_shows_its_result_and_code(tmp_path: Path) -> None:
    run_id = _improve_run(tmp_path)
    html = run_page(StoreReader.open(tmp_path / "selftaught.db"), run_id)
    assert "Improve run" in html and "No iterations yet" not in html
    assert "val 0.500 · test 0.490" in html and "val 0.550 · test 0.530" in html
    assert "return [0] * len(test_X)  # majority" in html  # the code, escaped but readable
    assert "improve/u0" not in html  # the improver's own utility calls are not final scores


def test_lm_answers_are_shown_as_text(tmp_path: Path) -> None:
    run_id = _improve_run(tmp_path)
    html = lm_calls_page(StoreReader.open(tmp_path / "selftaught.db"), run_id)
    assert "Idea: use &#34;majority&#34;. ```python def algorithm" in html  # decoded, not JSON
    assert "\\n" not in html and '[\\"' not in html


def test_a_stop_run_page_shows_u_of_s_and_steps_as_t_of_T(tmp_path: Path) -> None:
    from selftaught.records import Iteration

    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "scripted", 0, {"iterations": 2}, [])
    rec = RunRecorder(store, run_id)
    seed = rec.program("improver", "def improve_algorithm(s, u, lm):\n    return s\n")
    initial = rec.program("solution", "def algorithm(a, b, c):\n    return None\n")
    rec.evaluation(initial, "initial/val", "lpn", "val", 0.51, 20, 0, "", 0.1)
    rec.evaluation(initial, "initial/test", "lpn", "test", 0.49, 50, 0, "", 0.1)
    rec.iteration(Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.5, val_se=0.01, test=0.5, test_se=0.01,
                            accepted=True, reason="seed improver"))
    rec.iteration(Iteration(t=1, candidate_id=None, incumbent_id=seed, val=None, val_se=None, test=None, test_se=None,
                            accepted=False, reason="no candidate: crashed"))
    store.close()
    db = StoreReader.open(tmp_path / "selftaught.db")
    html = run_page(db, run_id)
    assert "1/2 (step 0 scores the seed improver)" in html and "val 0.510 · test 0.490" in html
    assert 'class="initial"' in html and "u(s) 0.490" in html
    assert ">1/2<" in runs_page(db)
