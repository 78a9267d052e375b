"""Data-size and rate units of the grid model.

Sizes are bytes (float). Every `*_mbps` in the scenario is read as megabytes per
second (10^6 B/s), for SEs, tape drives and links alike, so one unit serves all
rates; `*_tb` is 10^12 bytes.
"""

from __future__ import annotations

MB = 1e6
GB = 1e9
TB = 1e12


def mbps(rate: float) -> float:
    """Bytes per second for a scenario rate in MB/s."""
    return rate * MB
