"""Small statistics for reports: intervals of a share and of single runs, and the significance tests
of multi-seed comparisons (scipy, imported only when a test runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

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


@dataclass(frozen=True)
class Test:
    """Outcome of a two-sample test of "what-if differs from baseline" (p-value, the test's name)."""

    p: float
    name: str

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


ALPHA = 0.05


def difference_test(base: Sequence[float], whatif: Sequence[float], paired: bool) -> Test | None:
    """Two-sided test of a difference in means; None with fewer than two values on a side.

    Paired t-test on the per-seed differences when both sides ran the same seeds (common random numbers:
    seed noise cancels), Welch's unequal-variance t-test otherwise (scipy.stats). Degenerate cases
    (every difference equal) are decided exactly: all zero -> p = 1, all the same non-zero -> p = 0.
    """
    from scipy import stats

    a, b = np.asarray(base, dtype=float), np.asarray(whatif, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    if paired and len(a) == len(b):
        d = b - a
        if np.all(d == d[0]):
            return Test(1.0 if d[0] == 0 else 0.0, "paired t")
        return Test(float(stats.ttest_rel(b, a).pvalue), "paired t")
    if np.all(a == a[0]) and np.all(b == b[0]):
        return Test(1.0 if a[0] == b[0] else 0.0, "Welch t")
    return Test(float(stats.ttest_ind(b, a, equal_var=False).pvalue), "Welch t")


def share_test(base: Sequence[bool], whatif: Sequence[bool]) -> Test | None:
    """Fisher's exact test of two shares (e.g. P(deadline met)); None with fewer than two runs on a side."""
    from scipy import stats

    if len(base) < 2 or len(whatif) < 2:
        return None
    table = [[sum(bool(x) for x in base), sum(not x for x in base)], [sum(bool(x) for x in whatif), sum(not x for x in whatif)]]
    return Test(float(stats.fisher_exact(table).pvalue), "Fisher exact")


def percentile_interval(values: Sequence[float], level: float = 0.90) -> tuple[float, float]:
    """Central `level` interval of the values themselves (not of their mean): where a single run lands."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    return float(np.percentile(x, tail)), float(np.percentile(x, 100 - tail))
