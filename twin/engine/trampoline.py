"""Drive a generator of simpy events without a simpy Process.

An event-driven record (a pilot's JobAgent, twin/dirac/wms/jobagent.py) runs most of its life as
callbacks, but some phases are written as generators because they may queue exactly (a service
call on a hot pool, a transfer waiting for an SE slot): rewriting them as callbacks would duplicate
the queueing code. `Trampoline` runs such a generator the way a Process runs a `yield from`: it
sends each event's value back in (throws a failed event's exception in) and waits on the next event
by appending its own callback, at the same instants and in the same callback positions as the
Process would, so simpy processes the same events in the same order. What it saves is the Process
event itself (its Initialize and its end event) and the process bookkeeping.
"""

from __future__ import annotations

from typing import Any, Callable, Generator

from twin.engine.alarm import Waitable
from twin.engine.resume import callbacks_of, resume

#: What `Trampoline.start` returns while the generator waits on an event.
PENDING: Any = object()


class Trampoline:
    """Runs `generator` to its end and calls `then(value)` with its return value (unless it ended at once)."""

    __slots__ = ("generator", "then")

    def __init__(self, generator: Generator[Waitable, Any, Any], then: Callable[[Any], Any]) -> None:
        self.generator = generator
        self.then = then

    def start(self) -> Any:
        """Run up to the first event not yet processed: the generator's value if it ended before that
        (`then` is not called), else PENDING (`then` is called when it ends)."""
        return self._run(None)

    def _resume(self, event: Waitable) -> None:
        value = self._run(event)
        if value is not PENDING:
            self.then(value)

    def _run(self, event: Waitable | None) -> Any:
        generator = self.generator
        while True:
            try:
                event = resume(generator, event)
            except StopIteration as stop:
                return stop.value
            callbacks = callbacks_of(event)
            if callbacks is not None:  # not processed yet: wait for it
                callbacks.append(self._resume)
                return PENDING
