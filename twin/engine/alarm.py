"""Timeouts without simpy's Timeout object, for the waits every job makes several times.

A service call's latency, a job record's sleep and an agent's polling wait are plain timeouts: an
entry in simpy's calendar that resumes one waiter. simpy's `Timeout` is a full Event (an instance
dict, a Python `__init__` and an `Environment.schedule` call); `Alarm` is what the calendar needs to
process one (`callbacks`, `_ok`, `_value`), pushed with the very (time, priority, id) key
`Environment.schedule` gives a Timeout: `now + delay`, NORMAL, the next event id. Same instants,
same ids, so simpy processes every event in the same order as with Timeouts (the event log is
bit-identical); what is saved is the object and two Python calls per wait.

Processes yield an `Alarm` as they yield a Timeout (`Process._resume` and `Trampoline` read only
`callbacks`, `_ok` and `_value`); it has none of an Event's other methods (no `&`/`|`, no
`succeed`): a wait that joins a condition keeps using `env.timeout`.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, Callable

import simpy
from simpy.core import NORMAL


class Alarm:
    """A triggered, successful event with no value, due at the instant it was scheduled for."""

    __slots__ = ("callbacks",)
    _ok = True
    _value = None

    def __init__(self, callbacks: list[Callable[[Any], Any]]) -> None:
        self.callbacks: list[Callable[[Any], Any]] | None = callbacks


def sleep(env: simpy.Environment, delay: float) -> Alarm:
    """What `env.timeout(delay)` schedules, for a process to yield; a negative `delay` raises as there
    (an entry in the past would move simpy's clock back and corrupt every time integral silently)."""
    if delay < 0:
        raise ValueError(f"Negative delay {delay}")
    alarm = Alarm([])
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), alarm))  # type: ignore[attr-defined]
    return alarm


def call_after(env: simpy.Environment, delay: float, callback: Callable[[Any], Any]) -> None:
    """`env.timeout(delay).callbacks.append(callback)`: `callback(alarm)` then; a negative `delay` raises."""
    if delay < 0:
        raise ValueError(f"Negative delay {delay}")
    alarm = Alarm([callback])
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), alarm))  # type: ignore[attr-defined]
