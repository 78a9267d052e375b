"""How a processed event resumes the generator waiting on it, as simpy's `Process._resume` does.

Three waiters drive generators without a simpy Process (a job record's phases, twin/engine/trampoline.py;
a periodic agent's cycle, twin/engine/agent.py) or crash the run on a failure (the event loop,
twin/engine/loop.py); they share simpy's rules here, once: the generator gets the event's value, or a
copy of its exception (the event marked defused: the waiter handled it), and must yield something to
wait on, else the run stops at once with simpy's RuntimeError naming the bad value (`callbacks_of`).
"""

from __future__ import annotations

from typing import Any, Generator


def failure_copy(exc: BaseException) -> BaseException:
    """A failed event's exception as simpy raises it: a copy whose `__cause__` is the original (a fresh traceback)."""
    copy = type(exc)(*exc.args)
    copy.__cause__ = exc
    return copy


def resume(generator: Generator[Any, Any, Any], event: Any) -> Any:
    """Send processed `event` (None: start) into `generator`; return what it waits on next. StopIteration (the
    generator ended) and what the generator raises propagate to the caller."""
    if event is None:
        waited = generator.send(None)
    elif event._ok:
        waited = generator.send(event._value)
    else:
        event._defused = True
        waited = generator.throw(failure_copy(event._value))
    return waited


def callbacks_of(waited: Any) -> Any:
    """The callbacks list of what a generator yielded (None: already processed). Not an event: simpy's
    RuntimeError, raised by the waiter itself (out of the loop at once, as from a Process), not by the
    generator (which a waiter that fails on its generator's exceptions would turn into a failure)."""
    try:
        return waited.callbacks
    except AttributeError:
        raise RuntimeError(f'Invalid yield value "{waited}"') from None
