"""Dashboard pages of a big run: time to serve each page of a run with 100k evaluations and 10k LM calls.

The run is the one ``tests/dashboard/test_scale.py`` builds (the test checks every page renders;
this times them). Each page is fetched ``ROUNDS`` times over loopback; the median and the slowest
are reported, with the target of 2 s per page. Writes benchmarks/results/dashboard_pages.json and
.md (with the git commit and the command, as every benchmark's result does).
Run: .venv/bin/python benchmarks/dashboard_pages.py   (a few seconds, most of them filling the store)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, machine_line, median, write

from tests.dashboard.conftest import fetch, serve_in_thread
from tests.dashboard.test_scale import EVALUATIONS, LM_CALLS, fill, page_paths

ROUNDS = 5
TARGET_S = 2.0


def main() -> None:
    report: dict[str, Any] = {"machine": machine(), "evaluations": EVALUATIONS, "lm_calls": LM_CALLS,
                              "rounds": ROUNDS, "pages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp)
        run_id, improvers = fill(runs_dir)
        log: list[str] = []
        server, thread = serve_in_thread(runs_dir / "selftaught.db", log)
        try:
            for path in page_paths(run_id, improvers):
                seconds = []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    page = fetch(server.url, path)
                    seconds.append(time.perf_counter() - started)
                    assert page.status == 200, (path, page.status)
                label = path.replace(run_id, "RUN")
                report["pages"][label] = {"median_s": round(median(seconds), 4), "max_s": round(max(seconds), 4)}
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
    slowest = max(page["max_s"] for page in report["pages"].values())
    report["slowest_s"] = slowest
    rows = "\n".join(f"| `{path}` | {page['median_s'] * 1000:.0f} | {page['max_s'] * 1000:.0f} |"
                     for path, page in report["pages"].items())
    markdown = (f"# Dashboard pages of a big run\n\n{EVALUATIONS:,} evaluations, {LM_CALLS:,} LM calls, "
                f"{ROUNDS} fetches per page; target {TARGET_S:g} s per page.\n\n"
                f"| page | median ms | slowest ms |\n|---|---|---|\n{rows}\n\n"
                f"Slowest fetch: {slowest:.3f} s ({'within' if slowest <= TARGET_S else 'OVER'} the target).\n\n"
                f"{machine_line(report['machine'])}\n")
    write("dashboard_pages", report, markdown)


if __name__ == "__main__":
    main()
