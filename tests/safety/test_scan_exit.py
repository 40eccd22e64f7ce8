"""`selftaught scan` exits 1 only for security findings in code that can run (code that parses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selftaught.cli import main
from selftaught.safety.scan import blocking, from_line_scan, scan_source
from selftaught.store import RunStore

RUNNABLE = "import os\n\ndef algorithm(x):\n    os.system('ls')\n    return x\n"
UNPARSABLE = "def algorithm(x:\n    os.system('ls')\n    return x\n"


def test_line_scan_findings_of_unparsable_code_do_not_block() -> None:
    unparsed = scan_source(UNPARSABLE)
    assert {f.category for f in unparsed} == {"parse_error", "process_control"}
    assert all(from_line_scan(f) for f in unparsed if f.category != "parse_error")
    assert blocking(unparsed) == []
    assert [f.category for f in blocking(scan_source(RUNNABLE))] == ["process_control"]


def test_scan_of_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.py").write_text(UNPARSABLE)
    (tmp_path / "runs.py").write_text(RUNNABLE)
    assert main(["scan", str(tmp_path / "broken.py")]) == 0
    assert "no security finding in code that parses; 1 pattern(s) in code that does not parse, not counted" \
        in capsys.readouterr().err
    assert main(["scan", str(tmp_path / "broken.py"), str(tmp_path / "runs.py")]) == 1
    assert "1 security finding(s) in code that parses" in capsys.readouterr().err


def test_scan_of_a_run_lists_unparsable_patterns_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    store.add_program(run_id, "improver", "def improve_algorithm(s, u, lm):\n    return s\n")
    store.add_program(run_id, "solution", UNPARSABLE)
    store.close()
    assert main(["scan", run_id, "--runs-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "does not parse" in captured.out and "os.system" in captured.out
    assert "no security finding in code that parses" in captured.err
    store = RunStore.in_dir(tmp_path)
    store.add_program(run_id, "solution", RUNNABLE)
    store.close()
    assert main(["scan", run_id, "--runs-dir", str(tmp_path)]) == 1
