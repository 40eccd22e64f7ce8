"""Acceptance rules: Student's t, the sequential looks, what each rule decides and what it costs."""

from __future__ import annotations

import argparse
import re

import pytest

from selftaught.cli.parser import build_parser
from selftaught.cli.runs import config_from
from selftaught.config import Budgets, RunConfig
from selftaught.errors import ConfigError
from selftaught.experiments import transfer_table
from selftaught.experiments.simulate import InlineExecutor, Scenario, SimulatedBroker, SimulatedTask
from selftaught.improver import SEED_IMPROVER
from selftaught.meta_utility import Estimate, MetaUtility
from selftaught.proxy import meta_description
from selftaught.proxy.helpers import HELPERS_SOURCE
from selftaught.stats import mean_and_se, mean_se, t_quantile
from selftaught.stop import ALPHA, decide, paired_bound, sequential_looks

# One-sided 95% quantiles of Student's t for 1..30 degrees of freedom, from printed tables.
T95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761,
       1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701,
       1.699, 1.697)


def test_t_quantile_matches_printed_tables() -> None:
    for df, value in enumerate(T95, start=1):
        assert t_quantile(0.95, df) == pytest.approx(value, abs=6e-4)
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.995, 2) == pytest.approx(9.925, abs=1e-3)
    assert t_quantile(0.975, 10) == pytest.approx(2.228, abs=1e-3)
    assert t_quantile(0.95, 10_000) == pytest.approx(1.645, abs=1e-3)
    assert t_quantile(0.05, 3) == pytest.approx(-2.353, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_one_score_has_no_standard_error_in_either_form() -> None:
    assert mean_and_se([0.4]) == Estimate(0.4, None, (0.4,))
    assert mean_se([0.4]) == (0.4, None)
    two = mean_and_se([0.2, 0.6])
    assert two.se == pytest.approx(0.2) and mean_se([0.2, 0.6]) == (two.mean, two.se)
    with pytest.raises(ValueError):
        mean_and_se([])


def test_paired_bound_with_one_pair_is_the_difference() -> None:
    mean, se, lower = paired_bound([0.6], [0.5])
    assert (mean, se, lower) == (pytest.approx(0.1), None, pytest.approx(0.1))
    mean, se, lower = paired_bound([0.8, 0.7, 0.9, 0.6, 0.75], [0.5, 0.6, 0.55, 0.5, 0.6])
    assert se is not None and lower == pytest.approx(mean - t_quantile(0.95, 4) * se)


def test_sequential_looks_spend_alpha_once_in_all() -> None:
    looks = sequential_looks(3, 12)
    assert [n for n, _ in looks] == [3, 6, 9, 12]
    assert sum(alpha for _, alpha in looks) == pytest.approx(ALPHA)
    assert [alpha for _, alpha in looks] == sorted(alpha for _, alpha in looks)  # later looks get more
    assert sequential_looks(5, 12) == [(5, pytest.approx(ALPHA * 5 / 27)), (10, pytest.approx(ALPHA * 10 / 27)),
                                       (12, pytest.approx(ALPHA * 12 / 27))]
    assert sequential_looks(3, 3) == [(3, ALPHA)]  # a cap of k pairs: the paired rule
    with pytest.raises(ValueError):
        sequential_looks(4, 3)


def _decide(scenario: Scenario, candidate_skill: float, config: RunConfig, seed: int = 0) -> tuple[str, int]:
    broker = SimulatedBroker(scenario, seed)
    meta = MetaUtility(broker, SimulatedTask(), config.repeats, broker.budgets, executor=InlineExecutor())
    candidate = f"# simulated skill {candidate_skill}\n# candidate\n"
    decision = decide(config, meta, candidate, SEED_IMPROVER, 0.6, "t1/eval/val")
    assert decision.val_runs == broker.runs.get("val", 0)  # the cost the reason reports is what was run
    return decision.reason, decision.val_runs


def test_sequential_rule_adds_pairs_until_it_decides_and_says_what_it_cost() -> None:
    config = RunConfig(repeats=3, max_repeats=12)
    reason, runs = _decide(Scenario("s", 0.0, 0.0, rho=0.99), 0.95, config)  # much better: adopted
    assert reason.startswith("adopted (sequential)") and f"{runs} val runs ({runs // 2} pairs" in reason
    assert runs % 6 == 0 and 6 <= runs <= 24
    reason, runs = _decide(Scenario("s", 0.9, 0.9, rho=0.99), 0.0, config)  # much worse: the first look ends it
    assert reason.startswith("kept incumbent (sequential)") and "no sign of improvement" in reason and runs == 6
    rejected = [_decide(Scenario("n", 0.25, 0.25, rho=0.5), 0.25, config, seed) for seed in range(30)]
    assert all(r.startswith("kept incumbent") for r, _ in rejected if r.startswith("kept"))
    assert max(runs for _, runs in rejected) <= 24  # never past the cap
    for reason, runs in rejected:
        if reason.startswith("kept"):
            assert "no sign of improvement" in reason or (runs == 24 and "at the cap of 12 pairs" in reason)


def test_paired_rule_runs_one_look_of_k_pairs() -> None:
    reason, runs = _decide(Scenario("s", 0.25, 0.25, rho=0.99), 0.95, RunConfig(repeats=3, accept="paired"))
    assert runs == 6 and "(paired)" in reason and re.search(r"95\.0% lower bound", reason)


def test_best_rule_compares_with_the_bar_it_is_given() -> None:
    reason, runs = _decide(Scenario("s", 0.25, 0.25), 0.25, RunConfig(repeats=3, accept="best"))
    assert runs == 3 and "incumbent's bar 0.6000" in reason


def test_config_and_flags_for_the_acceptance_rule() -> None:
    assert RunConfig().accept == "sequential" and RunConfig().max_repeats == 12
    assert RunConfig.from_dict({"accept": "best"}).max_repeats == 12  # configs stored before the field
    with pytest.raises(ConfigError, match="max_repeats must be > 0"):
        RunConfig(max_repeats=0)
    with pytest.raises(ConfigError, match="accept must be one of sequential, best, paper, paired"):
        RunConfig.from_dict({"accept": "sometimes"})
    args = build_parser().parse_args(["run", "--accept", "sequential", "--max-repeats", "20", "--lm", "openai:x"])
    config = config_from(args, {})
    assert (config.accept, config.max_repeats) == ("sequential", 20)
    assert config_from(argparse.Namespace(**{**vars(args), "max_repeats": None}), {}).max_repeats == 12
    with pytest.raises(ConfigError, match="max_repeats must be > 0"):
        config_from(build_parser().parse_args(["run", "--max-repeats", "0", "--lm", "openai:x"]), {})


def test_the_meta_utility_description_says_what_is_computed() -> None:
    text = meta_description(4, Budgets(utility_calls=9, improver_timeout_s=60))
    assert "held_out" not in text and "never saw" not in text
    assert "training instances" in text and "It is run 4 times, independently," in text
    assert "scores 0" in text and "60 s" in text and "utility.budget =\n        9" in text
    assert "from helpers import extract_code" in text
    namespace: dict[str, object] = {}
    exec(HELPERS_SOURCE, namespace)  # the module the sandbox really offers defines it
    extract = namespace["extract_code"]
    assert callable(extract) and extract("```python\nx = 1\n```") == "x = 1"
    assert "It is run once on" in meta_description(1, Budgets())


def test_a_transfer_table_needs_two_runs_per_cell() -> None:
    broker = SimulatedBroker(Scenario("n", 0.25, 0.25), 0)
    with pytest.raises(ConfigError, match="runs must be at least 2"):
        transfer_table(broker, [SimulatedTask()], {"seed": SEED_IMPROVER}, 1, "transfer")  # type: ignore[arg-type]
