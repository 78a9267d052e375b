"""Simulated-time units and parsing of durations written in scenarios ("8w", "6h", 120)."""

from __future__ import annotations

import re

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY

_UNITS = {"s": 1.0, "m": MINUTE, "min": MINUTE, "h": HOUR, "d": DAY, "w": WEEK}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds for a number (already seconds) or a string like '90s', '10 min', '6h', '2d', '8w'."""
    if isinstance(value, bool):
        raise ValueError("expected a duration (seconds, or a string like '6h', '2d', '8w')")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("expected a non-negative duration")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError("expected a duration (seconds, or a string like '6h', '2d', '8w')")


def format_duration(seconds: float) -> str:
    """Short human form for reports: '3.5 d', '2.0 h', '45 s'."""
    if seconds >= DAY:
        return f"{seconds / DAY:.1f} d"
    if seconds >= HOUR:
        return f"{seconds / HOUR:.1f} h"
    if seconds >= MINUTE:
        return f"{seconds / MINUTE:.1f} min"
    return f"{seconds:.0f} s"
