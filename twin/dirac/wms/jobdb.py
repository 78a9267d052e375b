"""The JobDB: one compact record per job, status changes through the state machine, O(1) counters.

Mirrors ``DIRAC/WorkloadManagementSystem/DB/JobDB.py`` (9.1.22) for what the twin needs: attributes,
``setJobStatus``/``setJobAttributes`` (state machine, LastUpdateTime), ``setStartExecTime``,
heartbeats, ``rescheduleJob`` and ``getCounters`` by Status and by (Site, Status). A twin holds
up to 10^6 jobs, so a job is a ``__slots__`` record (about 350 bytes, see the tests), site sets
are interned, and every status keeps an index of its jobs so an agent asking for "all Stalled
jobs" pays for the answer, not for the table. Time is the caller's ``now`` (seconds).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Collection, Iterable
from typing import Any

import numpy as np

from twin.dirac.wms.job_status import (
    DONE,
    FAILED,
    JOB_FINAL_STATES,
    JOB_STATES,
    KILLED,
    MATCHED,
    RECEIVED,
    RUNNING,
    STALLED,
    next_state,
)

#: Statuses counted against a site's RunningLimit (Limiter._countsByJobType).
ACTIVE_STATES: frozenset[str] = frozenset({RUNNING, MATCHED, STALLED})
JOB_ACCEPTED = "Job accepted"
JOB_RESCHEDULED = "Job Rescheduled"
MAX_RESCHEDULING_REACHED = "Maximum of reschedulings reached"
DEFAULT_CPU_TIME = 86400  # JobManifest default CPUTime (s)
#: Final statuses a job leaves only by force (Failed -> rescheduled): retired jobs are in one of these.
#: (Completed is final too but moves on to Done/Failed, so Completed jobs stay records.)
RETIRED_STATES: tuple[str, ...] = (DONE, FAILED, KILLED)

StatusCallback = Callable[["Job", str, str, float], None]


class Job:
    """One row of the Jobs table (plus the few JDL fields scheduling needs).

    ``tq_id`` is owned by the TaskQueueDB (the TQ holding the job, None when not queued);
    ``pilot`` is free for the simulation (the Pilot_Reference job parameter).
    """

    __slots__ = (
        "job_id",
        "status",
        "minor_status",
        "application_status",
        "site",
        "job_type",
        "job_group",
        "task_name",
        "owner_group",
        "priority",
        "input_data",
        "sites",
        "banned_sites",
        "cpu_work",
        "cpu_time",
        "memory_mb",
        "processors",
        "reschedule_counter",
        "reschedule_time",
        "heartbeat_time",
        "last_update_time",
        "submission_time",
        "start_time",
        "end_time",
        "tq_id",
        "pilot",
    )

    def __init__(
        self,
        job_id: int,
        *,
        job_type: str,
        now: float,
        status: str = RECEIVED,
        minor_status: str = JOB_ACCEPTED,
        owner_group: str = "",
        job_group: int | str = 0,
        task_name: str = "",
        priority: int = 1,
        input_data: tuple[str, ...] = (),
        sites: frozenset[str] = frozenset(),
        banned_sites: frozenset[str] = frozenset(),
        cpu_work: float = 0.0,
        cpu_time: int = DEFAULT_CPU_TIME,
        memory_mb: int = 0,
        processors: int = 1,
    ) -> None:
        self.job_id = job_id
        self.status = status
        self.minor_status = minor_status
        self.application_status = "Unknown"
        self.site = site_label(sites)
        self.job_type = job_type
        self.job_group = job_group
        self.task_name = task_name
        self.owner_group = owner_group
        self.priority = priority
        self.input_data = input_data
        self.sites = sites
        self.banned_sites = banned_sites
        self.cpu_work = cpu_work
        self.cpu_time = cpu_time
        self.memory_mb = memory_mb
        self.processors = processors
        self.reschedule_counter = 0
        self.reschedule_time: float | None = None
        self.heartbeat_time: float | None = None
        self.last_update_time = now
        self.submission_time = now
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.tq_id: int | None = None
        self.pilot: Any = None

    def __repr__(self) -> str:
        return f"Job({self.job_id}, {self.status!r}, {self.minor_status!r}, site={self.site!r})"


def site_label(sites: Collection[str]) -> str:
    """The Site attribute for a list of requested sites: "ANY", the site, or "Multiple" (JobDB)."""
    if not sites:
        return "ANY"
    if len(sites) > 1:
        return "Multiple"
    return next(iter(sites))


class JobDB:
    """All jobs of a run, indexed by ID and by status, with DIRAC's counters kept up to date."""

    def __init__(
        self,
        on_status: StatusCallback | None = None,
        max_rescheduling: int = 3,
        first_job_id: int = 1,
        retain_final: bool = True,
    ) -> None:
        """``retain_final=False``: a job reaching Done/Failed/Killed leaves ``jobs`` (memory bounded by
        the jobs in flight); it stays in every counter, and in compact columns (``finished()``)."""
        self.on_status = on_status
        self.max_rescheduling = max_rescheduling
        self.retain_final = retain_final
        self.jobs: dict[int, Job] = {}
        self._retired: dict[str, int] = {state: 0 for state in RETIRED_STATES}
        self._retired_total = 0  # sum of _retired: len() is on the service layer's hot path
        self._finished = _FinishedColumns()
        self._next_id = first_job_id
        self._by_status: dict[str, dict[int, Job]] = {state: {} for state in JOB_STATES}
        self._site_counts: dict[tuple[str, str], int] = {}
        self._active: dict[str, dict[str, int]] = {}
        self._interned: dict[frozenset[str], frozenset[str]] = {}

    # ------------------------------------------------------------------ insertion / removal
    def submit(
        self,
        now: float,
        *,
        job_type: str,
        input_data: Iterable[str] = (),
        sites: Iterable[str] = (),
        banned_sites: Iterable[str] = (),
        **attributes: Any,
    ) -> Job:
        """Insert a job (insertNewJobIntoDB): Received/"Job accepted", or Submitting for bulk jobs.

        ``attributes`` are the other keyword arguments of ``Job`` (owner_group, job_group,
        task_name, priority, cpu_work, cpu_time, memory_mb, processors, status, minor_status).
        """
        job = Job(
            self._next_id,
            job_type=job_type,
            now=now,
            input_data=tuple(input_data),
            sites=self.intern_sites(sites),
            banned_sites=self.intern_sites(banned_sites),
            **attributes,
        )
        self._next_id += 1
        self.jobs[job.job_id] = job
        self._by_status[job.status][job.job_id] = job
        self._count_site(job.site, job.status, job.job_type, +1)
        return job

    def remove(self, job: Job) -> None:
        """Drop a job from the DB (JobCleaningAgent removing old Done/Failed/Killed jobs)."""
        if self.jobs.pop(job.job_id, None) is None:
            return
        del self._by_status[job.status][job.job_id]
        self._count_site(job.site, job.status, job.job_type, -1)

    def intern_sites(self, sites: Iterable[str]) -> frozenset[str]:
        """One shared frozenset per distinct site list, so a million jobs do not hold a million copies."""
        key = frozenset(sites)
        return self._interned.setdefault(key, key)

    # ------------------------------------------------------------------ look-ups and counters
    def get(self, job_id: int) -> Job | None:
        """The job's record (None once it is retired: final, with ``retain_final=False``)."""
        return self.jobs.get(job_id)

    def __len__(self) -> int:
        return len(self.jobs) + self._retired_total

    def jobs_in(self, status: str) -> Collection[Job]:
        """Live view of the jobs now in ``status``, in the order they entered it (retired jobs excepted)."""
        return self._by_status[status].values()

    def count(self, status: str) -> int:
        return len(self._by_status[status]) + self._retired.get(status, 0)

    def counters(self) -> dict[str, int]:
        """getCounters("Jobs", ["Status"]): non-zero counts by status."""
        return {status: n for status in self._by_status if (n := self.count(status))}

    def finished(self) -> dict[str, np.ndarray]:
        """The retired jobs as columns (job_id, status, job_group, task_id, cpu_work, start_time, end_time), one row per job
        in its last final status; empty with ``retain_final=True`` (the records are in ``jobs``)."""
        return self._finished.columns(self.jobs)

    def count_at(self, site: str, status: str) -> int:
        return self._site_counts.get((site, status), 0)

    def site_counters(self) -> dict[tuple[str, str], int]:
        """getCounters("Jobs", ["Site", "Status"]): non-zero counts by (site, status)."""
        return {key: n for key, n in self._site_counts.items() if n}

    def running_by_job_type(self, site: str) -> dict[str, int]:
        """Jobs Running, Matched or Stalled at ``site`` by JobType: what the Limiter compares to RunningLimit."""
        return dict(self._active.get(site, {}))

    # ------------------------------------------------------------------ updates
    def set_status(
        self,
        job: Job,
        status: str | None,
        minor: str | None,
        now: float,
        source: str = "",
        force: bool = False,
        application: str | None = None,
        site: str | None = None,
    ) -> bool:
        """setJobAttributes(Status, MinorStatus, ...; update=True); returns whether the status was accepted.

        A status the state machine refuses leaves the job where it is, but the minor and
        application statuses are still written, as in DIRAC. LastUpdateTime is always refreshed.
        ``source`` only documents the caller (DIRAC logs it, tagged "(SM)" on refusal).
        """
        old = job.status
        new, accepted = (old, True) if status is None else next_state(old, status, force)
        if minor is not None:
            job.minor_status = minor
        if application is not None:
            job.application_status = application
        job.last_update_time = now
        if site is not None and site != job.site:
            self._count_site(job.site, old, job.job_type, -1)
            job.site = site
            self._count_site(site, old, job.job_type, +1)
        if new != old:
            self._move(job, old, new, now)
        return accepted

    def heartbeat(self, job: Job, now: float) -> None:
        """sendHeartBeat: refresh HeartBeatTime; a Stalled or Matched job is set back to Running."""
        job.heartbeat_time = now
        if job.status in (STALLED, MATCHED):
            self.set_status(job, RUNNING, None, now, source="Heartbeat")

    def reschedule(self, job: Job, now: float, max_rescheduling: int | None = None) -> bool:
        """JobDB.rescheduleJob: back to Received/"Job Rescheduled", or Failed past MaxRescheduling.

        Returns False when the limit is reached (the job is then set Failed through the state
        machine, and its counter is left as it was). The caller also takes the job out of the
        TaskQueueDB, as ``rescheduleJobs`` does.
        """
        limit = self.max_rescheduling if max_rescheduling is None else max_rescheduling
        counter = job.reschedule_counter + 1
        if counter > limit:
            self.set_status(job, FAILED, MAX_RESCHEDULING_REACHED, now, source="JobDB")
            return False
        job.reschedule_counter = counter
        job.reschedule_time = now
        self.set_status(
            job,
            RECEIVED,
            JOB_RESCHEDULED,
            now,
            source="JobDB",
            force=True,
            application="Unknown",
            site=site_label(job.sites),
        )
        return True

    # ------------------------------------------------------------------ internals
    def _move(self, job: Job, old: str, new: str, now: float) -> None:
        if self._by_status[old].pop(job.job_id, None) is None:  # a retired job forced back (Failed -> rescheduled)
            self._retired[old] -= 1
            self._retired_total -= 1
            self.jobs[job.job_id] = job
        self._by_status[new][job.job_id] = job
        self._count_site(job.site, old, job.job_type, -1)
        self._count_site(job.site, new, job.job_type, +1)
        job.status = new
        if new == RUNNING:
            # setStartExecTime: StartExecTime and HeartBeatTime, only if not set yet
            if job.start_time is None:
                job.start_time = now
            if job.heartbeat_time is None:
                job.heartbeat_time = now
        elif new in JOB_FINAL_STATES and job.end_time is None:
            job.end_time = now
        if self.on_status is not None:
            self.on_status(job, old, new, now)
        if not self.retain_final and new in self._retired and job.status == new:
            self._retire(job)

    def _retire(self, job: Job) -> None:
        """Final: the record leaves memory; counters and the compact columns keep what summaries need."""
        del self._by_status[job.status][job.job_id]
        del self.jobs[job.job_id]
        self._retired[job.status] += 1
        self._retired_total += 1
        self._finished.add(job)

    def _count_site(self, site: str, status: str, job_type: str, delta: int) -> None:
        key = (site, status)
        self._site_counts[key] = self._site_counts.get(key, 0) + delta
        if status in ACTIVE_STATES:
            by_type = self._active.setdefault(site, {})
            by_type[job_type] = by_type.get(job_type, 0) + delta


