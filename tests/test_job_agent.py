"""A pilot's kill reaches the job its JobAgent runs: the record ends at the kill, not at its payload's end.

A running pilot has no kill event until it is killed; the JobAgent's hold registers as the pilot's
`watcher` (twin/dirac/wms/jobagent.py `_wait`) and is given the kill event when the batch system makes
it (twin/grid/site.py `ComputingElement._end`). These tests follow records through a minimal world.
"""

from __future__ import annotations

import math

import pytest
import simpy

from conftest import minimal
from twin.build import build_world
from twin.dirac import footprint as fp
from twin.dirac.wms import job_status as js
from twin.dirac.wms.jobagent import JobAgent
from twin.dirac.wms.stalled import STALLED_PILOT_NOT_RUNNING
from twin.dirac.wms.system import Payload, WorkloadManagement
from twin.grid.site import DONE, FAILED
from twin.scenario.schema import Fault

PILOT_END = fp.PILOT_END[0][0]  # PilotManager.setPilotStatus, charged when a JobAgent stops
PIC = "LCG.PIC.es"
KILL_AT = 1800.0
STALLED_CYCLES_S = 5 * 3600.0  # StalledJobAgent: Stalled after 4500 s of silence, Failed at a later hourly cycle


def _records(monkeypatch: pytest.MonkeyPatch) -> list[JobAgent]:
    """Every JobAgent record started from now on (nothing else keeps them: the events they wait on do), in
    order of start: a record starts by scheduling an event of which it is the callback (`JobAgent.start`).
    Seen at simpy's `schedule`, not by patching `JobAgent.start`, which a compiled WMS calls natively."""
    started: list[JobAgent] = []
    seen: set[int] = set()
    schedule = simpy.Environment.schedule

    def recording(env: simpy.Environment, event: simpy.Event, *args: object) -> None:
        for callback in event.callbacks or ():
            if isinstance(callback, JobAgent) and id(callback) not in seen:
                seen.add(id(callback))
                started.append(callback)
        schedule(env, event, *args)

    monkeypatch.setattr(simpy.Environment, "schedule", recording)
    return started


def _through(world, at: float) -> None:
    """Process every event of instant `at` and nothing later."""
    world.sim.env.run(until=math.nextafter(at, math.inf))


def _job_states(world, job_id: int) -> list[tuple[float, str, str]]:
    rows = world.sim.log.frame({"job.status": None})
    rows = rows[rows.entity == f"job:{job_id}"]
    return list(zip(rows.time, rows.state.astype(str), rows.detail.astype(str)))


def _assert_stalled_then_failed(world, job, after: float) -> None:
    """The StalledJobAgent finalises a job whose pilot died under it at `after`, as before the records:
    Stalled once silent for more than 4500 s (its heartbeat froze with the pilot), Failed at a later cycle."""
    assert job.status == js.FAILED and job.minor_status == STALLED_PILOT_NOT_RUNNING
    tail = [(t, state) for t, state, _ in _job_states(world, job.job_id) if t >= after]
    assert [state for _, state in tail] == [js.STALLED, js.FAILED], tail
    assert job.heartbeat_time <= after and tail[0][0] - job.heartbeat_time > 4500.0 and tail[1][0] > tail[0][0]


def test_a_site_down_ends_the_job_agents_of_its_running_pilots_at_the_kill(monkeypatch):
    records = _records(monkeypatch)
    scenario = minimal(**{"run.duration": "1d"})
    scenario.faults = [Fault(kind="site_down", target=PIC, start=KILL_AT, end=40000)]
    world = build_world(scenario)
    world.sim.env.run(until=KILL_AT)  # the fault's event at KILL_AT is not processed yet
    alive = [r for r in records if r.pilot.site == PIC and r.step is not None]
    held = [r for r in alive if r.step is JobAgent._payload_ended]
    assert len(held) >= 5 and all(r.pilot.watcher is not None for r in held)  # payloads of 4320 s, started < 1800 s
    jobs = [r.job for r in held]
    assert all(job.status == js.RUNNING for job in jobs)
    ended_before = world.services.calls_by_kind[PILOT_END]

    _through(world, KILL_AT)
    ended = [r for r in alive if r.step is None]
    assert set(map(id, held)) <= set(map(id, ended)), "a hold did not end at its pilot's kill"
    assert world.services.calls_by_kind[PILOT_END] - ended_before == len(ended)
    for record in held:
        assert record.pilot.status == FAILED and record.pilot.watcher is None and record.pilot.killed is not None
        assert record.job is None and record.heartbeats is None
    assert all(job.status == js.RUNNING for job in jobs)  # nobody told the JobDB: the job goes silent

    world.sim.env.run(until=KILL_AT + STALLED_CYCLES_S)
    for job in jobs:
        _assert_stalled_then_failed(world, job, KILL_AT)


LIMIT_AFTER = 1000.0  # the first payload's pilot reaches its wall-clock limit this long after the payload starts


@pytest.mark.parametrize("past_limit", [600.0, 0.0])
def test_a_pilot_at_its_wallclock_limit_ends_its_job_agent_then(monkeypatch, past_limit):
    """The batch system ends the pilot while its payload still runs (600 s left), or at the very instant
    the payload ends (0 s). In the tie the pilot's timer is first in the calendar (set before the hold):
    as with the AnyOf([timeout, killed]) wait of the process this record replaced, the job
    resumes once, after the pilot has ended, finds it gone and never completes; the same as the kill."""
    records = _records(monkeypatch)
    limited: list[tuple[object, object, float]] = []
    plan = WorkloadManagement.plan_payload

    def plan_to_the_limit(self, job, pilot, runtime):
        payload = plan(self, job, pilot, runtime)
        if limited:
            return payload
        limit = self.env.now + LIMIT_AFTER
        limited.append((job, pilot, limit))
        pilot.end_time = limit
        self.env.timeout(LIMIT_AFTER).callbacks.append(pilot)  # the batch system's wall-clock timer (Pilot.__call__)
        return Payload(LIMIT_AFTER + past_limit)

    monkeypatch.setattr(WorkloadManagement, "plan_payload", plan_to_the_limit)
    world = build_world(minimal(**{"run.duration": "1d"}))
    env = world.sim.env
    while not limited:
        env.step()
    job, pilot, limit = limited[0]
    (record,) = [r for r in records if r.pilot is pilot]
    env.run(until=limit)
    assert record.step is JobAgent._payload_ended and pilot.watcher is not None and pilot.running
    ended_before = world.services.calls_by_kind[PILOT_END]

    _through(world, limit)
    assert pilot.status == DONE and pilot.watcher is None
    assert record.step is None and record.job is None, "the JobAgent did not end at its pilot's wall-clock limit"
    assert world.services.calls_by_kind[PILOT_END] - ended_before == 1
    assert job.status == js.RUNNING  # never Completing: the pilot was gone when the payload would report

    env.run(until=limit + STALLED_CYCLES_S)
    _assert_stalled_then_failed(world, job, limit)
