"""The README stays true: its config example loads, and every command it lists exists (and vice versa)."""

import re
import tomllib
from pathlib import Path

from selftaught.cli.parser import build_parser
from selftaught.config import RunConfig

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_configuration_example_is_a_valid_config() -> None:
    section = README.split("## Configuration", 1)[1]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    config = RunConfig.from_dict(tomllib.loads(example.group(1)))
    assert config.to_dict().keys() == RunConfig().to_dict().keys()


def test_the_commands_table_lists_exactly_the_cli_commands() -> None:
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `selftaught (\w+)", section, re.M))
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command")
    assert listed == set(commands.choices)  # type: ignore[attr-defined]


def test_the_quick_start_is_two_commands() -> None:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert lines == [
        "bash scripts/install.sh && .venv/bin/selftaught run --config examples/quick.toml",
        "bash scripts/install.sh --dev && .venv/bin/python -m pytest",
    ]
