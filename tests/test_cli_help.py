"""The command line explains itself: help everywhere, errors that point at the right help, real run ids."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from selftaught import app
from selftaught.cli import main
from selftaught.cli.main import COMMANDS
from selftaught.cli.parser import build_parser
from selftaught.store import RunStore


def test_every_command_has_a_description_and_every_argument_a_help() -> None:
    parser = build_parser()
    commands: dict[str, argparse.ArgumentParser] = parser.commands  # type: ignore[attr-defined]
    assert set(commands) == set(COMMANDS)
    for name, command in commands.items():
        assert command.description and len(command.description) > 40, name
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_a_bad_flag_points_at_that_commands_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["improve", "--task", "lpn", "--no-such-flag"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "selftaught: error: unrecognized arguments: --no-such-flag (see selftaught improve --help)\n")


def test_runs_dir_works_before_and_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore.in_dir(tmp_path / "a")
    run_id = store.create_run("lpn", "scripted", 0, {}, [], kind="improve")
    store.close()
    for argv in (["runs", "--runs-dir", str(tmp_path / "a")], ["--runs-dir", str(tmp_path / "a"), "runs"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert run_id in out and " improve " in out  # the kind column
    assert main(["--runs-dir", str(tmp_path / "nowhere"), "runs"]) == 1
    assert "no run store in" in capsys.readouterr().err


def test_an_unknown_model_lists_every_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--lm", "nope:x", "--runs-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    for prefix in ("anthropic", "local", "manual", "openai", "replay"):
        assert prefix in err.split("is not one of", 1)[1]
    assert not (tmp_path / "selftaught.db").exists()


def test_the_interrupt_message_names_the_real_run(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: Any, env: Any) -> int:
        raise app.RunInterrupted("20261129-120000-abcdef", "stop")

    monkeypatch.setitem(COMMANDS, "runs", interrupted)
    assert main(["runs"]) == 130
    assert capsys.readouterr().err == ("selftaught: interrupted; the finished steps of run 20261129-120000-abcdef "
                                       "are kept: selftaught resume 20261129-120000-abcdef\n")


def test_a_session_turns_ctrl_c_into_an_interrupt_that_knows_its_run(tmp_path: Path) -> None:
    from selftaught.config import RunConfig
    from selftaught.lm import ScriptedLM

    config = RunConfig()
    with pytest.raises(app.RunInterrupted) as caught, \
            app.open_session(config, tmp_path, {}, kind="improve", make_lm=lambda c, e: ScriptedLM(["x"])) as session:
        raise KeyboardInterrupt
    assert caught.value.run_id == session.run_id and caught.value.kind == "improve"
    assert RunStore.in_dir(tmp_path).get_run(session.run_id).status == "stopped"
