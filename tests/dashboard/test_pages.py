"""Every page renders from a real store, escapes hostile text, sends strict headers and 404s unknown ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selftaught.dashboard import CSP, make_server
from selftaught.errors import ConfigError
from tests.dashboard.conftest import Served, serve_in_thread
from tests.report.builders import build_store


def _run(served: Served, run_id: str, *rest: str | int) -> str:
    return "/runs/" + run_id + "".join(f"/{part}" for part in rest)


def test_runs_list_shows_every_run_and_refreshes_while_one_runs(served: Served) -> None:
    page = served.get("/")
    assert page.status == 200
    b = served.built
    for run_id in (b.finished, b.running, b.empty):
        assert f'href="/runs/{run_id}"' in page.text
    assert "openai:gpt-x" in page.text and "$0.0060" in page.text and "0.620" in page.text
    assert 'http-equiv="refresh"' in page.text


def test_every_answer_carries_the_security_headers(served: Served) -> None:
    for path in ["/", "/style.css", _run(served, served.built.finished), "/nope"]:
        page = served.get(path)
        assert page.headers["Content-Security-Policy"] == CSP
        assert "script-src" not in CSP and "default-src 'none'" in CSP
        assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_run_page_draws_the_curve_and_the_lineage(served: Served) -> None:
    b = served.built
    page = served.get(_run(served, b.finished))
    assert page.status == 200
    path = re.search(r'<path class="series-val" d="([^"]+)"', page.text)
    assert path is not None and path.group(1).count("L") == 2  # t0..t2 scored, t3 is a gap
    assert page.text.count('class="point-val"') == 3
    adopted = re.findall(r'<li class="adopted"><span class="node"><a href="[^"]+/programs/(\d+)"', page.text)
    assert sorted(int(a) for a in adopted) == sorted([b.seed_id, b.child_id])
    assert f"/programs/{b.hostile_id}" in page.text and "1 finding(s)" in page.text
    assert "&lt;script&gt;window.__xss = 3" in page.text and "<script" not in page.text
    assert 'http-equiv="refresh"' not in page.text  # finished: no reloads


def test_running_and_empty_runs_render(served: Served) -> None:
    running = served.get(_run(served, served.built.running))
    assert running.status == 200 and 'http-equiv="refresh"' in running.text
    assert "0.450" in running.text
    empty = served.get(_run(served, served.built.empty))
    assert empty.status == 200 and "No iterations yet." in empty.text
    assert "the LM &lt;img src=x&gt; was down" in empty.text


def test_improver_page_diffs_against_its_parent_and_escapes_source(served: Served) -> None:
    b = served.built
    page = served.get(_run(served, b.finished, "programs", b.hostile_id))
    assert page.status == 200
    assert "&lt;/pre&gt;&lt;script&gt;window.__xss = 2&lt;/script&gt;" in page.text
    assert "<script" not in page.text and page.text.count("</pre>") == page.text.count("<pre")
    assert '<span class="add">+    &#34;&#34;&#34;&lt;/pre&gt;' in page.text
    assert "sandbox_disable" in page.text and "use_sandbox=False &lt;b&gt;bold&lt;/b&gt;" in page.text
    assert "t2/eval/r0/val" in page.text  # the evaluations of its meta-utility estimate
    child = served.get(_run(served, b.finished, "programs", b.child_id))
    assert "beam_search" in child.text and "t1/eval/r0/test" in child.text


def test_solution_page_lists_its_evaluations_paginated(served: Served) -> None:
    b = served.built
    page = served.get(_run(served, b.finished, "programs", b.solution_id))
    assert page.status == 200 and "page 1 of 1 (6 rows)" in page.text
    assert served.get(_run(served, b.finished, "programs", b.solution_id) + "?page=9").status == 404


def test_lm_calls_list_and_one_call(served: Served) -> None:
    b = served.built
    page = served.get(_run(served, b.finished, "lm"))
    assert page.status == 200 and "page 1 of 1 (3 rows)" in page.text
    assert "&lt;script&gt;window.__xss = 1" in page.text and "<script" not in page.text
    one = served.get(_run(served, b.finished, "lm", b.hostile_call))
    assert one.status == 200
    assert "&lt;script&gt;window.__xss = 1; alert(1)&lt;/script&gt;" in one.text
    assert "t1/improve/c0" in one.text and "120 prompt + 40 completion" in one.text and "$0.002000" in one.text


def test_compare_view(served: Served) -> None:
    b = served.built
    page = served.get(_run(served, b.finished, "compare") + f"?a={b.seed_id}&b={b.hostile_id}")
    assert page.status == 200 and "Unified diff" in page.text and "0.400 ± 0.050" in page.text
    assert served.get(_run(served, b.finished, "compare")).status == 200
    assert 'action="/runs/' in served.get(_run(served, b.finished)).text


@pytest.mark.parametrize("path", [
    "/runs/nope", "/runs/nope/lm", "/runs/nope/compare", "/runs/RUN/programs/999999", "/runs/RUN/programs/abc",
    "/runs/RUN/lm/999999", "/runs/RUN/lm?page=50", "/runs/RUN/compare?a=1&b=999999", "/elsewhere", "/runs",
    "/runs/RUN/programs/99999999999999999999999",
])
def test_unknown_things_are_404_pages(served: Served, path: str) -> None:
    page = served.get(path.replace("RUN", served.built.finished))
    assert page.status == 404 and "Not found" in page.text and "Traceback" not in page.text


def test_a_program_of_another_run_is_not_found(served: Served) -> None:
    b = served.built
    assert served.get(_run(served, b.running, "programs", b.hostile_id)).status == 404


def test_head_and_other_methods(served: Served) -> None:
    assert served.get("/", method="HEAD").status == 200
    assert served.get("/", method="POST").status == 501


def test_a_missing_store_shows_an_empty_runs_page(tmp_path: Path) -> None:
    log: list[str] = []
    server, thread = serve_in_thread(tmp_path / "selftaught.db", log)
    try:
        import urllib.request

        with urllib.request.urlopen(server.url, timeout=5) as answer:
            assert "no run store at" in answer.read().decode()
        build_store(tmp_path)  # the store appears while the dashboard runs
        with urllib.request.urlopen(server.url, timeout=5) as answer:
            assert "/runs/" in answer.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_binding_beyond_loopback_needs_an_explicit_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allow-remote"):
        make_server(tmp_path / "x.db", "0.0.0.0", 0, log=lambda line: None)
    log: list[str] = []
    server = make_server(tmp_path / "x.db", "0.0.0.0", 0, allow_remote=True, log=log.append)
    server.server_close()
    assert any("warning" in line for line in log)
    ok = make_server(tmp_path / "x.db", "localhost", 0, log=log.append)
    ok.server_close()


def test_a_busy_port_is_a_config_error(served: Served, tmp_path: Path) -> None:
    port = int(served.url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(ConfigError, match="cannot serve"):
        make_server(tmp_path / "x.db", "127.0.0.1", port, log=lambda line: None)


def test_pages_render_while_a_run_holds_a_write_transaction(served: Served) -> None:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(served.built.db_path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO runs (id, created_at, updated_at, status, task, lm, seed, config)"
                       " VALUES ('uncommitted', 0, 0, 'running', 'lpn', 'x', 0, '{}')")
        page = served.get("/")
        run = served.get(_run(served, served.built.finished, "lm"))
        writer.execute("ROLLBACK")
    assert page.status == 200 and run.status == 200
    assert "uncommitted" not in page.text
