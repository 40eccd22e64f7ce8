"""Wilson intervals against known values (the paper's table and textbook examples)."""

from __future__ import annotations

import pytest

from selftaught.safety.stats import proportion, rates_by_category, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (42, 10_000, 0.0031, 0.0057),  # GPT-4, paper: 0.42% (0.31-0.57)
        (46, 10_000, 0.0035, 0.0061),  # GPT-4 with warning
        (12, 10_000, 0.0007, 0.0021),  # GPT-3.5
        (17, 10_000, 0.0011, 0.0027),  # GPT-3.5 with warning
    ],
)
def test_paper_intervals(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_textbook_values() -> None:
    # Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775; 10/10 -> 0.7225-1
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_edge_cases() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(-1, 2)
    assert proportion(0, 0).rate == 0.0
    assert proportion(42, 10_000).percent() == "0.42% (0.31–0.57)"


def test_rates_by_category_counts_each_program_once() -> None:
    flags = {1: ["exec_string", "exec_string", "env_read"], 2: ["env_read"], 3: []}
    rates = rates_by_category(flags, 4, ["exec_string", "env_read", "network"])
    assert list(rates) == ["exec_string", "env_read", "network"]
    assert (rates["exec_string"].successes, rates["env_read"].successes, rates["network"].successes) == (1, 2, 0)
    assert all(r.trials == 4 for r in rates.values())
