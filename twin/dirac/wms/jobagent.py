"""A pilot's JobAgent and the job it runs (JobWrapper), as one record advanced by event callbacks.

DIRAC's JobAgent (WorkloadManagementSystem/Agent/JobAgent.py, execute) matches a job, runs it in a
JobWrapper (download, payload, upload, status reports) and asks for the next one until its slot's
time is short or ten matches have failed. The twin used to run that loop as a simpy process with a
generator per phase (a Process, two or three generator frames and a TimeoutOr per running job: ~3 KB
with the pilot). Here the loop is a state machine: `step` is the next phase (a function of the class),
the record waits on at most one event at a time with itself as the callback, and a job's run is one
calendar entry (the hold's timeout), not a sleeping generator (~1.1 KB with the pilot,
benchmarks/results/memory.md, "Fourth round").

What each phase decides stays in WorkloadManagement (twin/dirac/wms/system.py); this module only
sequences. Service calls take the flow path in place (`ServiceLayer.charge_now`: charged now, one
timeout or none); a call that must queue exactly, a download and an upload run as the generators
they are, driven by a `Trampoline`, so all exact-queueing code is shared with the processes.

Same events, same order: a phase waits on the very events the process waited on (the services'
timeouts, holds as `Hold`s that wake when AnyOf([timeout, kill]) would, the exact path's grants), appended at the same
instants, so simpy processes them in the same order and the seeded draws happen in the same order. The JobAgent starts
on an URGENT event as a process starts on its Initialize event; the process's end event, which
nobody waited on, is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple, Protocol

import simpy
from simpy.events import URGENT

from twin.dirac import footprint as fp
from twin.dirac.transformation import status as st
from twin.dirac.wms import job_status as js
from twin.engine.alarm import call_after
from twin.engine.trampoline import PENDING, Trampoline
from twin.engine.wakeup import Hold

if TYPE_CHECKING:
    from twin.dirac.services import ServiceLayer, Stream
    from twin.dirac.transformation.runtime import TransformationRuntime
    from twin.dirac.wms.jobdb import Job, JobDB
    from twin.grid.site import Pilot

#: Seconds a job spends looking up its model files in the catalog (CTA jobs with a model query).
MODEL_LOOKUP_S = 60.0
#: JobWrapper/StopMargin (s): the tail of the slot kept for the uploads (JobAgent.initialize).
STOP_MARGIN_S = 300.0
#: JobAgent MinimumTimeLeft: below this much CPU work left (HS06-s) a pilot takes no further job.
MINIMUM_CPU_WORK = 5000.0
#: Watchdog JobCPULimitMargin (%): a job is killed once its raw CPU exceeds CPUTime by this much.
JOB_CPU_LIMIT_MARGIN = 20.0

class Payload(NamedTuple):
    """What a job's payload comes to, decided when it starts: the slot is held `seconds`, then the job
    fails with `reason` (burning `cpu_hs06s`, its inputs set to `inputs`), in Completing if `completing`
    (a failed upload), the pilot stopping after it if `stops_pilot` (StopOnApplicationFailure); no
    reason: it goes on to upload its outputs."""

    seconds: float
    reason: str | None = None
    cpu_hs06s: float = 0.0
    inputs: str | None = None
    completing: bool = False
    stops_pilot: bool = False


class JobAgentWMS(Protocol):
    """What a JobAgent record needs from the WMS (`system.WorkloadManagement` provides it): the clock, the
    agent settings, the JobDB, the failure models, the service layer, and the decision of each phase."""

    env: simpy.Environment
    cfg: Any
    jobdb: "JobDB"
    fates: Any
    services: "ServiceLayer"

    def match(self, pilot: "Pilot", work_left: float) -> "Job | None": ...
    def start_job(self, job: "Job") -> "TransformationRuntime": ...
    def model_found(self, runtime: "TransformationRuntime") -> bool: ...
    def plan_payload(self, job: "Job", pilot: "Pilot", runtime: "TransformationRuntime") -> Payload: ...
    def job_succeeded(self, job: "Job", pilot: "Pilot") -> None: ...
    def job_failed(self, job: "Job", reason: str, cpu_hs06s: float, inputs: str | None) -> None: ...
    def download(self, job: "Job", pilot: "Pilot") -> Iterator[Any]: ...
    def upload(self, job: "Job", runtime: "TransformationRuntime", pilot: "Pilot") -> Iterator[Any]: ...


#: A phase: runs at once, returns True once the record waits (a callback will resume it), False to go on with `step`.
Step = Callable[["JobAgent"], bool]


class JobAgent:
    """One pilot's JobAgent and its current job: the phase to run next and what the phases hand on."""

    __slots__ = ("wms", "pilot", "step", "then", "fails", "jobs", "work_left", "job", "runtime", "payload",
                 "heartbeats", "routes", "route_at", "result")

    def __init__(self, wms: JobAgentWMS, pilot: "Pilot") -> None:
        self.wms = wms
        self.pilot = pilot
        self.step: Step | None = JobAgent._next_job
        self.then: Step | None = None  # the phase after the service call in progress
        self.fails = 0  # matches failed in a row
        self.jobs = 0  # jobs matched so far
        self.work_left = 0.0  # CPU work offered to the Matcher (HS06-s)
        self.job: Job | None = None
        self.runtime: TransformationRuntime | None = None
        self.payload: Payload | None = None
        self.heartbeats: Stream | None = None
        self.routes: list[Any] | None = None
        self.route_at = 0
        self.result: Any = None  # what the last driven generator returned (download/upload success)

    def start(self) -> None:
        """Start on an URGENT event, as a simpy process starts (its Initialize event): the pilot's first
        request comes after whatever the current event's other callbacks do."""
        env = self.wms.env
        begin = simpy.Event(env)
        begin._ok = True
        begin._value = None
        begin.callbacks.append(self)
        env.schedule(begin, URGENT)

    def __call__(self, _event: Any = None) -> None:
        """Run phases until one waits: the record is the callback of every event it waits on (no
        bound method per wait)."""
        step = self.step
        while step is not None and not step(self):
            step = self.step

    # ------------------------------------------------------------ waiting
    def _sleep(self, seconds: float, then: Step) -> bool:
        self.step = then
        call_after(self.wms.env, seconds, self)
        return True

    def _hold(self, seconds: float, then: Step) -> bool:
        """Occupy the slot for `seconds` unless the pilot is killed first (a process's AnyOf([timeout, kill]) wait);
        `then` reads `_held()`. The job's run is this one timeout in the calendar."""
        if seconds > 0:
            return self._wait(seconds, then)
        self.step = then
        return False

    def _wait(self, seconds: float, then: Step) -> bool:
        """`seconds`, or less if the pilot is killed meanwhile (the JobAgent's polling waits too)."""
        self.step = then
        pilot = self.pilot
        hold = Hold(self.wms.env, seconds, pilot.killed, self)
        if pilot.killed is None and pilot.running:  # not killed yet: the kill, if it comes, joins the race
            pilot.watcher = hold
        return True

    def _held(self) -> bool:
        """After a hold: the pilot still runs and nobody killed or stalled the job (the wrapper goes on)."""
        job = self.job
        assert job is not None  # a hold is always a job's
        return self.pilot.running and job.status in (js.RUNNING, js.COMPLETING)

    def _drive(self, generator: Any, then: Step, returns: bool) -> bool:
        """Run a phase written as a generator; its value goes to `result` if `returns`."""
        self.step = then
        value = Trampoline(generator, self._returned if returns else self).start()
        if value is PENDING:
            return True
        if returns:
            self.result = value
        return False

    def _returned(self, value: Any) -> None:
        self.result = value
        self()

    def _call(self, routes: list[Any], then: Step) -> bool:
        """Pay service routes in turn (ServiceLayer.rpc_routes/pay_routes), then go on with `then`."""
        if not routes:
            self.step = then
            return False
        self.then = then
        self.routes = routes
        self.route_at = 0
        self.step = JobAgent._paying
        return False

    def _paying(self) -> bool:
        """The next route of the call in progress: flow (charged now, one timeout or none) or exact (driven)."""
        routes = self.routes
        assert routes is not None  # set by `_call`
        services = self.wms.services
        at = self.route_at
        while at < len(routes):
            cost = services.charge_now(routes[at])
            at += 1
            self.route_at = at
            if isinstance(cost, float):
                if cost > 0.0:
                    return self._sleep(cost, JobAgent._paying)
            else:
                return self._drive(cost, JobAgent._paying, returns=False)
        self.routes = None
        self.step = self.then
        return False

    def _rpc(self, kinds: tuple[tuple[str, int], ...], then: Step) -> bool:
        return self._call(self.wms.services.rpc_routes(kinds), then)

    # ------------------------------------------------------------ JobAgent.execute
    def _next_job(self) -> bool:
        """Ask for a job while the slot has CPU work left (after the first job: more than MinimumTimeLeft)."""
        pilot = self.pilot
        if not pilot.running:
            return self._stop()
        self.work_left = cpu_work_left(pilot, self.wms.env._now)
        if self.jobs and self.work_left <= MINIMUM_CPU_WORK:
            return self._stop()  # _checkCPUWorkLeft: "No more time left"
        return self._rpc(fp.MATCH_ATTEMPT, JobAgent._matched)

    def _matched(self) -> bool:
        """The Matcher's answer: a job to run, or a wait before asking again (ten failures: the pilot stops)."""
        wms, pilot = self.wms, self.pilot
        if not pilot.running:
            return self._stop()
        job = wms.match(pilot, self.work_left)
        self.work_left = 0.0  # offered: no float kept per running job
        if job is None:
            self.fails += 1
            if self.fails > wms.cfg.stop_after_failed_matches:  # JobAgent: matchFailedCount > StopAfterFailedMatches
                return self._stop()
            return self._wait(wms.cfg.job_agent_polling * (self.fails + 1) * 2, JobAgent._next_job)
        self.fails = 0
        self.jobs += 1
        self.job = job
        job.pilot = pilot
        services = wms.services
        services.charge_async(fp.MATCHED)
        self.heartbeats = services.start_stream(fp.HEARTBEAT, wms.cfg.heartbeat_interval)
        self.runtime = wms.start_job(job)
        return self._rpc(fp.JOB_START, JobAgent._look_up_model)

    def _job_over(self) -> bool:
        """The wrapper has ended, whichever way: heartbeats stop, the agent asks for the next job."""
        self.wms.services.stop_stream(self.heartbeats)
        self.heartbeats = self.job = self.runtime = self.payload = self.result = None
        self.step = JobAgent._next_job
        return False

    def _stop(self) -> bool:
        self.wms.services.charge_async(fp.PILOT_END)
        self.pilot.finish()
        self.step = None
        return True

    # ------------------------------------------------------------ JobWrapper
    def _look_up_model(self) -> bool:
        runtime = self.runtime
        assert runtime is not None  # the phases from here to `_job_over` run a matched job
        if not runtime.step.job.model_query:
            return self._download()
        return self._hold(MODEL_LOOKUP_S, JobAgent._model_looked_up)

    def _model_looked_up(self) -> bool:
        if not self._held():
            return self._job_over()
        runtime = self.runtime
        assert runtime is not None
        self.result = self.wms.model_found(runtime)
        return self._call(self.wms.services.pay_routes("FileCatalog"), JobAgent._model_paid)

    def _model_paid(self) -> bool:
        if not self.result:
            job = self.job
            assert job is not None
            return self._fail("Model not found", _cpu(job, self.pilot, MODEL_LOOKUP_S), None)
        return self._download()

    def _download(self) -> bool:
        job = self.job
        assert job is not None
        if not job.input_data:
            self.result = True
            self.step = JobAgent._run_payload
            return False
        return self._drive(self.wms.download(job, self.pilot), JobAgent._run_payload, returns=True)

    def _run_payload(self) -> bool:
        if not self.result:
            if self.pilot.running:
                return self._fail("Input Data Download Failed", 0.0, None)
            return self._job_over()
        job, runtime = self.job, self.runtime
        assert job is not None and runtime is not None
        self.payload = payload = self.wms.plan_payload(job, self.pilot, runtime)
        return self._hold(payload.seconds, JobAgent._payload_ended)

    def _payload_ended(self) -> bool:
        if not self._held():
            return self._job_over()
        job, runtime, payload = self.job, self.runtime, self.payload
        assert job is not None and runtime is not None and payload is not None
        if payload.reason is not None and not payload.completing:
            return self._fail_payload()
        self.wms.jobdb.set_status(job, js.COMPLETING, "Uploading Output Data", self.wms.env._now, source="JobWrapper")
        if payload.reason is not None:
            return self._fail_payload()
        return self._drive(self.wms.upload(job, runtime, self.pilot), JobAgent._uploaded, returns=True)

    def _uploaded(self) -> bool:
        job, pilot = self.job, self.pilot
        assert job is not None
        if not pilot.running or job.status != js.COMPLETING:
            return self._job_over()
        if not self.result:
            return self._fail("Failed to upload output data", job.cpu_work, st.PROBLEMATIC)
        self.wms.job_succeeded(job, pilot)
        return self._rpc(fp.JOB_END, JobAgent._job_over)

    def _fail(self, reason: str, cpu_hs06s: float, inputs: str | None, then: Step | None = None) -> bool:
        """A failure the job sees itself: recorded now, reported by the JOB_END calls."""
        job = self.job
        assert job is not None
        self.wms.job_failed(job, reason, cpu_hs06s, inputs)
        return self._rpc(fp.JOB_END, then or JobAgent._job_over)

    def _fail_payload(self) -> bool:
        payload = self.payload
        assert payload is not None and payload.reason is not None  # a payload that failed
        return self._fail(payload.reason, payload.cpu_hs06s, payload.inputs,
                          JobAgent._stop_after_failure if payload.stops_pilot else None)

    def _stop_after_failure(self) -> bool:
        """JobAgent StopOnApplicationFailure, once the failure is reported."""
        self.wms.fates.after_failure(self.pilot)
        return self._job_over()


