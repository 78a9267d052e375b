"""A timeout that ends early when another event fires, without simpy's Condition machinery.

A pilot holds its slot for a job's run time unless the pilot is killed first: simpy's idiom is
``env.any_of([env.timeout(delay), killed])``, a Condition that builds an event tuple, evaluates
a predicate per fired event, removes its callbacks and fills a ConditionValue when processed,
i.e. several Python calls per job that nobody reads. `TimeoutOr` is the same event for the one
case the twin needs (value None, successful), scheduled exactly as the AnyOf would be: the
timeout is scheduled when the object is made, and whichever of the two is processed first
schedules this event at that instant with normal priority, so processes resume in the same
order and simpy numbers the same events (the event log cannot tell the two apart).
"""

from __future__ import annotations

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
