"""How a processed event resumes the generator waiting on it, as simpy's `Process._resume` does.

Three waiters drive generators without a simpy Process (a job record's phases, twin/engine/trampoline.py;
a periodic agent's cycle, twin/engine/agent.py) or crash the run on a failure (the event loop,
twin/engine/loop.py); they share simpy's rules here, once: the generator gets the event's value, or a
copy of its exception (the event marked defused: the waiter handled it), and must yield something to
wait on, else the run stops with simpy's RuntimeError naming the bad value.
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
    if not hasattr(waited, "callbacks"):
        raise RuntimeError(f'Invalid yield value "{waited}"')
    return waited
