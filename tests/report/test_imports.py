"""The report and the dashboard import no engine code (the store only through its read model),
matplotlib only when a figure is drawn, and Jinja2 only where a page is rendered."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import selftaught

ROOT = Path(selftaught.__file__).parent
ALLOWED = {"selftaught.errors", "selftaught.records", "selftaught.stats", "selftaught.report", "selftaught.dashboard",
           "selftaught.store.reader", "selftaught.store.reader_records",
           "selftaught.proxy.helpers"}  # the one parser of fenced code, shared with the sandboxed helpers


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_only_the_standard_library_jinja2_errors_records_the_stores_reader_and_each_other() -> None:
    wrong = []
    for package in ("report", "dashboard"):
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path):
                top = name.split(".")[0]
                if top == "selftaught":
                    ok = any(name == a or name.startswith(a + ".") for a in ALLOWED)
                    ok = ok and not (package == "report" and name.startswith("selftaught.dashboard"))
                elif top == "matplotlib":
                    ok = path.name in ("plots.py", "plots_transfer.py")
                elif top == "jinja2":  # the template engine, in the one module of each that renders pages
                    ok = path.name in ("page.py", "html.py")
                else:
                    ok = top in sys.stdlib_module_names or top == "__future__"
                if not ok:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, wrong


def test_importing_them_loads_neither_the_engine_nor_matplotlib() -> None:
    # (The store package's __init__ still loads when its reader does; that nothing here uses the writer
    # is the import-linter contract's job, tests/test_layers.py.)
    code = (
        "import sys, selftaught.report, selftaught.dashboard\n"
        "bad = [m for m in sys.modules if m.startswith(('matplotlib', 'selftaught.lm', 'selftaught.experiments',"
        " 'selftaught.broker', 'selftaught.sandbox', 'selftaught.stop', 'selftaught.tasks', 'numpy'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
