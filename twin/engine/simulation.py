"""One run: a simpy environment, its random streams, event log, metrics and fault schedule.

Everything a component needs from the kernel is reached through this object, so a
component never builds its own clock or RNG and a run is reproducible from
(scenario, seed) alone.
"""

from __future__ import annotations

import gc
from operator import attrgetter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import simpy

from twin.engine.agent import Cycle, PeriodicAgent
from twin.engine.eventlog import EventLog
from twin.engine.faults import FaultSchedule
from twin.engine.loop import run_until
from twin.engine.metrics import Metrics
from twin.engine.rng import RandomStreams


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Fewer full collections while millions of small records live: the model built before the
    run is frozen out of the collector, and the young-generation threshold raised; restored after."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


class Simulation:
    """The kernel of one run."""

    def __init__(self, seed: int, sample_interval: float = 3600.0, event_log: bool = True, disabled_kinds=(),
                 events_path: Path | None = None, keep_events: bool = True) -> None:
        """`events_path`: stream the event log to this Parquet file (else it is kept in memory,
        or, with `keep_events=False`, only digested and counted)."""
        self.env = simpy.Environment()
        self.seed = seed
        self.streams = RandomStreams(seed)
        self.log = EventLog(enabled=event_log, disabled_kinds=disabled_kinds, path=events_path, keep=keep_events)
        self.metrics = Metrics()
        self.faults = FaultSchedule(self.env, self.log)
        self.agents: list[PeriodicAgent] = []
        self.sample_interval = sample_interval
        self._finalizers: list[Callable[[], None]] = []

    #: simpy's clock, read in C (`Environment.now` is a Python property: one call fewer per read, ~10 per job).
    now = property(attrgetter("env._now"), doc="The simulated time (seconds).")

    def agent(self, name: str, polling_time: float, cycle: Cycle, first_offset: float = 0.0, enabled: bool = True) -> PeriodicAgent:
        """Start a periodic agent owned by this run."""
        agent = PeriodicAgent(self.env, name, polling_time, cycle, first_offset, enabled)
        self.agents.append(agent)
        return agent

    def at_end(self, finalizer: Callable[[], None]) -> None:
        """Call `finalizer` once after the run stops (e.g. close open accounting)."""
        self._finalizers.append(finalizer)

    def run(self, until: float, progress: Callable[[float], None] | None = None, steps: int = 200,
            stop_when: Callable[[], bool] | None = None) -> float:
        """Advance to `until` in `steps` slices, reporting progress; return the stop time.

        `stop_when` is checked between slices so a run whose work is all final can end
        early instead of idling to the horizon.
        """
        self.metrics.sampler(self.env, self.sample_interval)
        step = max(until / steps, 1e-9)
        t = 0.0
        with _quiet_gc():
            while t < until:
                t = min(until, t + step)
                run_until(self.env, t)  # env.run(until=t), compiled in compiled mode
                if progress:
                    progress(t)
                if stop_when is not None and stop_when():
                    break
        self.metrics.sample(self.env.now)
        for finalizer in self._finalizers:
            finalizer()
        return self.env.now
