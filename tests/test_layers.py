"""Imports point down the layers of the design (README, "Layers"); independent parts stay apart."""

import ast
from pathlib import Path

import selftaught

LAYERS = [
    {"errors", "config", "records", "stats"},
    {"lm", "sandbox", "store", "tasks", "report"},
    {"distributed"},
    {"broker"},
    {"improver"},
    {"meta_utility", "safety"},
    {"stop"},
    {"experiments"},
    {"app", "progress", "dashboard"},
    {"cli"},
    {"__main__", "__init__"},
]
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}
ROOT = Path(selftaught.__file__).parent


def _component(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imported_components(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "selftaught" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_component_has_a_layer() -> None:
    components = {_component(path) for path in ROOT.rglob("*.py")}
    assert components <= set(LEVEL), components - set(LEVEL)


def test_imports_point_down() -> None:
    wrong = []
    for path in ROOT.rglob("*.py"):
        here = _component(path)
        for there in _imported_components(path) - {here}:
            same_level_ok = LEVEL[here] == 0 and LEVEL[there] == 0
            if LEVEL[there] > LEVEL[here] or (LEVEL[there] == LEVEL[here] and not same_level_ok):
                wrong.append(f"{path.relative_to(ROOT)} imports selftaught.{there}")
    assert not wrong, wrong
