"""The JobDB: one compact record per job, status changes through the state machine, O(1) counters.

Mirrors ``DIRAC/WorkloadManagementSystem/DB/JobDB.py`` (9.1.22) for what the twin needs: attributes,
``setJobStatus``/``setJobAttributes`` (state machine, LastUpdateTime), ``setStartExecTime``,
heartbeats, ``rescheduleJob`` and ``getCounters`` by Status and by (Site, Status). A twin holds
up to 10^6 jobs, so a job is a ``__slots__`` record (24 slots, about 230 bytes; its task is the
integer TaskID, the "%08d_%08d" name is derived), site sets are interned, and each status that agents
list (``LISTED_STATES``) keeps an index of its jobs so an agent asking for "all Stalled jobs" pays for
the answer, not for the table; the other statuses (Waiting, the final ones, ...) are only counted.
Time is the caller's ``now`` (seconds).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final

import numpy as np

from twin.dirac.wms.job_status import (
    COMPLETING,
    DONE,
    FAILED,
    JOB_FINAL_STATES,
    JOB_STATES,
    KILLED,
    MATCHED,
    RECEIVED,
    RESCHEDULED,
    RUNNING,
    STALLED,
    SUBMITTING,
    next_state,
)

#: Statuses whose live jobs are kept in entry order, because agents list them (StalledJobAgent: Submitting,
#: Matched, Running, Completing, Stalled, Rescheduled; the invariants: the pilot-bound ones). The others
#: (Received, Checking, Waiting, the final ones, ...) are only counted: a waiting job is one dict entry
#: (``jobs``), and half of a job's status changes touch no index.
LISTED_STATES: Final[frozenset[str]] = frozenset({SUBMITTING, MATCHED, RUNNING, COMPLETING, STALLED, RESCHEDULED})
#: Statuses counted against a site's RunningLimit (Limiter._countsByJobType).
ACTIVE_STATES: Final[frozenset[str]] = frozenset({RUNNING, MATCHED, STALLED})
JOB_ACCEPTED: Final = "Job accepted"
JOB_RESCHEDULED: Final = "Job Rescheduled"
MAX_RESCHEDULING_REACHED: Final = "Maximum of reschedulings reached"
DEFAULT_CPU_TIME: Final = 86400  # JobManifest default CPUTime (s)
#: Final statuses a job leaves only by force (Failed -> rescheduled): retired jobs are in one of these.
#: (Completed is final too but moves on to Done/Failed, so Completed jobs stay records.)
RETIRED_STATES: Final[tuple[str, ...]] = (DONE, FAILED, KILLED)
_RETIRED_CODE: Final[dict[str, int]] = {state: code for code, state in enumerate(RETIRED_STATES)}
_DONE_CODE: Final = _RETIRED_CODE[DONE]

StatusCallback = Callable[["Job", str, str, float], None]
_NO_SITES: Final[frozenset[str]] = frozenset()
#: next_state's answers by force, current and proposed status: a handful of keys, asked six times per job.
_TRANSITIONS: Final[dict[bool, dict[str, dict[str, tuple[str, bool]]]]] = {False: {}, True: {}}


class Job:
    """One row of the Jobs table (plus the few JDL fields scheduling needs).

    ``tq_id`` is owned by the TaskQueueDB (the TQ holding the job, None when not queued);
    ``pilot`` is free for the simulation (the Pilot_Reference job parameter). The job's name
    (WorkflowTasks' "%08d_%08d" of JobGroup and TaskID) is kept as the integer ``task_id`` (-1: no
    task) and rebuilt on demand by ``task_name``; ApplicationStatus and SubmissionTime are not kept
    (nothing in the twin reads them).
    """

    __slots__ = (
        "job_id",
        "status",
        "minor_status",
        "site",
        "job_type",
        "job_group",
        "task_id",
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
        task_id: int | None = None,
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
        self.site = site_label(sites)
        self.job_type = job_type
        self.job_group = job_group
        self.task_id = task_id if task_id is not None else _task_id_of(task_name, job_group)
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
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.tq_id: int | None = None
        self.pilot: Any = None

    @property
    def task_name(self) -> str:
        """The job's name as WorkflowTasks wrote it ("%08d_%08d" % (JobGroup, TaskID)); "" for no task."""
        return f"{int(self.job_group):08d}_{self.task_id:08d}" if self.task_id >= 0 else ""

    def __repr__(self) -> str:
        return f"Job({self.job_id}, {self.status!r}, {self.minor_status!r}, site={self.site!r})"


