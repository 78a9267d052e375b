"""Periodic agents, as DIRAC's AgentModule runs them.

DIRAC's AgentReactor runs `execute()` then sleeps for what is left of `PollingTime`
(an overrunning cycle starts the next one at once). A cycle here may be a plain
function (instant) or a generator that yields simpy events, so that an agent's work
can cost simulated time: DB queries, service calls, server CPU.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Iterator

import simpy

from twin.engine.alarm import sleep

#: A cycle: instant (returns None) or a generator of the events its work waits on. Anything else it returns is
#: iterated as one (the driver cannot tell a compiled generator from other iterables), so return None or a generator.
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
        self.process = env.process(self._run()) if enabled else None

    def _run(self) -> Generator[Any, object, None]:
        """The agent's process; yields Events and Alarms (an Alarm is no Event type: what simpy reads of one)."""
        if self.first_offset > 0:
            yield sleep(self.env, self.first_offset)
        while True:
            start = self.env._now
            result = self._cycle()
            if result is not None:  # not inspect.isgenerator: a compiled (mypyc) generator is not a Python one
                yield from result
            elapsed = self.env._now - start
            self.cycles += 1
            self.busy_time += elapsed
            if elapsed >= self.polling_time:
                self.overruns += 1
                yield sleep(self.env, 0)
            else:
                yield sleep(self.env, self.polling_time - elapsed)
