"""Periodic agents, as DIRAC's AgentModule runs them.

DIRAC's AgentReactor runs `execute()` then sleeps for what is left of `PollingTime`
(an overrunning cycle starts the next one at once). A cycle here may be a plain
function (instant) or a generator that yields simpy events, so that an agent's work
can cost simulated time: DB queries, service calls, server CPU.

An agent is driven by callbacks, not by a simpy Process: the agents' waits are about a dozen
resumptions per job, and simpy's interpreted `Process._resume` (plus the generator a process
would `yield from` the cycle through) was their cost. The agent does what the process did, at
the same instants and in the same callback positions, so simpy processes the same events in the
same order (tests/test_agent.py checks it against the process): it starts on an URGENT event
(a process's Initialize), sends each waited event's value into the cycle (throws a failed one's
exception, defused, as the process did), and sleeps with the same calendar entries. A cycle that
raises fails the agent as it failed the process: a failed event scheduled then ends the run.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, Callable, Generator, Iterable, Iterator, cast

import simpy
from simpy.core import URGENT

from twin.engine.alarm import Alarm, Waitable, call_after
from twin.engine.resume import callbacks_of, resume

#: A cycle: instant (returns None) or a generator of the events its work waits on. Anything else it returns is
#: iterated as one (as `yield from` would), so return None or a generator.
Cycle = Callable[[], "Iterator[Any] | None"]


class PeriodicAgent:
    """Runs `cycle` every `polling_time` seconds, first after `first_offset`.

    `cycles` counts completed cycles; `busy_time` sums simulated time spent inside
    cycles, which reports use to show agents falling behind when the DB is slow.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        polling_time: float,
        cycle: Cycle,
        first_offset: float = 0.0,
        enabled: bool = True,
    ) -> None:
        if polling_time <= 0:
            raise ValueError(f"agent {name}: polling_time must be > 0, got {polling_time}")
        self.env = env
        self.name = name
        self.polling_time = float(polling_time)
        self.first_offset = float(first_offset)
        self._cycle = cycle
        self.cycles = 0
        self.busy_time = 0.0
        self.overruns = 0
        self.started = 0.0  # when the cycle in progress started
        self.work: Generator[Any, Any, Any] | None = None  # the cycle in progress, while it waits
        self.enabled = enabled
        if enabled:  # as env.process starts one: on an URGENT event now (its Initialize)
            calendar: list[Any] = env._queue  # typed for Events; an Alarm has what simpy reads of one
            heappush(calendar, (env._now, URGENT, next(env._eid), Alarm([self._initialize])))

    def _initialize(self, _event: Any) -> None:
        """What the process's first resumption did: sleep `first_offset`, else start the first cycle now."""
        if self.first_offset > 0:
            call_after(self.env, self.first_offset, self)
        else:
            self._begin()

    def __call__(self, event: Any) -> None:
        """The callback of every entry the agent waits on (no bound method per wait): an event the cycle in
        progress waits on, or the end of the sleep between cycles."""
        if self.work is not None:
            self._advance(event)
        else:
            self._begin()

    def _begin(self) -> None:
        """A cycle starts: run it up to its first wait, or to its end."""
        self.started = self.env._now
        try:
            result = self._cycle()
        except Exception as exc:  # noqa: BLE001  # the agent fails, as its process did
            self._fail(exc)
            return
        if result is None:
            self._end()
            return
        # a generator (not inspect.isgenerator: a compiled one is not a Python one), else as `yield from` takes it
        self.work = cast("Generator[Any, Any, Any]", result) if hasattr(result, "throw") else _each(result)
        self._advance(None)

    def _advance(self, event: Waitable | None) -> None:
        work = self.work
        assert work is not None
        while True:
            try:
                event = resume(work, event)
            except StopIteration:
                self.work = None
                self._end()
                return
            except Exception as exc:  # noqa: BLE001  # the agent fails, as its process did
                self.work = None
                self._fail(exc)
                return
            callbacks = callbacks_of(event)
            if callbacks is not None:  # not processed yet: wait for it
                callbacks.append(self)
                return

    def _end(self) -> None:
        """A cycle ended: account for it and sleep for what is left of the polling time."""
        elapsed = self.env._now - self.started
        self.cycles += 1
        self.busy_time += elapsed
        if elapsed >= self.polling_time:
            self.overruns += 1
            call_after(self.env, 0, self)
        else:
            call_after(self.env, self.polling_time - elapsed, self)

    def _fail(self, exc: Exception) -> None:
        """As a process whose generator raised: its failed event, scheduled now, ends the run (nobody joins it)."""
        self.enabled = False
        failed = simpy.Event(self.env)
        failed._ok = False
        failed._value = exc
        self.env.schedule(failed)


def _each(events: Iterable[Any]) -> Generator[Any, Any, None]:
    """A cycle that returned an iterable of events rather than a generator: waited on as `yield from` would."""
    yield from events
