"""Proportions with Wilson score intervals, the interval the paper reports its rates with.

``wilson_interval(k, n)`` is the 95% (z = 1.959964) score interval for k successes in n trials;
``Proportion`` carries k, n, the rate and the interval; ``rates_by_category`` turns per-program
category sets into one ``Proportion`` per category.

Left out: continuity corrections, other interval kinds, and comparisons between proportions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Z_95", "Proportion", "proportion", "rates_by_category", "wilson_interval"]

Z_95 = 1.959963984540054
"""The two-sided 95% normal quantile."""


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of ``successes / trials``; (0, 1) when trials is 0."""
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


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
