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
from typing import Any, Callable, ClassVar, Protocol

import simpy
from simpy.core import NORMAL


class Waitable(Protocol):
    """What a process waits on, as simpy's calendar and a process's resumption read it: an Event or an Alarm.

    `callbacks` is None once processed (simpy's own annotation says a list: compiled code would check it)."""

    @property
    def callbacks(self) -> list[Callable[[Any], Any]] | None: ...
    @property
    def _ok(self) -> bool: ...
    @property
    def _value(self) -> Any: ...


class Alarm:
    """A triggered, successful event with no value, due at the instant it was scheduled for."""

    __slots__ = ("callbacks",)
    _ok: ClassVar[bool] = True
    _value: ClassVar[None] = None

    def __init__(self, callbacks: list[Callable[[Any], Any]]) -> None:
        self.callbacks: list[Callable[[Any], Any]] | None = callbacks


def sleep(env: simpy.Environment, delay: float) -> Alarm:
    """What `env.timeout(delay)` schedules, for a process to yield; a negative `delay` raises as there
    (an entry in the past would move simpy's clock back and corrupt every time integral silently)."""
    alarm = Alarm([])
    due_in(env, delay, alarm)
    return alarm


def call_after(env: simpy.Environment, delay: float, callback: Callable[[Any], Any]) -> None:
    """`env.timeout(delay).callbacks.append(callback)`: `callback(alarm)` then; a negative `delay` raises."""
    due_in(env, delay, Alarm([callback]))


def due_in(env: simpy.Environment, delay: float, entry: Any) -> None:
    """Put `entry` (an Alarm, or anything with what simpy reads of an event) in simpy's calendar with the key a
    Timeout of `delay` gets: now + delay, NORMAL, the next event id. A negative `delay` raises as a Timeout's
    (an entry in the past would move simpy's clock back and corrupt every time integral silently)."""
    if delay < 0:
        raise ValueError(f"Negative delay {delay}")
    calendar: list[Any] = env._queue  # typed for Events; an Alarm has what simpy reads of one (module docstring)
    heappush(calendar, (env._now + delay, NORMAL, next(env._eid), entry))
