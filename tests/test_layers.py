"""Imports point down the layers (README, "Development"): import-linter's contracts in pyproject.toml.

The contracts run on the real tree, and on copies with one known-bad import each (absolute and
relative) to show the check fails where it should.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import selftaught

ROOT = Path(selftaught.__file__).parent
REPO = ROOT.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _lint(repo: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), "lint-imports is missing: install the dev extra (bash scripts/install.sh --dev)"
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_every_component_has_a_layer() -> None:
    layers = next(c for c in _contracts() if c["id"] == "layers")["layers"]
    assert isinstance(layers, list)
    named = {part.strip() for layer in layers for part in re.split(r"[|:]", layer)}
    components = {path.relative_to(ROOT).parts[0].removesuffix(".py") for path in ROOT.rglob("*.py")}
    assert components - {"__init__"} == named


def test_the_readme_draws_the_same_layers() -> None:
    layers = next(c for c in _contracts() if c["id"] == "layers")["layers"]
    assert isinstance(layers, list)
    readme = (REPO / "README.md").read_text()
    picture = readme.split("Layers (imports point down only", 1)[1].split("```", 2)[1]
    names = (set(re.findall(r"[a-z_]+", re.split(r"\s{3,}", line)[0])) for line in picture.strip().splitlines())
    drawn = [layer for layer in names if layer]  # a continued description has no names
    expected = [{part.strip() for part in re.split(r"[|:]", layer)} for layer in layers]
    assert drawn == expected, "README's layer picture and pyproject.toml's layers differ"


def test_the_contracts_hold() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("stop.py", "from selftaught import app", "selftaught.stop -> selftaught.app"),
    ("stop.py", "from . import app", "selftaught.stop -> selftaught.app"),
    ("stop.py", "from .cli.main import main", "selftaught.stop -> selftaught.cli.main"),
    ("stop.py", "from selftaught.store import RunStore", "selftaught.stop -> selftaught.store"),
    ("tasks/common.py", "from ..lm import ScriptedLM", "selftaught.tasks.common -> selftaught.lm"),
    # the front ends read the store only through its reader: the writer, directly or through the package
    ("report/page.py", "import selftaught.store", "selftaught.report.page -> selftaught.store"),
    ("dashboard/html.py", "from selftaught.store.runstore import RunStore",
     "selftaught.dashboard.html -> selftaught.store.runstore"),
    ("safety/scan.py", "from ..store import RunStore", "selftaught.safety.scan -> selftaught.store"),
    ("progress.py", "from selftaught.store.migrations import migrate",
     "selftaught.progress -> selftaught.store.migrations"),
    ("report/steps.py", "from selftaught.store.splits import run_splits",
     "selftaught.report.steps -> selftaught.store.splits"),
    ("report/writer.py", "from selftaught.dashboard import serve", "selftaught.report.writer -> selftaught.dashboard"),
])
def test_a_bad_import_breaks_a_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    shutil.copytree(ROOT, tmp_path / "selftaught", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    path = tmp_path / "selftaught" / module
    path.write_text(path.read_text() + f"\n{line}  # a known-bad import\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout and " broken." in result.stdout


def test_no_sql_outside_the_store() -> None:
    """Only ``selftaught/store`` talks SQLite; everything else asks the store's writer or its reader."""
    talking = sorted(str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py")
                     if path.relative_to(ROOT).parts[0] != "store" and re.search(r"^\s*(import|from) sqlite3\b",
                                                                                 path.read_text(), re.MULTILINE))
    assert talking == []
