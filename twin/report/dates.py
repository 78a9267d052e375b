"""Calendar dates on a run's time axis: when the scenario gives `run.start_date` (the day simulated time 0
falls on), plots show dates and sentences say "8.4 d (2026-03-09 10:00)"; otherwise days since the start.

The start date is set once per report (`campaign(start)`, a context variable) rather than passed through every
figure function: figure signatures stay about their data, and code that never sets it (sweep pages, tests)
keeps days since the start.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Mapping

from twin.engine.clock import format_duration

DAY = 86400.0
_START: ContextVar[dt.date | None] = ContextVar("campaign_start", default=None)


def start_of(scenario: Mapping[str, Any] | None) -> dt.date | None:
    """The resolved scenario's run.start_date (a date, or its ISO text as in summary.json), None when unset."""
    value = ((scenario or {}).get("run") or {}).get("start_date")
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:  # a summary written by hand: show days rather than fail the report
        return None


@contextmanager
def campaign(start: dt.date | None) -> Iterator[None]:
    """Within the block, times are shown as dates counted from `start` (None: days since the start)."""
    token = _START.set(start)
    try:
        yield
    finally:
        _START.reset(token)


def start() -> dt.date | None:
    return _START.get()


def start_epoch() -> float | None:
    """Day 0 at 00:00 UTC as Unix seconds (what a browser's date axis counts from), None without a start date."""
    day0 = _START.get()
    return None if day0 is None else dt.datetime.combine(day0, dt.time(), tzinfo=dt.timezone.utc).timestamp()


def date_at(seconds: float) -> dt.datetime | None:
    """The calendar moment of a simulated time, None without a start date."""
    day0 = _START.get()
    return None if day0 is None else dt.datetime.combine(day0, dt.time()) + dt.timedelta(seconds=float(seconds))


def date_text(seconds: float | None) -> str:
    """'2026-03-09 10:00' ('2026-03-09' at midnight); '' without a start date or a time."""
    moment = None if seconds is None else date_at(seconds)
    if moment is None:
        return ""
    return f"{moment:%Y-%m-%d}" if moment.time() == dt.time() else f"{moment:%Y-%m-%d %H:%M}"


def when(seconds: float | None) -> str:
    """'8 d 10 h (2026-03-09 10:00)' with a start date, '8 d 10 h' without; '–' for no time."""
    if seconds is None:
        return "–"
    on = date_text(seconds)
    return f"{format_duration(float(seconds))} ({on})" if on else format_duration(float(seconds))


def axis_label() -> str:
    day0 = _START.get()
    return "simulated time [days]" if day0 is None else f"date (day 0 = {day0:%Y-%m-%d})"


HOUR_STEPS = (1, 2, 3, 6, 12, 24)  # tick spacing on spans of up to 3 days
DAY_STEPS = (1, 2, 7, 14, 28, 56, 91)  # and beyond
MAX_TICKS = 8


def tick_step(span_days: float) -> float:
    """Days between date ticks: whole hours on spans of up to 3 days, whole days (weeks...) beyond."""
    steps = [h / 24.0 for h in HOUR_STEPS] if span_days <= 3.0 else [float(d) for d in DAY_STEPS]
    return next((step for step in steps if span_days / step <= MAX_TICKS), steps[-1])


def tick_text(days: float, span_days: float, first: bool = False) -> str:
    """A time-axis tick (x in days since the start): '03 Mar'; on spans of 3 days or less '14:00', with the
    date on the first tick and at midnight ('03 Mar 00:00')."""
    moment = date_at(days * DAY)
    if moment is None:
        return f"{days:g}"
    if span_days > 3.0:
        return f"{moment:%d %b}"
    return f"{moment:%d %b %H:%M}" if first or moment.time() == dt.time() else f"{moment:%H:%M}"


def date_axis(ax: Any, label: bool = True) -> None:
    """Label the x axis (days since the start) with dates when a start date is set; leave days otherwise."""
    if label:
        ax.set_xlabel(axis_label())
    if _START.get() is None:
        return
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    span = abs(ax.get_xlim()[1] - ax.get_xlim()[0])
    ax.xaxis.set_major_locator(MultipleLocator(tick_step(span)))  # ticks on whole hours / days, not 0.0196 d
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, pos: tick_text(x, span, first=pos == 0)))
