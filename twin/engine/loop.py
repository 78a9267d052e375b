"""simpy's event loop, `Environment.run(until=t)` and `Environment.step`, as one function to compile.

A run spends about half its CPU in simpy's interpreted loop: per event a method call (`step`), a heap pop,
the callbacks swap and a failure test. `run_until` is that loop written out once, so that the compiled
mode (tools/native.py) runs it as C, and pure Python saves the `step` call per event. It keeps simpy 4's
semantics exactly (simpy/core.py, `Environment.run` and `Environment.step`), so every event is processed
in the same order at the same instant (tests/test_loop.py checks it against simpy on random schedules):

- the stop is an event scheduled URGENT at `until` through `env.schedule` (one event id, as simpy takes),
  whose callback raises `StopSimulation`; the event then goes back in the calendar with priority -1 and
  its remaining callbacks, and is processed first when the run resumes (a second event id, as in simpy);
- `env._now` is set from the popped entry before the event's callbacks are taken (set to None) and called;
- a failed event nobody defused crashes the run with a copy of its exception (`__cause__`: the original);
- an empty calendar before `until` raises simpy's RuntimeError.

What it does not do: an Event as `until`, or no `until` (the twin always runs to a time: tests that need
those keep calling `env.run`).
"""

from __future__ import annotations

from heapq import heappop
from typing import Any, Callable, Final, SupportsFloat

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import URGENT, EventPriority

from twin.engine.resume import failure_copy

#: The priority simpy gives a stopped event when it puts it back in the calendar (Environment.step).
_RESUME_FIRST: Final = EventPriority(-1)


def run_until(env: simpy.Environment, until: SupportsFloat) -> Any:
    """`env.run(until=until)` for a time `until`: process every event due before it (and those due at it
    scheduled before the stop); returns None, as simpy's run does for a time. Any number simpy takes (a numpy
    integer: `float(until)`, as simpy converts anything but an int)."""
    at: float | int = until if isinstance(until, int) else float(until)
    if at <= env._now:
        raise ValueError(f"until ({at}) must be greater than the current simulation time")
    stop = simpy.Event(env)
    stop._ok = True
    stop._value = None
    env.schedule(stop, URGENT, at - env._now)
    stop.callbacks.append(StopSimulation.callback)  # type: ignore[union-attr]  # a new event's callbacks is a list
    try:
        _step_until_stopped(env)
    except StopSimulation as exc:
        return exc.args[0]
    except EmptySchedule:
        assert not stop.triggered
        raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {stop}') from None
    return None


def _step_until_stopped(env: simpy.Environment) -> None:
    """`env.step()` until a callback raises StopSimulation, or EmptySchedule once the calendar is empty."""
    calendar: list[tuple[Any, Any, Any, Any]] = env._queue  # Events and Alarms (twin/engine/alarm.py)
    while True:
        try:
            entry = heappop(calendar)
        except IndexError:
            raise EmptySchedule from None
        env._now = entry[0]
        event = entry[3]
        callbacks: list[Callable[[Any], Any]] = event.callbacks
        event.callbacks = None  # processed: whoever waits on it now sees it done
        callback: Any = None
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            # As simpy: the callbacks not yet called run when the simulation resumes, first of all.
            event.callbacks = callbacks[callbacks.index(callback) + 1:]
            env.schedule(event, _RESUME_FIRST)
            raise
        if not event._ok and not hasattr(event, "_defused"):
            raise failure_copy(event._value)  # nobody defused it: the run ends, as in simpy
