"""Cost known up front: the bounds ``--dry-run`` prints are the budgets' arithmetic, and they are
tight: improvers that spend every budget make a real run use exactly the bounded samples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from selftaught import app
from selftaught.cli import main
from selftaught.config import Budgets, RunConfig, load_toml
from selftaught.experiments.cost import bound
from selftaught.lm import PriceTable, ScriptedLM
from selftaught.store import RunStore
from selftaught.tasks import get_task
from tests.programs.lpn import fenced

PAPER = Path(__file__).parents[2] / "examples" / "paper.toml"

SPENDER = """
def improve_algorithm(initial_solution, utility, language_model):
    for call in range(language_model.budget):
        messages = [f"call {call} message {i}" for i in range(language_model.max_responses_per_call)]
        language_model.batch_prompt("spend it all", messages)
    return initial_solution
"""


def _stop_arithmetic(t: int, repeats: int, lm_calls: int, samples_per_call: int, utility_calls: int,
                     val_runs: int) -> tuple[int, int]:
    """LM calls and samples of a STOP run, counted the long way round (an oracle independent of the module);
    ``val_runs``: the downstream runs the acceptance rule may spend on val per step."""
    calls = 0
    calls += 2 * repeats * lm_calls  # step 0: the seed's val and test estimates, from separate runs
    for _ in range(t):
        calls += lm_calls  # the incumbent improving itself
        calls += utility_calls * repeats * lm_calls  # each meta-utility call it makes
        calls += val_runs * lm_calls  # the candidate on val (and the incumbent on the same repeats)
        calls += repeats * lm_calls  # the candidate on test
    return calls, calls * samples_per_call


@pytest.mark.parametrize("accept", ["best", "paper", "paired", "sequential"])
def test_the_bound_is_the_budgets_arithmetic(accept: str) -> None:
    config = RunConfig.from_dict({**load_toml(PAPER), "accept": accept, "lm": {"spec": "openai:gpt-4o"}})
    found = bound("run", config, [get_task("lpn")], PriceTable())
    budgets = config.budgets
    k = config.repeats
    val_runs = {"best": k, "paper": k, "paired": 2 * k, "sequential": 2 * max(k, config.max_repeats)}[accept]
    calls, samples = _stop_arithmetic(config.iterations, k, budgets.lm_calls,
                                      budgets.responses_per_call, budgets.utility_calls, val_runs)
    assert (found.total.lm_calls, found.total.samples) == (calls, samples)
    assert found.requests == samples and found.completion_tokens == samples * config.lm.max_tokens
    price = PriceTable().price("openai:gpt-4o")
    assert price is not None and found.prompt_tokens_worst is not None
    assert found.cost_worst() == pytest.approx(price.cost_usd(found.prompt_tokens_worst, found.completion_tokens))
    assert found.cost_estimate() is not None and 0 < found.cost_estimate() < found.cost_worst()  # type: ignore[operator]


def test_run_level_caps_lower_the_bound() -> None:
    config = RunConfig.from_dict({"lm": {"spec": "openai:gpt-4o", "max_cost_usd": 5.0, "max_calls": 10}})
    found = bound("run", config, [get_task("lpn")], PriceTable())
    assert found.requests == 10 and found.cost_worst() == 5.0
    experiment = bound("experiment", config, [get_task("lpn")], PriceTable(), runs=3)
    assert experiment.total.samples == 3 * found.total.samples


def test_dry_run_of_the_paper_config_prints_calls_tokens_and_dollars_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_dir = tmp_path / "runs"
    assert main(["run", "--config", str(PAPER), "--lm", "openai:gpt-4o", "--dry-run", "--runs-dir",
                 str(runs_dir)]) == 0
    out = capsys.readouterr().out
    calls, samples = _stop_arithmetic(4, 5, 4, 6, 25, val_runs=5)  # paper.toml: accept = "paper"
    assert f"{calls:,} LM calls" in out and f"{samples:,} samples" in out
    assert f"{samples * 1024:,} completion tokens" in out  # paper.toml: the paper's 1024 per sample
    assert re.search(r"at most \$[\d,]+\.\d\d worst case, about \$[\d,]+\.\d\d", out)
    assert "estimate" in out and "as of" in out
    assert not runs_dir.exists()  # nothing was started, no key was needed
    assert main(["transfer", "--improvers", "seed,cot", "--tasks", "lpn,parity", "--runs", "3", "--lm",
                 "openai:gpt-4o", "--dry-run", "--json", "--runs-dir", str(runs_dir)]) == 0
    doc = json.loads(capsys.readouterr().out)["dry_run"]
    budgets = Budgets()
    assert doc["samples"] == 2 * 2 * 3 * budgets.lm_calls * budgets.responses_per_call


@pytest.mark.slow
def test_improvers_that_spend_everything_use_exactly_the_bounded_samples(tmp_path: Path) -> None:
    config = RunConfig.from_dict({
        "iterations": 1, "repeats": 2, "accept": "best", "lm": {"spec": "scripted"},
        "budgets": {"lm_calls": 1, "responses_per_call": 2, "utility_calls": 2, "improver_timeout_s": 30},
    })
    found = bound("run", config, [get_task("lpn")], PriceTable())
    summary = app.start_run(config, tmp_path, {}, make_lm=lambda c, e: ScriptedLM([fenced(SPENDER)]))
    assert summary.status == "finished"
    store = RunStore.in_dir(tmp_path)
    tags = [row[0] for row in store._db.execute("SELECT tag FROM lm_calls WHERE run_id=?", (summary.run_id,))]
    budget_calls = {tag.rsplit("/g", 1)[0] for tag in tags}
    assert summary.completions == found.total.samples == 26
    assert len(budget_calls) == found.total.lm_calls == 13
    assert summary.lm_calls <= found.requests


def test_experiment_dry_run_bounds_each_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "--task", "lpn", "--runs", "3", "--iterations", "1", "--lm", "openai:gpt-4o",
                 "--lm", "anthropic:claude-sonnet-4", "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    config = RunConfig.from_dict({"iterations": 1})
    one = bound("run", config, [get_task("lpn")], PriceTable())
    assert "experiment with openai:gpt-4o" in out and "experiment with anthropic:claude-sonnet-4" in out
    assert out.count(f"{3 * one.total.samples:,} samples") == 2
    assert not (tmp_path / "selftaught.db").exists()
