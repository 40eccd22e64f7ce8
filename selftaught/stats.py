"""Small statistics: Wilson score intervals for rates, mean and standard error across runs.

Pure functions over floats; no numpy and no imports from the package, so every layer can use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Z95", "mean_se", "wilson_interval"]

Z95 = 1.959963984540054
"""The two-sided 95% normal quantile."""


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``trials`` (95% by default); (0, 1) when trials is 0."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_se(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and standard error (sample sd / sqrt(n)) of the values that are not None.

    The mean is None when there are none; the standard error is None with fewer than two.
    """
    present = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not present:
        return None, None
    mean = sum(present) / len(present)
    if len(present) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in present) / (len(present) - 1)
    return mean, math.sqrt(var / len(present))
