"""A run with 100k evaluations and 10k LM calls: every page still renders, paged (a smoke check).

How fast they render is measured by ``benchmarks/dashboard_pages.py`` (target: 2 s per page).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from selftaught.records import Iteration
from selftaught.store import RunRecorder, RunStore
from tests.dashboard.conftest import fetch, serve_in_thread

EVALUATIONS, LM_CALLS, STEPS = 100_000, 10_000, 50


def fill(runs_dir: Path) -> tuple[str, list[int]]:
    store = RunStore.in_dir(runs_dir)
    run_id = store.create_run("lpn", "openai:m", 0, {}, [])
    rec = RunRecorder(store, run_id)
    improvers = [rec.program("improver", "def improve_algorithm(s, u, l):\n    return s\n")]
    rec.iteration(Iteration(t=0, candidate_id=improvers[0], incumbent_id=improvers[0], val=0.3, val_se=0.01, test=0.3,
                            test_se=0.01, accepted=True, reason="seed"))
    for t in range(1, STEPS + 1):
        source = f"def improve_algorithm(s, u, l):\n    # step {t}\n    return s\n"
        improvers.append(rec.program("improver", source, parent_id=improvers[-1]))
        rec.iteration(Iteration(t=t, candidate_id=improvers[-1], incumbent_id=improvers[-1], val=0.3 + t / 200,
                                val_se=0.01, test=0.3, test_se=0.01, accepted=True, reason="adopted"))
    store.close()
    now = time.time()
    with closing(sqlite3.connect(runs_dir / "selftaught.db")) as db, db:
        db.executemany(
            "INSERT INTO programs (run_id, kind, sha256, source, parent_id, created_at) VALUES (?,?,?,?,?,?)",
            [(run_id, "solution", f"{i:064x}", f"def algorithm():\n    return {i}\n", None, now) for i in range(1000)],
        )
        first_solution = db.execute("SELECT MIN(id) FROM programs WHERE kind='solution'").fetchone()[0]
        db.executemany(
            "INSERT INTO evaluations (run_id, program_id, tag, task, split, score, instances, failed, reason,"
            " elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(run_id, first_solution + i % 1000, f"t{i % (STEPS + 1)}/eval/r{i % 5}/{'val' if i % 2 else 'test'}",
              "lpn", "val" if i % 2 else "test", (i % 100) / 100, 20, 0, "", 0.01, now) for i in range(EVALUATIONS)],
        )
        db.executemany(
            "INSERT INTO lm_calls (run_id, tag, model, system, prompt, n, temperature, responses, prompt_tokens,"
            " completion_tokens, latency_s, cost_usd, cached, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(run_id, f"t{i % (STEPS + 1)}/improve/c{i % 4}", "m", "system " * 50, "prompt text " * 300, 2, 0.7,
              json.dumps(["answer " * 200, "other " * 200]), 900, 400, 1.5, 0.001, i % 3 == 0, now)
             for i in range(LM_CALLS)],
        )
    return run_id, improvers


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[int]]]:
    runs_dir = tmp_path_factory.mktemp("big")
    run_id, improvers = fill(runs_dir)
    log: list[str] = []
    server, thread = serve_in_thread(runs_dir / "selftaught.db", log)
    yield server.url, run_id, improvers
    server.shutdown()
    server.server_close()
    thread.join(5)


def page_paths(run_id: str, improvers: list[int]) -> list[str]:
    """The pages of the big run worth checking: listings, deep pages, one LM call, a comparison."""
    first_call = 1
    return [
        "/", f"/runs/{run_id}", f"/runs/{run_id}/programs/{improvers[25]}",
        f"/runs/{run_id}/programs/{improvers[25]}?page=40", f"/runs/{run_id}/lm", f"/runs/{run_id}/lm?page=400",
        f"/runs/{run_id}/lm/{first_call + LM_CALLS - 1}", f"/runs/{run_id}/compare?a={improvers[1]}&b={improvers[-1]}",
    ]


def test_pages_of_a_big_run_render(big: tuple[str, str, list[int]]) -> None:
    url, run_id, improvers = big
    for path in page_paths(run_id, improvers):
        page = fetch(url, path)
        assert page.status == 200, (path, page.text[:300])
    assert "page 400 of 400 (10,000 rows)" in fetch(url, f"/runs/{run_id}/lm?page=400").text