class _FinishedColumns:
    """Append-only columns of retired jobs: 41 bytes per job instead of a ~1 KB record.

    ``job_group`` is the JobGroup when it is an integer (the TransformationID), else -1;
    ``task_id`` the TaskID of a "%08d_%08d" task name (WorkflowTasks), else -1."""

    __slots__ = ("job_id", "status", "job_group", "task_id", "cpu_work", "start_time", "end_time")

    def __init__(self) -> None:
        self.job_id = array("q")
        self.status = array("b")
        self.job_group = array("i")
        self.task_id = array("i")
        self.cpu_work = array("d")
        self.start_time = array("d")
        self.end_time = array("d")

    def add(self, job: Job) -> None:
        self.job_id.append(job.job_id)
        self.status.append(RETIRED_STATES.index(job.status))
        group, name = job.job_group, job.task_name
        self.job_group.append(group if isinstance(group, int) else int(group) if str(group).isdigit() else -1)
        self.task_id.append(int(name[9:]) if len(name) == 17 and name[8] == "_" and name[9:].isdigit() else -1)
        self.cpu_work.append(job.cpu_work)
        self.start_time.append(job.start_time if job.start_time is not None else np.nan)
        self.end_time.append(job.end_time if job.end_time is not None else np.nan)

    def nbytes(self) -> int:
        return sum(getattr(self, name).itemsize * len(getattr(self, name)) for name in self.__slots__)

    def columns(self, live: dict[int, Job]) -> dict[str, np.ndarray]:
        """Last row per job, minus jobs revived since (back in ``live``), in retirement order."""
        ids = np.array(self.job_id, dtype=np.int64)
        last = len(ids) - 1 - np.unique(ids[::-1], return_index=True)[1]
        keep = np.sort(last[~np.isin(ids[last], np.fromiter(live, np.int64, len(live)))])
        status = np.array(RETIRED_STATES, dtype=object)[np.array(self.status, dtype=np.int8)]
        return {"job_id": ids[keep], "status": status[keep], "job_group": np.array(self.job_group, dtype=np.int64)[keep],
                "task_id": np.array(self.task_id, dtype=np.int64)[keep], "cpu_work": np.array(self.cpu_work)[keep],
                "start_time": np.array(self.start_time)[keep], "end_time": np.array(self.end_time)[keep]}
