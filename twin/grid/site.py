"""Sites, their computing elements (CE queues) and the pilots that run in CE slots.

What the WMS sees is DIRAC's view of a CE: `available()` as ComputingElement.available()
computes it, `submit_pilots()` as the SiteDirector calls it, and a `Pilot` handed to
the JobAgent logic through `on_start` once it holds a slot.

Simplified: a pilot holds exactly one slot of `processors` cores (1 by default) and runs one
job at a time; the batch system is a
counter (no fair-share inside the site); pilot queueing time is exponential with mean
`pilot_latency`; an aborting pilot aborts at the end of that wait. A pilot still running
at `end_time` is ended by the batch system (wall-clock limit) and `killed` fires.
Pilots are driven by timer callbacks (twin/engine/alarm.py `call_after`: a calendar entry, no Timeout
object), not by one simpy process each.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, Final, Iterator, Protocol

import simpy

from twin.engine.alarm import call_after
from twin.engine.simulation import Simulation
from twin.grid.faultstate import ActiveFaults
from twin.scenario import schema

WAITING: Final = "Waiting"
RUNNING: Final = "Running"
DONE: Final = "Done"
FAILED: Final = "Failed"
ABORTED: Final = "Aborted"
MAX_QUEUE_CPU_TIME_S: Final = 12.5 * 86400  # computeQueueCPULimit caps a queue's maxCPUTime here


class KillWatcher(Protocol):
    """What waits for a pilot's kill before it happens (the JobAgent's hold, twin/engine/wakeup.py:Hold)."""

    def race(self, killed: simpy.Event) -> None:
        """The pilot has just been killed: also wait on `killed` (triggered, not yet processed)."""


class Pilot:
    """One pilot job in one CE slot (the JobAgent's container). A running pilot has no kill event until
    it is killed: a wait that must end at the kill registers as its `watcher` meanwhile."""

    __slots__ = ("id", "ce", "site", "hs06", "processors", "memory_mb", "start", "end_time", "killed", "watcher", "status")

    def __init__(self, pilot_id: int, ce: "ComputingElement") -> None:
        self.id = pilot_id
        self.ce = ce
        self.site: str = ce.site.name
        self.hs06: float = ce.hs06_per_core
        self.processors: int = ce.processors
        self.memory_mb: int = ce.memory_mb
        self.start: float | None = None
        self.end_time: float | None = None
        self.killed: simpy.Event | None = None  # made when the batch system ends the pilot (none before: ~160 B saved per slot)
        self.watcher: KillWatcher | None = None  # waits for the kill before it happens: given `killed` when it is made
        self.status = WAITING

    def time_left(self, now: float) -> float:
        """Wall-clock seconds left before the batch system ends the pilot (what the TimeLeft
        utility reads from the batch system; `hs06` is the CPUNormalizationFactor)."""
        return max(0.0, self.end_time - now) if self.end_time is not None else 0.0

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def finish(self) -> None:
        """The pilot exits and frees its slot (idempotent; no-op once it has ended)."""
        self.ce._end(self, DONE, None)

    def __call__(self, _alarm: object) -> None:
        """The batch system's wall-clock limit: a pilot is its lifetime timer's callback (no closure or
        bound method per pilot, for a timer that outlives most pilots); no-op once the pilot has ended."""
        self.ce._end(self, DONE, "wallclock")

    def __repr__(self) -> str:
        return f"Pilot({self.id}, {self.site}/{self.ce.name}, {self.status})"


class ComputingElement:
    """A CE queue: `slots` single-core slots and the SiteDirector's queue limits."""

    def __init__(self, sim: Simulation, site: "Site", spec: schema.ComputingElement, ids: Iterator[int]) -> None:
        self.sim = sim
        self.site = site
        self.name = spec.name
        self.slots = spec.slots
        self.hs06_per_core = spec.hs06_per_core
        self.processors = spec.processors
        self.memory_mb = spec.memory_mb_per_slot
        self.max_waiting_pilots = spec.max_waiting_pilots
        self.pilot_latency = spec.pilot_latency
        self.pilot_lifetime = spec.pilot_lifetime
        self.pilot_failure_prob = spec.pilot_failure_prob
        self._ids = ids
        self._latency_rng = sim.streams.get(f"pilot.{site.name}.{spec.name}.latency")
        self._abort_rng = sim.streams.get(f"pilot.{site.name}.{spec.name}.abort")
        self._waiting: dict[int, Pilot] = {}
        self._running: dict[int, Pilot] = {}
        self.submitted = self.started = self.done = self.failed = self.aborted = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def running_pilots(self) -> list[Pilot]:
        return list(self._running.values())

    @property
    def queue_cpu_time(self) -> int:
        """The queue's CPUTime in HS06-seconds, as the SiteDirector matches TQs against it
        (QueueUtilities.computeQueueCPULimit: maxCPUTime x SI00/250, maxCPUTime capped at 12.5 d;
        SI00/250 is the HS06 power of a core)."""
        return int(min(self.pilot_lifetime, MAX_QUEUE_CPU_TIME_S) * self.hs06_per_core)

    def available(self) -> int:
        """Pilots the SiteDirector may submit now (DIRAC CE.available() fallback):
        min(slots - (running + waiting), max_waiting_pilots - waiting), at least 0."""
        if not self.site.up:
            return 0
        total = self.running + self.waiting
        return max(0, min(self.slots - total, self.max_waiting_pilots - self.waiting))

    def submit_pilots(self, n: int, on_start: Callable[[Pilot], Any]) -> int:
        """Submit up to `n` pilots (clamped to `available()`); return how many were accepted.

        Each waits an exponential queueing time, then aborts with `pilot_failure_prob`
        or takes a slot and `on_start(pilot)` is called.
        """
        n = min(int(n), self.available())
        env = self.env
        for _ in range(n):
            pilot = Pilot(next(self._ids), self)
            self._waiting[pilot.id] = pilot
            self.submitted += 1
            delay = float(self._latency_rng.exponential(self.pilot_latency)) if self.pilot_latency > 0 else 0.0
            call_after(env, delay, functools.partial(self._leave_queue, pilot, on_start))
        return n

    @property
    def env(self) -> simpy.Environment:
        return self.sim.env

    def _leave_queue(self, pilot: Pilot, on_start: Callable[[Pilot], Any], _alarm: object) -> None:
        """The queueing timer's callback: the pilot takes a slot (or aborts)."""
        if pilot.status != WAITING:
            return  # aborted meanwhile (site down)
        del self._waiting[pilot.id]
        if self._abort_rng.random() < self.pilot_failure_prob:
            self._abort(pilot, "batch system abort")
            return
        now = self.env.now
        pilot.status = RUNNING
        pilot.start = now
        pilot.end_time = now + self.pilot_lifetime
        self._running[pilot.id] = pilot
        self.started += 1
        self._log(pilot, "")
        call_after(self.env, self.pilot_lifetime, pilot)
        on_start(pilot)

    def _abort(self, pilot: Pilot, reason: str) -> None:
        pilot.status = ABORTED
        self.aborted += 1
        self._log(pilot, reason)

    def _end(self, pilot: Pilot, status: str, kill_reason: str | None) -> None:
        """End a running pilot; `kill_reason` set means the batch system ended it."""
        if pilot.status != RUNNING:
            return
        del self._running[pilot.id]
        pilot.status = status
        if status == DONE:
            self.done += 1
        else:
            self.failed += 1
        self._log(pilot, kill_reason or "")
        watcher, pilot.watcher = pilot.watcher, None
        if kill_reason is not None:
            pilot.killed = killed = self.env.event()
            killed.succeed(kill_reason)
            if watcher is not None:
                watcher.race(killed)

    def site_went_down(self) -> tuple[int, int]:
        """Abort waiting pilots and kill running ones; return (aborted, killed)."""
        waiting = list(self._waiting.values())
        self._waiting.clear()
        for pilot in waiting:
            self._abort(pilot, "site down")
        running = list(self._running.values())
        for pilot in running:
            self._end(pilot, FAILED, "site down")
        return len(waiting), len(running)

    def _log(self, pilot: Pilot, detail: str) -> None:
        self.sim.log.log(self.env.now, "pilot.status", f"pilot:{pilot.id}", pilot.status, detail or f"{self.site.name}/{self.name}")

    def __repr__(self) -> str:
        return f"ComputingElement({self.site.name}/{self.name}, running={self.running}/{self.slots}, waiting={self.waiting})"


class Site:
    """A grid site: its CEs, its local SEs, its up/down state and job failure rate."""

    def __init__(self, sim: Simulation, spec: schema.Site, ids: Iterator[int] | None = None) -> None:
        self.sim = sim
        self.name = spec.name
        ids = ids if ids is not None else itertools.count(1)
        self.ces: dict[str, ComputingElement] = {ce.name: ComputingElement(sim, self, ce, ids) for ce in spec.ces}
        self.ses: list[str] = list(spec.ses)
        self.base_job_failure_prob = spec.job_failure_prob
        self.cpu_share = spec.cpu_share
        self._down = ActiveFaults()
        self._spikes = ActiveFaults()

    @property
    def up(self) -> bool:
        return not self._down

    def job_failure_prob(self) -> float:
        """Probability that a job run here fails: the base rate and every active spike,
        combined as independent causes, 1 - (1-p0)(1-p1)..."""
        survive = 1.0 - self.base_job_failure_prob
        for p in self._spikes:
            survive *= 1.0 - p
        return 1.0 - survive

    def running_pilots(self) -> int:
        return sum(ce.running for ce in self.ces.values())

    def waiting_pilots(self) -> int:
        return sum(ce.waiting for ce in self.ces.values())

    def slots(self) -> int:
        return sum(ce.slots for ce in self.ces.values())

    # ------------------------------------------------------------ faults
    def on_site_down(self, params: dict[str, Any], active: bool) -> None:
        """Fault "site_down": running pilots are killed, waiting ones abort, none start."""
        was_up = self.up
        self._down.edge(1, active)
        aborted = killed = 0
        if was_up and not self.up:
            for ce in self.ces.values():
                a, k = ce.site_went_down()
                aborted += a
                killed += k
        detail = f"killed {killed} running, aborted {aborted} waiting pilots" if active else ""
        self.sim.log.log(self.sim.now, "site.status", f"site:{self.name}", "Up" if self.up else "Down", detail, float(killed))

    def on_failure_spike(self, params: dict[str, Any], active: bool) -> None:
        """Fault "failure_spike": adds params["job_failure_prob"] (default 1.0) while active."""
        self._spikes.edge(float(params.get("job_failure_prob", 1.0)), active)
        self.sim.log.log(self.sim.now, "site.failure_prob", f"site:{self.name}", "spike" if active else "normal", "", self.job_failure_prob())

    def __repr__(self) -> str:
        return f"Site({self.name}, up={self.up}, ces={list(self.ces)})"
