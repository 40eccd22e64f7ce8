"""Wilson intervals against published values and a brute-force oracle; mean and standard error."""

import math

import pytest

from selftaught.report import mean_se, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # Newcombe (1998), Table I, method 3 (Wilson score without continuity correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=6e-5)


def test_wilson_is_the_set_of_rates_the_score_test_accepts() -> None:
    # Independent oracle: p lies in the interval iff |k/n - p| <= z * sqrt(p(1-p)/n).
    z = 1.959963984540054
    for k, n in [(3, 10), (7, 7), (50, 400)]:
        low, high = wilson_interval(k, n)
        grid = [i / 20000 for i in range(20001)]
        accepted = [p for p in grid if abs(k / n - p) <= z * math.sqrt(p * (1 - p) / n) + 1e-12]
        assert min(accepted) == pytest.approx(low, abs=1e-4)
        assert max(accepted) == pytest.approx(high, abs=1e-4)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_mean_se_skips_missing_values() -> None:
    assert mean_se([]) == (None, None)
    assert mean_se([None, 0.5]) == (0.5, None)
    mean, se = mean_se([0.2, None, 0.4, 0.6])
    assert mean == pytest.approx(0.4)
    assert se == pytest.approx(0.2 / math.sqrt(3))
