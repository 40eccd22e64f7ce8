"""The run config: validated, frozen, and round-tripping through the store's JSON."""

import json
from pathlib import Path

import pytest

from selftaught.config import Budgets, RunConfig, load_toml
from selftaught.errors import ConfigError


def test_round_trips_through_json() -> None:
    config = RunConfig(task="lpn", iterations=3, repeats=5, seed=7, accept="paper", budgets=Budgets(lm_calls=2))
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"repeats": 0}, "repeats must be > 0"),
        ({"iterations": -1}, "iterations must be >= 0"),
        ({"accept": "always"}, "accept must be one of"),
        ({"budgets": {"lm_calls": "four"}}, "config.budgets.lm_calls must be an integer"),
        ({"budgets": {"tokens": 3}}, "unknown key in config.budgets: tokens"),
        ({"sandbox": {"memory_mb": 64}}, "at least 256"),
        ({"lm": []}, "config.lm must be a table"),
        ({"sandbox": {"strict": "yes"}}, "must be true or false"),
    ],
)
def test_bad_values_name_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(data)


def test_toml_file_is_read_and_bad_toml_is_one_error(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('task = "lpn"\nrepeats = 2\n[budgets]\nutility_calls = 9\n')
    config = RunConfig.from_dict(load_toml(good))
    assert (config.repeats, config.budgets.utility_calls) == (2, 9)
    bad = tmp_path / "bad.toml"
    bad.write_text("repeats = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(tmp_path / "missing.toml")
