"""A timeout that ends early when another event fires, for a record driven by callbacks.

A pilot holds its slot for a job's run time unless the pilot is killed first: simpy's idiom is a
process waiting on ``env.any_of([env.timeout(delay), killed])``, a Condition that builds an event
tuple, evaluates a predicate per fired event, removes its callbacks and fills a ConditionValue when
processed, i.e. several Python calls per job that nobody reads. `Hold` is that wait for a record
driven by callbacks (twin/dirac/wms/jobagent.py), which needs no event to yield: the timeout itself
carries the race, and the event that resumes the record is made only when the first of the two
fires, at the instant and with the priority a process's resumption after the AnyOf would have, so
records wake in the order the processes resumed (tests/test_wakeup.py checks it against AnyOf).
"""

from __future__ import annotations

from typing import Any, Callable

import simpy
from simpy.events import Timeout


class Hold(Timeout):
    """`delay` seconds, or until `other` fires if that comes first; then `then(event)` runs, when an event
    scheduled at that instant (normal priority) is processed, exactly when a process waiting on
    `env.any_of([env.timeout(delay), other])` would resume. `other` may come later (`race`, e.g. a pilot's kill event,
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
    resumption after an AnyOf or an already-triggered event, without the process)."""
    event = simpy.Event(env)
    event._ok = True
    event._value = None
    event.callbacks.append(then)  # type: ignore[union-attr]
    env.schedule(event)
