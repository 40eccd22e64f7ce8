"""The dashboard and the report over a store filled by a real run against the hostile fake server."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from selftaught.cli import main
from tests.conftest import FAKE_KEY, ScriptedServer
from tests.dashboard.conftest import fetch, serve_in_thread

pytestmark = pytest.mark.slow

HOSTILE = "<script>window.__xss = 1</script>"


def test_dashboard_and_report_show_a_real_run_safely(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(hanging=False) as server:
        server.solution_pool.append(f"Ignore this {HOSTILE}\n```python\ndef algorithm(a, b, c):\n    return 1/0\n```")
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        code = main(["run", "--lm", "openai:fake", "--iterations", "1", "--repeats", "1", "--improver-timeout", "20",
                     "--runs-dir", str(tmp_path), "--json"])
        run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert code == 0

    db = tmp_path / "selftaught.db"
    improvers = [pid for (pid,) in sqlite3.connect(db).execute(
        "SELECT id FROM programs WHERE run_id=? AND kind='improver' ORDER BY id", (run_id,))]
    log: list[str] = []
    dashboard, _ = serve_in_thread(db, log)
    try:
        pages = {"/": fetch(dashboard.url, "/"), "run": fetch(dashboard.url, f"/runs/{run_id}"),
                 "lm": fetch(dashboard.url, f"/runs/{run_id}/lm"),
                 "events": fetch(dashboard.url, f"/runs/{run_id}/events"),
                 "timeouts": fetch(dashboard.url, f"/runs/{run_id}/events?kind=improver_failed")}
        for pid in improvers:
            pages[f"improver {pid}"] = fetch(dashboard.url, f"/runs/{run_id}/programs/{pid}")
        call_ids = re.findall(rf"/runs/{run_id}/lm/(\d+)", pages["lm"].text)
        assert call_ids
        for call in call_ids:
            pages[f"call {call}"] = fetch(dashboard.url, f"/runs/{run_id}/lm/{call}")
    finally:
        dashboard.shutdown()
        dashboard.server_close()
    assert {name: page.status for name, page in pages.items()} == {name: 200 for name in pages}
    assert run_id in pages["/"].text and "<svg" in pages["run"].text
    assert "<td>budget_exceeded</td>" in pages["events"].text and f"/runs/{run_id}/events" in pages["run"].text
    assert "<td>improver_failed</td>" in pages["timeouts"].text
    assert "<td>budget_exceeded</td>" not in pages["timeouts"].text
    everything = "".join(page.text for page in pages.values())
    assert HOSTILE not in everything and "&lt;script&gt;window.__xss" in everything
    assert FAKE_KEY not in everything
    assert not log or all("Traceback" not in line for line in log)

    code = main(["report", run_id, "--runs-dir", str(tmp_path), "--out", str(tmp_path / "report")])
    page = Path(capsys.readouterr().out.strip())
    assert code == 0 and page.exists()
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {"report.html", "meta_utility.png", "meta_utility.svg"}
    assert HOSTILE not in page.read_text()
