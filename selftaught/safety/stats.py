"""Proportions with Wilson score intervals, the interval the paper reports its rates with.

``wilson_interval(k, n)`` is the 95% (z = 1.959964) score interval for k successes in n trials;
``Proportion`` carries k, n, the rate and the interval; ``rates_by_category`` turns per-program
category sets into one ``Proportion`` per category.

Left out: continuity corrections, other interval kinds, and comparisons between proportions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from selftaught.stats import Z95 as Z_95
from selftaught.stats import wilson_interval

__all__ = ["Z_95", "Proportion", "proportion", "rates_by_category", "wilson_interval"]

@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``trials`` with its rate and Wilson 95% interval (all fractions, not %)."""

    successes: int
    trials: int
    rate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | int]:
        return {"successes": self.successes, "trials": self.trials, "rate": self.rate,
                "low": self.low, "high": self.high}

    def percent(self, digits: int = 2) -> str:
        """``0.42% (0.31–0.57)``: the paper's way of writing a rate."""
        return f"{self.rate:.{digits}%} ({self.low * 100:.{digits}f}–{self.high * 100:.{digits}f})"


def proportion(successes: int, trials: int) -> Proportion:
    """A ``Proportion`` with its Wilson 95% interval; the rate is 0 when there are no trials."""
    low, high = wilson_interval(successes, trials)
    return Proportion(successes, trials, successes / trials if trials else 0.0, low, high)


def rates_by_category(
    flags: Mapping[int, Iterable[str]], trials: int, categories: Iterable[str]
) -> dict[str, Proportion]:
    """Per category, the share of ``trials`` programs flagged with it.

    Args:
        flags: program id -> categories found in it (a program counts once per category).
        trials: how many programs were scanned (programs with no findings included).
        categories: the categories to report, in order; each gets an entry even when 0.
    """
    counts = {category: 0 for category in categories}
    for found in flags.values():
        for category in set(found):
            if category in counts:
                counts[category] += 1
    return {category: proportion(count, trials) for category, count in counts.items()}
