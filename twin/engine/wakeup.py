"""A timeout that ends early when another event fires, without simpy's Condition machinery.

A pilot holds its slot for a job's run time unless the pilot is killed first: simpy's idiom is
``env.any_of([env.timeout(delay), killed])``, a Condition that builds an event tuple, evaluates
a predicate per fired event, removes its callbacks and fills a ConditionValue when processed,
i.e. several Python calls per job that nobody reads. `TimeoutOr` is the same event for the one
case the twin needs (value None, successful), scheduled exactly as the AnyOf would be: the
timeout is scheduled when the object is made, and whichever of the two is processed first
schedules this event at that instant with normal priority, so processes resume in the same
order and simpy numbers the same events (the event log cannot tell the two apart).

`Hold` is the same wait for a record driven by callbacks (twin/dirac/wms/jobagent.py), which needs
no event to yield: the timeout itself carries the race, and the event that resumes the record is made
only when the first of the two fires, so a running job's hold is one timeout, not two events.
"""

from __future__ import annotations

from typing import Any, Callable

import simpy
from simpy.events import PENDING, Timeout


class TimeoutOr(simpy.Event):
    """Fires `delay` seconds from now, or when `other` fires if that comes first (AnyOf of the two)."""

    def __init__(self, env: simpy.Environment, delay: float, other: simpy.Event) -> None:
        super().__init__(env)
        self._timeout = timeout = Timeout(env, delay)
        self._other = other
        timeout.callbacks.append(self._fire)
        if other.callbacks is None:  # already processed: AnyOf succeeds at once
            self._fire(other)
        else:
            other.callbacks.append(self._fire)

    def _fire(self, event: simpy.Event) -> None:
        if self._value is not PENDING:
            return
        if not event._ok:  # as a Condition does: the failure is forwarded and the source defused
            event._defused = True
            self.fail(event._value)
        else:
            self._ok = True
            self._value = None
            self.env.schedule(self)
        # drop the callback from the event still pending (a pilot's `killed` would collect one per job)
        pending = self._other if event is self._timeout else self._timeout
        callbacks = pending.callbacks
        if callbacks:
            try:
                callbacks.remove(self._fire)
            except ValueError:
                pass


class Hold(Timeout):
    """`delay` seconds, or until `other` fires if that comes first; then `then(event)` runs, when an event
    scheduled at that instant (normal priority) is processed, exactly when a process waiting on a
    `TimeoutOr(env, delay, other)` would resume. `other` may come later (`race`, e.g. a pilot's kill event,
    made only when the pilot is killed); it must not fail (a pilot's kill succeeds)."""

    def __init__(self, env: simpy.Environment, delay: float, other: simpy.Event | None, then: Callable[[Any], Any]) -> None:
        super().__init__(env, delay)
        self._other: simpy.Event | None = None
        self._then: Callable[[Any], Any] | None = then
        self.callbacks.append(self)  # type: ignore[union-attr]
        if other is not None:
            self.race(other)

    def race(self, other: simpy.Event) -> None:
        """Also end when `other` fires (at once if it has been processed); nothing once the hold has ended."""
        if self._then is None:
            return
        self._other = other
        if other.callbacks is None:  # already processed: wake at once
            self(other)
        else:
            other.callbacks.append(self)

    def __call__(self, event: simpy.Event) -> None:
        """The callback of both events (the hold itself: no bound method per wait); the first one wakes."""
        other, then = self._other, self._then
        if then is None:
            return
        self._other = self._then = None  # ended: the timeout left in the calendar keeps nothing alive
        wake(self.env, then)
        pending = other if event is self else self  # drop the callback left on the one still pending
        callbacks = pending.callbacks if pending is not None else None
        if callbacks:
            try:
                callbacks.remove(self)
            except ValueError:
                pass


def wake(env: simpy.Environment, then: Callable[[Any], Any]) -> None:
    """Run `then(event)` when an event scheduled now, with normal priority, is processed (a process's
    resumption after a `TimeoutOr` or an already-triggered event, without the process)."""
    event = simpy.Event(env)
    event._ok = True
    event._value = None
    event.callbacks.append(then)  # type: ignore[union-attr]
    env.schedule(event)