def cpu_work_left(pilot: "Pilot", now: float, stop_margin: float = STOP_MARGIN_S) -> float:
    """The CPUTime a pilot offers the Matcher, in HS06-seconds, as DIRAC's JobAgent computes it.

    The pilot seeds /LocalSite/CPUTimeLeft with the queue's time left x CPUNormalizationFactor
    (CPUNormalization.getCPUTime); JobAgent.initialize takes the JobWrapper StopMargin off and
    _computeCPUWorkLeft counts down wall-clock x CPU power. The job's CPUTime (JDL) is in the same
    normalised units, so a 10 HS06 core in a 48 h queue offers ~1.7 M HS06-s, not 172800.
    """
    return max(0.0, pilot.time_left(now) - stop_margin) * pilot.hs06


def watchdog_cpu_kill_after(job: "Job", pilot: "Pilot", margin_pct: float = JOB_CPU_LIMIT_MARGIN) -> float:
    """Wall seconds after which the Watchdog kills the job (Watchdog.__checkCPULimit).

    The Watchdog compares the payload's *raw* CPU seconds (not normalised: __convertCPUTime is an
    identity) with CPUTime x (1 + JobCPULimitMargin/100); an N-core payload burns N CPU-seconds per
    wall second. (DIRAC samples every check interval; the twin kills at the crossing.)
    """
    cores = max(1, min(job.processors, pilot.processors))
    return job.cpu_time * (1.0 + margin_pct / 100.0) / cores


def _cpu(job: "Job", pilot: "Pilot", seconds: float) -> float:
    """HS06-seconds a job burns in `seconds`: an N-processor job uses N cores of its (multi-core) pilot."""
    return seconds * pilot.hs06 * max(1, min(job.processors, pilot.processors))
