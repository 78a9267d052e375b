"""A timeout that ends early when another event fires, for a record driven by callbacks.

A pilot holds its slot for a job's run time unless the pilot is killed first: simpy's idiom is a
process waiting on ``env.any_of([env.timeout(delay), killed])``, a Condition that builds an event
tuple, evaluates a predicate per fired event, removes its callbacks and fills a ConditionValue when
processed, i.e. several Python calls per job that nobody reads. `Hold` is that wait for a record
driven by callbacks (twin/dirac/wms/jobagent.py), which needs no event to yield: the timeout itself
carries the race, and the entry that resumes the record is made only when the first of the two
fires, at the instant and with the priority a process's resumption after the AnyOf would have, so
records wake in the order the processes resumed (tests/test_wakeup.py checks it against AnyOf).

A `Hold` is a calendar entry as twin/engine/alarm.py's `Alarm` is (what simpy's loop reads of an
event: `callbacks`, `_ok`, `_value`), pushed with the key simpy's `Timeout` would get: `now + delay`,
NORMAL, the next event id. Not a Timeout subclass: a compiled class cannot derive from simpy's.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import simpy

from twin.engine.alarm import call_after, due_in


class Hold:
    """`delay` seconds, or until `other` fires if that comes first; then `then(event)` runs, when an entry
    scheduled at that instant (normal priority) is processed, exactly when a process waiting on
    `env.any_of([env.timeout(delay), other])` would resume. `other` may come later (`race`, e.g. a pilot's kill event,
    made only when the pilot is killed); it must not fail (a pilot's kill succeeds)."""

    __slots__ = ("env", "callbacks", "_other", "_then")
    _ok: ClassVar[bool] = True
    _value: ClassVar[None] = None

    def __init__(self, env: simpy.Environment, delay: float, other: simpy.Event | None, then: Callable[[Any], Any]) -> None:
        self.env = env
        self._other: simpy.Event | None = None
        self._then: Callable[[Any], Any] | None = then
        self.callbacks: list[Callable[[Any], Any]] | None = [self]
        due_in(env, delay, self)
        if other is not None:
            self.race(other)

    def race(self, other: simpy.Event) -> None:
        """Also end when `other` fires (at once if it has been processed); nothing once the hold has ended."""
        if self._then is None:
            return
        self._other = other
        waited: Any = other  # read untyped: simpy annotates `callbacks` as a list, which compiled code would check
        callbacks: list[Callable[[Any], Any]] | None = waited.callbacks  # None once processed
        if callbacks is None:  # already processed: wake at once
            self(other)
        else:
            callbacks.append(self)

    def __call__(self, event: Any) -> None:
        """The callback of both (the hold itself: no bound method per wait); the first one wakes."""
        other, then = self._other, self._then
        if then is None:
            return
        self._other = self._then = None  # ended: the entry left in the calendar keeps nothing alive
        wake(self.env, then)
        pending: Any = other if event is self else self  # drop the callback left on the one still pending
        callbacks = pending.callbacks if pending is not None else None
        if callbacks:
            try:
                callbacks.remove(self)
            except ValueError:
                pass


def wake(env: simpy.Environment, then: Callable[[Any], Any]) -> None:
    """Run `then(entry)` when an entry scheduled now, with normal priority, is processed (a process's
    resumption after an AnyOf or an already-triggered event, without the process): the key
    `env.schedule(event)` gives an event, now + 0, NORMAL, the next event id: an alarm due now."""
    call_after(env, 0, then)
