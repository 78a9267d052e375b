"""Small statistics for reports: confidence intervals of a mean and of a share.

Kept free of scipy so that the sweep page and the CLI tables need only numpy; the
significance tests of multi-seed comparisons live in `twin.replicas`.
"""

from __future__ import annotations

import math

Z975 = 1.959963984540054  # two-sided 95% standard normal quantile


def wilson(successes: int, n: int, z: float = Z975) -> tuple[float, float]:
    """Wilson score interval of a binomial share (95% by default): sensible at 0/n and n/n,
    where the normal approximation collapses to a zero-width interval (Wilson 1927)."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