def _task_id_of(name: str, job_group: int | str) -> int:
    """The TaskID in a WorkflowTasks job name "%08d_%08d" of (JobGroup, TaskID); -1 for no name."""
    if not name:
        return -1
    head, sep, task = name.partition("_")
    if sep and len(head) == 8 and len(task) >= 8 and head.isdigit() and task.isdigit() and str(job_group).isdigit() \
            and int(head) == int(job_group):
        return int(task)
    raise ValueError(f"job name {name!r} is not \"%08d_%08d\" of its JobGroup {job_group!r} and a TaskID")


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
        #: rows of the Jobs table (live + retired): what a JobDB query's cost grows with, read by the service
        #: layer on every JobDB charge (an attribute, not a len() call); ``len(self)``
        self.rows = 0
        self._finished = _FinishedColumns(first_job_id)
        self._next_id = first_job_id
        #: the live jobs of each status agents list (entry order), and how many live jobs each other status has
        self._by_status: dict[str, dict[int, Job]] = {state: {} for state in LISTED_STATES}
        self._unlisted: dict[str, int] = {state: 0 for state in JOB_STATES if state not in LISTED_STATES}
        self._site_counts: dict[str, dict[str, int]] = {}  # site -> status -> jobs (statuses in order of first use)
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
        self.rows += 1
        self._enter(job)
        self._count_site(job.site, job.status, job.job_type, +1)
        return job

    def remove(self, job: Job) -> None:
        """Drop a job from the DB (JobCleaningAgent removing old Done/Failed/Killed jobs)."""
        if self.jobs.pop(job.job_id, None) is None:
            return
        self.rows -= 1
        self._leave(job)
        self._count_site(job.site, job.status, job.job_type, -1)

    def intern_sites(self, sites: Iterable[str]) -> frozenset[str]:
        """One shared frozenset per distinct site list, so a million jobs do not hold a million copies."""
        if not sites:
            return _NO_SITES
        key = frozenset(sites)
        return self._interned.setdefault(key, key)

    # ------------------------------------------------------------------ look-ups and counters
    def get(self, job_id: int) -> Job | None:
        """The job's record (None once it is retired: final, with ``retain_final=False``)."""
        return self.jobs.get(job_id)

    def __len__(self) -> int:
        return self.rows

    def jobs_in(self, status: str) -> Collection[Job]:
        """The jobs now in ``status`` (retired jobs excepted): for a status agents list (LISTED_STATES) a
        live view in the order they entered it; for any other a list in order of insertion into the DB
        (made by a scan: those statuses are only counted)."""
        listed = self._by_status.get(status)
        if listed is not None:
            return listed.values()
        if status not in self._unlisted:
            raise KeyError(status)
        return [job for job in self.jobs.values() if job.status == status]

    def count(self, status: str) -> int:
        listed = self._by_status.get(status)
        live = len(listed) if listed is not None else self._unlisted[status]
        return live + self._retired.get(status, 0)

    def counters(self) -> dict[str, int]:
        """getCounters("Jobs", ["Status"]): non-zero counts by status."""
        return {status: n for status in JOB_STATES if (n := self.count(status))}

    def finished(self) -> dict[str, np.ndarray]:
        """The retired jobs as columns (job_id, status), by job ID, in their last final status; empty
        with ``retain_final=True`` (the records are in ``jobs``). Their other fields are not kept."""
        return self._finished.columns(self.jobs)

    def finished_codes(self) -> tuple[np.ndarray, int]:
        """The retired jobs' last final status as one byte per job ID from the returned first ID on:
        0 not retired (or live again), else 1 + its index in RETIRED_STATES. What ``finished()`` says,
        without a row per job (a recount at 10^7 jobs reads 10 MB instead of building 10^7 rows)."""
        return self._finished.codes(self.jobs), self._finished.first

    def finished_done_tasks(self) -> np.ndarray:
        """Distinct JobGroup << 32 | TaskID of the retired Done jobs (-1 for jobs of no task), sorted."""
        return self._finished.done_task_keys(self.jobs)

    def finished_cpu_work(self, status: str) -> float:
        """CPU work (HS06 s) of the retired jobs whose last final status is ``status``."""
        return self._finished.work_of(status, self.jobs)

    def count_at(self, site: str, status: str) -> int:
        return self._site_counts.get(site, {}).get(status, 0)

    def site_counters(self) -> dict[tuple[str, str], int]:
        """getCounters("Jobs", ["Site", "Status"]): non-zero counts by (site, status), by site."""
        return {(site, status): n for site, counts in self._site_counts.items() for status, n in counts.items() if n}

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

        A status the state machine refuses leaves the job where it is, but the minor status is still
        written, as in DIRAC (``application``, ApplicationStatus, is accepted and not kept: nothing reads
        it). LastUpdateTime is always refreshed. ``source`` only documents the caller (DIRAC logs it,
        tagged "(SM)" on refusal).
        """
        old = job.status
        if status is None:
            new, accepted = old, True
        else:
            from_old = _TRANSITIONS[force].get(old)
            if from_old is None:
                from_old = _TRANSITIONS[force][old] = {}
            known = from_old.get(status)
            if known is None:
                known = from_old[status] = next_state(old, status, force)
            new, accepted = known
        if minor is not None:
            job.minor_status = minor
        job.last_update_time = now
        if site is not None and site != job.site:
            self._count_site(job.site, old, job.job_type, -1)
            job.site = site
            self._count_site(site, old, job.job_type, +1)
        if new == old:
            return accepted
        # the status change itself (inlined: six per job): indexes, counters, time stamps, the listener
        job_id = job.job_id
        by_status = self._by_status
        listed = by_status.get(old)
        if listed is not None:
            live = listed.pop(job_id, None) is not None
        else:
            live = job_id in self.jobs
            if live:
                self._unlisted[old] -= 1
        if not live:  # a retired job forced back (Failed -> rescheduled)
            self._retired[old] -= 1
            self.jobs[job_id] = job
        listed = by_status.get(new)
        if listed is not None:
            listed[job_id] = job
        else:
            self._unlisted[new] += 1
        at = job.site
        counts = self._site_counts.get(at)
        if counts is None:
            counts = self._site_counts[at] = {}
        counts[old] = counts.get(old, 0) - 1
        counts[new] = counts.get(new, 0) + 1
        if old in ACTIVE_STATES or new in ACTIVE_STATES:  # the Limiter's per-site JobType counts
            by_type = self._active.get(at)
            if by_type is None:
                by_type = self._active[at] = {}
            job_type = job.job_type
            if old in ACTIVE_STATES:
                by_type[job_type] = by_type.get(job_type, 0) - 1
            if new in ACTIVE_STATES:
                by_type[job_type] = by_type.get(job_type, 0) + 1
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
        if new in _RETIRED_CODE and not self.retain_final and job.status == new:
            self._retire(job)
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
    def _retire(self, job: Job) -> None:
        """Final: the record leaves memory; counters and the compact columns keep what summaries need."""
        self._leave(job)
        del self.jobs[job.job_id]
        self._retired[job.status] += 1
        self._finished.add(job)

    def _enter(self, job: Job) -> None:
        listed = self._by_status.get(job.status)
        if listed is not None:
            listed[job.job_id] = job
        else:
            self._unlisted[job.status] += 1

    def _leave(self, job: Job) -> None:
        listed = self._by_status.get(job.status)
        if listed is not None:
            del listed[job.job_id]
        else:
            self._unlisted[job.status] -= 1

    def _count_site(self, site: str, status: str, job_type: str, delta: int) -> None:
        counts = self._site_counts.get(site)
        if counts is None:
            counts = self._site_counts[site] = {}
        counts[status] = counts.get(status, 0) + delta
        if status in ACTIVE_STATES:
            by_type = self._active.setdefault(site, {})
            by_type[job_type] = by_type.get(job_type, 0) + delta


class _FinishedColumns:
    """What the run still needs of retired jobs, in about one byte per job ever created.

    Read by the invariant recount only (``twin/invariants.py``): each retired job's last final
    status, the tasks (JobGroup, TaskID) that have a Done job, and the CPU work per final status.
    Job IDs are dense (JobDB numbers them from ``first``), so the status is a byte at the job's
    offset (0: not retired); the Done tasks are one bit per TaskID per JobGroup. A retired job
    forced back (Failed -> rescheduled) keeps its stale byte while it is live again; queries skip
    live jobs, and its next retirement first takes back what the stale byte counted.
    Keys that are not (JobGroup >= 0, TaskID >= 0) (user jobs: -1) are counted in a small dict."""

    __slots__ = ("first", "status", "done_bits", "done_extra", "work")

    def __init__(self, first: int = 1) -> None:
        self.first = first
        self.status = bytearray()  # 1 + index in RETIRED_STATES at job_id - first; 0: not retired
        self.done_bits: dict[int, bytearray] = {}  # JobGroup -> bit per TaskID with a Done job
        self.done_extra: dict[int, int] = {}  # task key -> Done jobs beyond the bit (or irregular keys)
        self.work = [0.0] * len(RETIRED_STATES)  # CPU work (HS06 s) of the retired jobs, per final status

    def add(self, job: Job) -> None:
        at = job.job_id - self.first
        if at < 0:  # would index from the end and overwrite another job's byte
            raise ValueError(f"job {job.job_id} below the first job id {self.first}")
        if at >= len(self.status):
            self.status.extend(bytes(at + 1 - len(self.status)))
        elif self.status[at]:
            self._forget(job, self.status[at] - 1)
        code = _RETIRED_CODE[job.status]
        self.status[at] = code + 1
        self.work[code] += job.cpu_work
        if code == _DONE_CODE:
            group, task = job.job_group, job.task_id
            if type(group) is int and group >= 0 and 0 <= task <= 0xFFFFFFFF:  # a task's job: _task_key's two halves
                self._count_done_bit(group, task, +1)
            else:
                self._count_done(_task_key(job), +1)

    def _forget(self, job: Job, code: int) -> None:
        """Take back a previous retirement of ``job`` (it was forced back and retires again)."""
        self.work[code] -= job.cpu_work
        if RETIRED_STATES[code] == DONE:
            self._count_done(_task_key(job), -1)

    def _count_done(self, key: int, delta: int) -> None:
        if key < 0:
            self._count_extra(key, delta)
            return
        self._count_done_bit(key >> 32, key & 0xFFFFFFFF, delta)

    def _count_done_bit(self, group: int, task: int, delta: int) -> None:
        """One more (or one fewer) retired Done job of the task key (JobGroup >= 0, TaskID >= 0)."""
        bits = self.done_bits.get(group)
        if bits is None:
            bits = self.done_bits[group] = bytearray()
        byte, mask = task >> 3, 1 << (task & 7)
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits)))
        if delta > 0 and not bits[byte] & mask:
            bits[byte] |= mask
        elif delta < 0 and not self.done_extra.get(group << 32 | task):
            bits[byte] &= ~mask
        else:
            self._count_extra(group << 32 | task, delta)

    def _count_extra(self, key: int, delta: int) -> None:
        n = self.done_extra.get(key, 0) + delta
        if n:
            self.done_extra[key] = n
        else:
            self.done_extra.pop(key, None)

    def nbytes(self) -> int:
        return len(self.status) + sum(len(bits) for bits in self.done_bits.values()) + 16 * len(self.done_extra)

    def _stale(self, live: dict[int, Job]) -> list[Job]:
        """Live jobs that still have a byte from an earlier retirement."""
        n = len(self.status)
        return [job for job in live.values() if 0 <= job.job_id - self.first < n and self.status[job.job_id - self.first]]

    def codes(self, live: dict[int, Job]) -> np.ndarray:
        """The status bytes, with those of jobs live again cleared."""
        codes = np.frombuffer(bytes(self.status), dtype=np.uint8).copy()
        for job in self._stale(live):
            codes[job.job_id - self.first] = 0
        return codes

    def columns(self, live: dict[int, Job]) -> dict[str, np.ndarray]:
        """Job IDs and last final status of the retired jobs not live again, by job ID."""
        codes = self.codes(live)
        at = np.flatnonzero(codes)
        return {"job_id": at.astype(np.int64) + self.first,
                "status": np.array(("",) + RETIRED_STATES, dtype=object)[codes[at]]}

    def done_task_keys(self, live: dict[int, Job]) -> np.ndarray:
        """Distinct JobGroup << 32 | TaskID of the retired Done jobs not live again, sorted."""
        keys = [np.int64(group) << 32 | np.flatnonzero(np.unpackbits(np.frombuffer(bytes(bits), np.uint8), bitorder="little"))
                for group, bits in self.done_bits.items()]
        keys.append(np.array(list(self.done_extra), dtype=np.int64))
        found = np.unique(np.concatenate(keys).astype(np.int64))
        stale = Counter(_task_key(job) for job in self._stale(live)
                        if RETIRED_STATES[self.status[job.job_id - self.first] - 1] == DONE)
        gone = [key for key, n in stale.items() if self._done_count(key) <= n]
        return found[~np.isin(found, gone)] if gone else found

    def _done_count(self, key: int) -> int:
        """Retired Done jobs counted for a task key."""
        group, task = key >> 32, key & 0xFFFFFFFF
        bits = self.done_bits.get(group, b"") if key >= 0 else b""
        bit = (task >> 3) < len(bits) and bool(bits[task >> 3] & (1 << (task & 7)))
        return int(bit) + self.done_extra.get(key, 0)

    def work_of(self, status: str, live: dict[int, Job]) -> float:
        """CPU work of the retired jobs whose last final status is ``status`` (not live again)."""
        code = RETIRED_STATES.index(status)
        stale = [job.cpu_work for job in self._stale(live) if self.status[job.job_id - self.first] - 1 == code]
        return self.work[code] - sum(stale)


def _task_key(job: Job) -> int:
    """JobGroup << 32 | TaskID: JobGroup when an integer (the TransformationID) else -1, TaskID of a
    task's job else -1 (so -1 << 32 | -1 == -1 for user jobs)."""
    group = job.job_group
    group_id = group if isinstance(group, int) else int(group) if str(group).isdigit() else -1
    return group_id << 32 | job.task_id
