"""Task specs: parameters and presets from ``NAME:key=value,...``, one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from selftaught.cli import main
from selftaught.errors import TaskError
from selftaught.tasks import get_task
from selftaught.tasks.params import parse_spec, split_specs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "knapsack.py"


def test_parameters_reach_the_instances_the_description_and_the_limit() -> None:
    task = get_task("lpn:bits=24,noise=0.1,timeout_s=3")
    assert task.params == {"bits": 24, "secret_p": 0.3, "n_train": 100, "n_test": 20, "noise": 0.1,
                                       "timeout_s": 3.0}
    train_X, train_y, test_X = task.instances("val")[0].args
    assert len(train_X[0]) == 24 and len(train_y) == 100 and len(test_X) == 20
    assert "n_bits = 24" in task.description and "0.1" in task.description and "3 s" in task.description
    assert task.call_timeout_s == 3.0


def test_presets_and_overrides() -> None:
    paper = get_task("lpn")
    assert paper.spec == "lpn" and get_task("lpn:preset=paper") is paper
    hard = get_task("lpn:preset=hard")
    assert hard.params["bits"] == 32 and hard.spec == "lpn:preset=hard"
    tweaked = get_task("lpn:preset=hard,noise=0.2")
    assert tweaked.params["noise"] == 0.2 and tweaked.params["bits"] == 32
    assert tweaked.spec == "lpn:preset=hard,noise=0.2"
    # The canonical spec names the same parameters, so it rebuilds the very same task.
    assert get_task(tweaked.spec).params == tweaked.params
    for name in ("parity", "string_grid", "qap", "three_sat", "maxcut"):
        assert get_task(f"{name}:preset=hard").params != get_task(name).params


@pytest.mark.parametrize(
    "spec, message",
    [
        ("lpn:bitz=3", r"task 'lpn' has no parameter 'bitz'; its parameters: preset, bits,"),
        ("lpn:bits=ten", r"task 'lpn': bits='ten' is not an integer"),
        ("lpn:noise=0.9", r"task 'lpn': noise=0.9 is out of range \[0, 0.5\]"),
        ("lpn:timeout_s=0", r"task 'lpn': timeout_s=0.0 is out of range \(0, 600\]"),
        ("lpn:preset=easy", r"task 'lpn': no preset 'easy'; presets: paper, hard"),
        ("lpn:bits", r"'bits' is not key=value"),
        ("lpn:bits=3,bits=4", r"bits is given twice"),
        ("maxcut:min_nodes=300", r"min_nodes=300 is above max_nodes=200"),
        ("nope:bits=3", r"unknown task 'nope'"),
    ],
)
def test_bad_specs_are_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        get_task(spec)


def test_task_files_take_no_parameters() -> None:
    assert parse_spec(f"{EXAMPLE}") == (str(EXAMPLE), {})
    assert parse_spec("dir:with:colons/task.py") == ("dir:with:colons/task.py", {})
    assert parse_spec("dir/task.py:size=3") == ("dir/task.py", {"size": "3"})
    with pytest.raises(TaskError, match="takes no parameters"):
        get_task(f"{EXAMPLE}:size=3")


def test_several_specs_in_one_flag() -> None:
    assert split_specs("lpn:bits=24,noise=0.1,parity") == ["lpn:bits=24,noise=0.1", "parity"]
    assert split_specs("lpn,parity,string_grid") == ["lpn", "parity", "string_grid"]
    assert split_specs("lpn:preset=hard;maxcut:p_edge=0.1,max_weight=3") == ["lpn:preset=hard",
                                                                            "maxcut:p_edge=0.1,max_weight=3"]


def test_the_cli_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--task", "lpn:bitz=3", "--lm", "local", "--runs-dir", str(tmp_path)])
    assert code == 1
    assert "no parameter 'bitz'" in capsys.readouterr().err
    assert not (tmp_path / "selftaught.db").exists()  # nothing was stored


def test_the_cli_lists_presets_and_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "lpn:bits=10,secret_p=0.3,n_train=100,n_test=20,noise=0.05,timeout_s=2.0" in out
    assert "presets: paper (the defaults); hard (bits=32,noise=0.1,n_train=200)" in out


def test_the_paper_example_is_the_papers_setting() -> None:
    import tomllib

    from selftaught.config import RunConfig

    path = Path(__file__).resolve().parents[2] / "examples" / "paper.toml"
    config = RunConfig.from_dict(tomllib.loads(path.read_text()))
    assert (config.accept, config.scoring, config.repeats, config.iterations) == ("paper", "reference", 5, 4)
    assert (config.budgets.lm_calls, config.budgets.responses_per_call, config.budgets.utility_calls) == (4, 6, 25)
    assert config.lm.max_tokens == 1024
    assert get_task(config.task).params == get_task("lpn").params
    assert "paper" in path.read_text().splitlines()[0]
