"""StalledJobAgent (DIRAC 9.1.22 ``Agent/StalledJobAgent.py``) as pure checks plus an apply step.

One agent cycle: (1) Running/Completing jobs silent for more than stalledTime -> Stalled;
(2) Stalled jobs -> Failed, at once when their pilot is no longer Running ("Job stalled: pilot
not running"), otherwise after failedTime without a sign of life ("Stalling for more than N sec");
jobs at StalledJobsToRescheduleSites go to Rescheduled instead; (4) Submitting jobs older than
SubmittingTime -> Failed; (5) Matched jobs older than MatchedTime and Rescheduled jobs older than
RescheduledTime are rescheduled. All checks read one snapshot, taken before anything is applied,
so a job marked Stalled in a cycle is failed in a later one. Only the per-status job indexes are
walked, in JobID order as the agent sorts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from twin.dirac.wms.job_status import COMPLETING, FAILED, MATCHED, RESCHEDULED, RUNNING, STALLED, SUBMITTING
from twin.dirac.wms.jobdb import Job, JobDB
from twin.dirac.wms.taskqueue import TaskQueueDB

STALLED_PILOT_NOT_RUNNING = "Job stalled: pilot not running"

#: Actions of a cycle.
MARK_STALLED = "MarkStalled"
FAIL = "Fail"
SET_RESCHEDULED = "SetRescheduled"
RESCHEDULE = "Reschedule"


@dataclass(frozen=True, slots=True)
class StalledConfig:
    """Agent options in seconds; ``from_options`` converts DIRAC's watchdog-cycle "hours"."""

    stalled_time: float = 4500.0
    failed_time: float = 11700.0
    matched_time: float = 7200.0
    rescheduled_time: float = 600.0
    submitting_time: float = 300.0
    tolerant_sites: frozenset[str] = frozenset()
    tolerance_time: float = 0.0
    reschedule_sites: frozenset[str] = frozenset()

    @classmethod
    def from_options(
        cls,
        stalled_time_hours: float = 2,
        failed_time_hours: float = 6,
        checking_time: float = 1800,
        min_checking_time: float = 1200,
        **options: object,
    ) -> StalledConfig:
        """The agent's ``initialize``: each "hour" is one watchdog cycle, plus half a cycle of margin."""
        cycle = max(checking_time, min_checking_time)
        return cls(
            stalled_time=int(cycle * (stalled_time_hours + 0.5)),
            failed_time=int(cycle * (failed_time_hours + 0.5)),
            **options,  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True)
class StalledAction:
    """What the agent does to ``job``, valid while the job is still in ``from_status``."""

    job: Job
    action: str
    from_status: str
    minor: str | None = None


def latest_update(job: Job) -> float:
    """_getLatestUpdateTime: the later of HeartBeatTime and LastUpdateTime."""
    if job.heartbeat_time is None:
        return job.last_update_time
    return max(job.heartbeat_time, job.last_update_time)


def stalled_job_actions(
    jobdb: JobDB,
    now: float,
    config: StalledConfig = StalledConfig(),
    pilot_running: Callable[[Job], bool] | None = None,
) -> list[StalledAction]:
    """The actions of one agent cycle at ``now``, in the agent's order; nothing is changed.

    ``pilot_running(job)`` tells whether the job's pilot is still Running in the PilotAgentsDB;
    without it every pilot is taken as Running, so Stalled jobs fail only after failedTime.
    """
    actions = [StalledAction(job, MARK_STALLED, job.status) for job in _newly_stalled(jobdb, now, config)]
    for job in _by_id(jobdb.jobs_in(STALLED)):
        minor = _stalled_failure(job, now, config, pilot_running)
        if minor is not None:
            action = SET_RESCHEDULED if job.site in config.reschedule_sites else FAIL
            actions.append(StalledAction(job, action, STALLED, minor))
    actions += [
        StalledAction(job, FAIL, SUBMITTING)
        for job in _older(jobdb.jobs_in(SUBMITTING), now - config.submitting_time)
    ]
    for status, stuck_time in ((MATCHED, config.matched_time), (RESCHEDULED, config.rescheduled_time)):
        actions += [StalledAction(job, RESCHEDULE, status) for job in _older(jobdb.jobs_in(status), now - stuck_time)]
    return actions


def apply_stalled_actions(
    jobdb: JobDB,
    actions: Iterable[StalledAction],
    now: float,
    tqdb: TaskQueueDB | None = None,
) -> None:
    """Carry out the actions whose job has not moved on since they were decided."""
    for act in actions:
        job = act.job
        if job.status != act.from_status:
            continue
        if act.action == MARK_STALLED:
            jobdb.set_status(job, STALLED, None, now, source="StalledJobAgent")
        elif act.action == FAIL:
            jobdb.set_status(job, FAILED, act.minor, now, source="StalledJobAgent", force=True)
            if tqdb is not None:
                tqdb.remove(job)
        elif act.action == SET_RESCHEDULED:
            jobdb.set_status(job, RESCHEDULED, act.minor, now, source="StalledJobAgent", force=True)
        elif act.action == RESCHEDULE:
            reschedule_job(jobdb, job, now, tqdb)
        else:
            raise ValueError(f"unknown StalledJobAgent action {act.action!r}")


def run_stalled_job_agent(
    jobdb: JobDB,
    now: float,
    config: StalledConfig = StalledConfig(),
    pilot_running: Callable[[Job], bool] | None = None,
    tqdb: TaskQueueDB | None = None,
) -> list[StalledAction]:
    """One agent cycle: decide, then apply. Returns the actions taken."""
    actions = stalled_job_actions(jobdb, now, config, pilot_running)
    apply_stalled_actions(jobdb, actions, now, tqdb)
    return actions


def reschedule_job(jobdb: JobDB, job: Job, now: float, tqdb: TaskQueueDB | None = None) -> bool:
    """Utils.rescheduleJobs for one job: JobDB.rescheduleJob, then out of the TQ if that succeeded."""
    ok = jobdb.reschedule(job, now)
    if ok and tqdb is not None:
        tqdb.remove(job)
    return ok


def _newly_stalled(jobdb: JobDB, now: float, config: StalledConfig) -> list[Job]:
    """Running/Completing jobs whose heartbeat is older than stalledTime and that were silent that long."""
    check_time = now - config.stalled_time
    jobs = [
        job
        for status in (RUNNING, COMPLETING)
        for job in jobdb.jobs_in(status)
        if job.heartbeat_time is not None and job.heartbeat_time < check_time
    ]
    stalled = []
    for job in _by_id(jobs):
        delay = config.stalled_time
        if job.site in config.tolerant_sites:
            delay += config.tolerance_time
        if now - latest_update(job) > delay:
            stalled.append(job)
    return stalled


def _stalled_failure(
    job: Job,
    now: float,
    config: StalledConfig,
    pilot_running: Callable[[Job], bool] | None,
) -> str | None:
    """The MinorStatus to fail a Stalled job with, or None to leave it Stalled."""
    if pilot_running is not None and not pilot_running(job):
        return STALLED_PILOT_NOT_RUNNING
    if now - latest_update(job) > config.failed_time:
        return f"Stalling for more than {int(config.failed_time)} sec"
    return None


def _older(jobs: Iterable[Job], check_time: float) -> list[Job]:
    """selectJobs(older=check_time): LastUpdateTime before check_time, by JobID."""
    return _by_id(job for job in jobs if job.last_update_time < check_time)


def _by_id(jobs: Iterable[Job]) -> list[Job]:
    return sorted(jobs, key=lambda job: job.job_id)
