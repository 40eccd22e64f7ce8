"""The lm package's public surface and its place in the layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import selftaught.lm

LM_DIR = Path(selftaught.lm.__file__).parent
ALLOWED = ("selftaught.lm", "selftaught.errors", "selftaught.config", "selftaught.records")


def test_all_is_sorted_and_resolves() -> None:
    names = selftaught.lm.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert getattr(selftaught.lm, name) is not None


def test_lm_imports_only_the_layers_below() -> None:
    for path in LM_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.startswith("selftaught"):
                    assert module.startswith(ALLOWED), f"{path.name} imports {module}"


def test_importing_the_package_does_not_load_llama_cpp() -> None:
    code = "import sys, selftaught.lm; print('llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
