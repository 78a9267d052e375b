"""TaskQueueDB, Matcher and Limiter logic of DIRAC 9.1.22, in memory and sized for 10^6 waiting jobs.

Follows ``DB/TaskQueueDB.py``, ``Client/Matcher.py`` and ``Client/Limiter.py``:

* Jobs whose requirements are identical share a task queue (TQ), at most ``max_jobs_in_tq`` (5000)
  each: ``__findSmallestTaskQueue`` picks the emptiest TQ of the definition and a new one is made
  when even that one is full.
* TQ priority = group share (default 1000) x the TQ's mean RealPriority / the sum of those means
  over the group's TQs, floored at 0.001; TQs equal but for Sites, BannedSites and RAM get the sum
  of their priorities (``calculate_priority``). It is recomputed after a TQ of the group appears or
  disappears, as in DIRAC (lazily, at the next read), and on ``recalculate_shares`` (TaskQueuesAgent).
* ``matchAndGetJob``: the matching TQs are ordered by ``RAND()/Priority`` (up to 10 kept); in the
  first TQ that yields a job, a priority class wins by ``RAND()/RealPriority`` drawn per job row,
  and one of the 50 lowest JobIDs of that class is taken at random.

Data structures: an index site -> TQs (plus the TQs open to any site) and a cache of the candidate
TQs per resource shape, so a match does not scan TQs that cannot match; per priority class a sorted
"front" list over a heap of JobIDs with lazy deletion, so the k-th lowest live JobID costs O(k + log n).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from twin.dirac.wms.job_status import MATCHED, WAITING
from twin.dirac.wms.jobdb import Job, JobDB

DEFAULT_GROUP_SHARE: Final = 1000.0
TQ_MIN_SHARE: Final = 0.001
#: TaskQueueDB.__defaultCPUSegments (s): a job's CPUTime is rounded up to one of these.
CPU_SEGMENTS: Final[tuple[int, ...]] = (
    6 * 60,
    30 * 60,
    3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    3 * 86400,
    4 * 86400,
    6 * 86400,
    8 * 86400,
    10 * 86400,
    int(12.5 * 86400),
)
MAX_JOBS_IN_TQ: Final = 5000
JOBS_PER_TRY: Final = 50
QUEUES_PER_TRY: Final = 10
MAX_MATCH_RETRY: Final = 3
_JOB_PRIORITY_BOUNDS: Final = (0.001, 10)
_ONLY_FIRST: Final = (0,)  # the draw order of a single candidate TQ
_FRONT_MAX: Final = 512  # a priority class's sorted front list spills its tail back to the heap beyond this


def fit_cpu_time_to_segment(cpu_time: float, segments: tuple[int, ...] = CPU_SEGMENTS) -> int:
    """fitCPUTimeToSegments: the smallest segment >= cpu_time, or the last one."""
    i = bisect.bisect_left(segments, cpu_time)
    return segments[min(i, len(segments) - 1)]


def real_priority(priority: float) -> float:
    """__hackJobPriority: clamp int(priority) to [0.001, 10]; the bounds become 1e-5 and 1e6."""
    low, high = _JOB_PRIORITY_BOUNDS
    value = min(max(int(priority), low), high)
    if value == low:
        return 1e-5
    if value == high:
        return 1e6
    return value


# ----------------------------------------------------------------------------------- Limiter
class TokenBucket:
    """MatchingDelay bucket: at most ``burst`` tokens, one more every ``interval`` seconds."""

    __slots__ = ("interval", "burst", "tokens", "updated")

    def __init__(self, interval: float, burst: int, now: float) -> None:
        self.interval = interval
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.updated = now

    def refill(self, now: float) -> None:
        if self.interval > 0:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.interval)
        else:
            self.tokens = float(self.burst)
        self.updated = now


class Limiter:
    """Negative match conditions per site on the JobType attribute (Client/Limiter.py).

    ``running_limits[site][job_type] = N`` stops matching that type at the site once N jobs of it
    are Running, Matched or Stalled there, as counted by ``running_counts(site)`` (e.g.
    ``JobDB.running_by_job_type``; DIRAC reads a 10 s cache corrected by its own recent matches,
    the twin reads the live count). ``matching_delays[site][job_type] = (interval, burst)`` lets
    one job of that type be matched every ``interval`` seconds, ``burst`` at once after a pause.
    """

    def __init__(
        self,
        running_limits: Mapping[str, Mapping[str, int]] | None = None,
        running_counts: Callable[[str], Mapping[str, int]] | None = None,
        matching_delays: Mapping[str, Mapping[str, tuple[float, int]]] | None = None,
    ) -> None:
        self.running_limits = dict(running_limits or {})
        self.running_counts = running_counts
        self.matching_delays = dict(matching_delays or {})
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def blocked_job_types(self, site: str, now: float) -> frozenset[str]:
        """JobTypes that may not be matched at ``site`` now (getNegativeCondForSite + delay tokens)."""
        blocked: set[str] = set()
        limits = self.running_limits.get(site)
        if limits and self.running_counts is not None:
            running = self.running_counts(site)
            blocked.update(t for t, limit in limits.items() if running.get(t, 0) >= limit)
        for job_type in self.matching_delays.get(site, ()):
            if self._bucket(site, job_type, now).tokens < 1:
                blocked.add(job_type)
        return frozenset(blocked)

    def record_match(self, site: str, job_type: str, now: float) -> None:
        """The matched job keeps the delay token of its type (MatchingReservation.commit)."""
        if job_type in self.matching_delays.get(site, ()):
            self._bucket(site, job_type, now).tokens -= 1

    def _bucket(self, site: str, job_type: str, now: float) -> TokenBucket:
        interval, burst = self.matching_delays[site][job_type]
        bucket = self._buckets.get((site, job_type))
        if bucket is None:
            bucket = self._buckets[(site, job_type)] = TokenBucket(interval, burst, now)
        bucket.refill(now)
        return bucket


# ----------------------------------------------------------------------------------- TQ internals
class _PriorityClass:
    """The JobIDs of one (TQ, Priority) pair, lowest first, with lazy deletion.

    ``front`` is a sorted list no larger than anything in ``heap``; an ID is dropped when it is
    met and found dead (the job left the TQ, or moved to another TQ or class). A job that left
    and came back may be present twice: the copies are adjacent and only one is used.
    """

    __slots__ = ("prio", "real", "count", "front", "heap")

    def __init__(self, prio: int) -> None:
        self.prio = prio
        self.real = real_priority(prio)
        self.count = 0
        self.front: list[int] = []
        self.heap: list[int] = []

    def push(self, job_id: int) -> None:
        front = self.front
        if front and job_id < front[-1]:
            bisect.insort(front, job_id)
            if len(front) > _FRONT_MAX:
                tail = front[_FRONT_MAX // 2 :]
                del front[_FRONT_MAX // 2 :]
                for jid in tail:
                    heapq.heappush(self.heap, jid)
        else:
            heapq.heappush(self.heap, job_id)

    def take(self, rank: int, live: Callable[[int], bool]) -> int:
        """Remove and return the ``rank``-th lowest live JobID (0-based)."""
        front, heap = self.front, self.heap
        if len(front) + len(heap) == self.count:  # no dead or duplicate entry: index directly
            return self.take_direct(rank)
        i = seen = 0
        last = -1
        while True:
            if i == len(front):
                front.append(heapq.heappop(heap))
            jid = front[i]
            if jid == last or not live(jid):
                del front[i]
                continue
            if seen == rank:
                del front[i]
                return jid
            seen += 1
            last = jid
            i += 1

    def take_direct(self, rank: int) -> int:
        """`take` when every entry is live and unique (len(front) + len(heap) == count)."""
        front, heap = self.front, self.heap
        while len(front) <= rank:
            front.append(heapq.heappop(heap))
        return front.pop(rank)

    def bloated(self) -> bool:
        """Dead IDs outnumber the live ones: time to compact."""
        return len(self.front) + len(self.heap) > 2 * self.count + 64

    def compact(self, live: Callable[[int], bool]) -> None:
        """Forget dead IDs (a sorted list is a valid heap)."""
        self.heap = sorted({jid for jid in self.front + self.heap if live(jid)})
        self.front = []


@dataclass(frozen=True, slots=True)
class TQDefinition:
    """What makes two jobs share a TQ (Owner is not modelled: one owner per group)."""

    owner_group: str
    sites: frozenset[str]
    banned_sites: frozenset[str]
    job_type: str
    cpu_time: int
    processors: int
    min_ram: int

    @property
    def priority_key(self) -> tuple[str, str, int, int]:
        """The definition without Sites, BannedSites and RAM (priorityIgnoredFields)."""
        return (self.owner_group, self.job_type, self.cpu_time, self.processors)


class TaskQueue:
    """One TQ: its definition, its jobs by priority class, its job count and its share priority."""

    __slots__ = ("tq_id", "definition", "classes", "count", "_priority", "_db", "holder")

    def __init__(self, tq_id: int, definition: TQDefinition, db: TaskQueueDB, holder: _Definition) -> None:
        self.tq_id = tq_id
        self.definition = definition
        self.holder = holder  # the TQs of its definition
        self.classes: dict[int, _PriorityClass] = {}
        self.count = 0
        self._priority = 1.0
        self._db = db

    @property
    def priority(self) -> float:
        """tq_TaskQueues.Priority (share recalculations are batched until a priority is read)."""
        self._db._flush_shares()
        return self._priority

    def mean_real_priority(self) -> float:
        return sum(c.count * c.real for c in self.classes.values()) / self.count

    def accepts(self, shape: _ResourceShape) -> bool:
        """The SQL of __generateTQMatchSQL, for one TQ and one resource."""
        d = self.definition
        if d.cpu_time > shape.cpu_cap or shape.site in d.banned_sites:
            return False
        if d.sites and shape.site not in d.sites:
            return False
        if d.processors > 1 and d.processors > shape.processors:
            return False
        if shape.max_ram is not None and d.min_ram > shape.max_ram:
            return False
        if shape.job_types is not None and d.job_type not in shape.job_types:
            return False
        return shape.groups is None or d.owner_group in shape.groups

    def __repr__(self) -> str:
        return f"TaskQueue({self.tq_id}, jobs={self.count}, priority={self.priority}, {self.definition})"


@dataclass(frozen=True, slots=True)
class _ResourceShape:
    """A resource description reduced to what matching reads; hashable, so candidate lists are cached
    (its hash is worked out once: the candidate cache is asked once per match)."""

    site: str
    cpu_cap: int
    processors: int
    max_ram: int | None
    job_types: frozenset[str] | None
    groups: frozenset[str] | None
    _hash: int = field(default=0, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.site, self.cpu_cap, self.processors, self.max_ram, self.job_types,
                                                self.groups)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(slots=True)
class _Definition:
    """The TQs of one definition, with a lazy (count, tq_id) heap to find the emptiest one."""

    tqs: dict[int, TaskQueue] = field(default_factory=dict)
    heap: list[tuple[int, int]] = field(default_factory=list)

    def add(self, tq: TaskQueue) -> None:
        self.tqs[tq.tq_id] = tq
        if len(self.tqs) > 1:
            self._rebuild()

    def note(self, tq: TaskQueue) -> None:
        """Record a new job count of ``tq`` (only needed once the definition has several TQs)."""
        if len(self.tqs) > 1:
            heapq.heappush(self.heap, (tq.count, tq.tq_id))
            if len(self.heap) > 4 * len(self.tqs) + 16:
                self._rebuild()

    def smallest(self) -> TaskQueue | None:
        """The TQ with the fewest jobs (ties: lowest TQId)."""
        if len(self.tqs) <= 1:
            return next(iter(self.tqs.values()), None)
        heap = self.heap
        while heap:
            count, tq_id = heap[0]
            tq = self.tqs.get(tq_id)
            if tq is not None and tq.count == count:
                return tq
            heapq.heappop(heap)
        self._rebuild()
        return self.tqs[self.heap[0][1]]

    def _rebuild(self) -> None:
        self.heap = [(t.count, t.tq_id) for t in self.tqs.values()]
        heapq.heapify(self.heap)


def _as_set(value: Any) -> frozenset[str] | None:
    """A match-dict multi-value: None when absent, empty or "any" (no condition)."""
    if not value:
        return None
    values = [value] if isinstance(value, str) else list(value)
    if any("".join(ch for ch in v.lower() if ch.isalnum()) == "any" for v in values):
        return None
    return frozenset(values)


# ----------------------------------------------------------------------------------- TaskQueueDB
class TaskQueueDB:
    """Waiting jobs grouped in task queues, and the Matcher's choice of the next job for a pilot.

    ``site_mask`` is the set of usable sites (None: all); a pilot at another site is offered only
    "Test" jobs, as ``Matcher._checkMask`` does. ``limiter`` adds the RunningLimit/MatchingDelay
    negative conditions.
    """

    def __init__(
        self,
        group_shares: Mapping[str, float] | None = None,
        *,
        max_jobs_in_tq: int | None = MAX_JOBS_IN_TQ,
        limiter: Limiter | None = None,
        site_mask: Collection[str] | None = None,
        cpu_segments: tuple[int, ...] = CPU_SEGMENTS,
        jobs_per_try: int = JOBS_PER_TRY,
        queues_per_try: int = QUEUES_PER_TRY,
        max_match_retry: int = MAX_MATCH_RETRY,
    ) -> None:
        self.group_shares = dict(group_shares or {})
        self.max_jobs_in_tq = max_jobs_in_tq
        self.limiter = limiter
        self.site_mask = site_mask
        self.cpu_segments = tuple(cpu_segments)
        self.jobs_per_try = jobs_per_try
        self.queues_per_try = queues_per_try
        self.max_match_retry = max_match_retry
        self.tqs: dict[int, TaskQueue] = {}
        self._queued: dict[int, Job] = {}
        self._next_tq_id = 1
        self._definitions: dict[TQDefinition, _Definition] = {}
        self._by_group: dict[str, dict[int, TaskQueue]] = {}
        self._by_site: dict[str, dict[int, TaskQueue]] = {}
        self._any_site: dict[int, TaskQueue] = {}
        self._version = 0
        self._dirty_groups: set[str] = set()
        self._candidates_cache: dict[_ResourceShape, tuple[int, list[TaskQueue], np.ndarray]] = {}
        self._shapes: dict[tuple[Any, ...], _ResourceShape] = {}
        self._definition_of: dict[tuple[Any, ...], TQDefinition] = {}

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return len(self._queued)

    def __contains__(self, job: Job) -> bool:
        return self._queued.get(job.job_id) is job

    def definition_for(self, job: Job, sites: Iterable[str] | None = None) -> TQDefinition:
        """The TQ definition JobScheduling builds for ``job`` (``sites`` overrides the job's Site list).

        Built once per distinct requirement set (a frozen dataclass costs more to make than a tuple key)."""
        key = (job.owner_group, job.sites if sites is None else tuple(sites), job.banned_sites, job.job_type,
               job.cpu_time, job.processors, job.memory_mb)
        definition = self._definition_of.get(key)
        if definition is None:
            if len(self._definition_of) > 4096:
                self._definition_of.clear()
            definition = self._definition_of[key] = self._new_definition(job, sites)
        return definition

    def _new_definition(self, job: Job, sites: Iterable[str] | None) -> TQDefinition:
        return TQDefinition(
            owner_group=job.owner_group,
            sites=job.sites if sites is None else frozenset(sites),
            banned_sites=job.banned_sites,
            job_type=job.job_type,
            cpu_time=fit_cpu_time_to_segment(job.cpu_time, self.cpu_segments),
            processors=max(1, int(job.processors)),
            min_ram=max(0, int(job.memory_mb)),
        )

    def insert(self, job: Job, sites: Iterable[str] | None = None) -> TaskQueue:
        """insertJob: into the emptiest TQ of its definition, a new TQ if there is none or it is full."""
        if job.tq_id is not None:
            self.remove(job)
        definition = self.definition_for(job, sites)
        group = self._definitions.get(definition)
        tq = group.smallest() if group is not None else None
        if group is None or tq is None or (self.max_jobs_in_tq is not None and tq.count >= self.max_jobs_in_tq):
            tq = self._create(definition)
            group = self._definitions[definition]
        cls = tq.classes.get(int(job.priority))
        if cls is None:
            cls = tq.classes[int(job.priority)] = _PriorityClass(int(job.priority))
        cls.push(job.job_id)
        cls.count += 1
        tq.count += 1
        job.tq_id = tq.tq_id
        self._queued[job.job_id] = job
        group.note(tq)
        if tq.count == 1:
            self._mark_dirty(definition.owner_group)
        return tq

    def remove(self, job: Job) -> bool:
        """deleteJob: take the job out of its TQ (False if it was not queued). Empty TQs go at once."""
        tq = self.tqs.get(job.tq_id) if job.tq_id is not None else None
        if tq is None or self._queued.get(job.job_id) is not job:
            return False
        self._detach(job, tq, tq.classes[int(job.priority)])
        return True

    # ------------------------------------------------------------------ matching
    def match(self, resource: Mapping[str, Any], rng: np.random.Generator, now: float = 0.0) -> Job | None:
        """matchAndGetJob for a pilot's resource description; the job is removed from its TQ.

        ``resource`` uses DIRAC's keys: Site and CPUTime (required), NumberOfProcessors, MaxRAM,
        JobType and OwnerGroup (optional; absent, empty or "ANY" means no condition).
        """
        return self._match(resource["Site"], self._shape(resource, apply_mask=True), rng, now)

    def match_pilot(self, site: str, cpu_time: int, max_ram: int | None, processors: int | None,
                    rng: np.random.Generator, now: float = 0.0) -> Job | None:
        """``match`` for a pilot's request {Site, CPUTime, MaxRAM, NumberOfProcessors} (no JobType or
        OwnerGroup condition), without building the dict: the same shape, the same draws."""
        index = bisect.bisect_right(self.cpu_segments, cpu_time) - 1
        shape = self._shapes.get((site, index, self.site_mask is not None and site not in self.site_mask, processors, max_ram))
        if shape is None:
            shape = self._shape({"Site": site, "CPUTime": cpu_time, "MaxRAM": max_ram, "NumberOfProcessors": processors},
                                apply_mask=True)
        return self._match(site, shape, rng, now)

    def _match(self, site: str, shape: _ResourceShape, rng: np.random.Generator, now: float) -> Job | None:
        limiter = self.limiter
        blocked = limiter.blocked_job_types(site, now) if limiter else frozenset()
        for _ in range(self.max_match_retry):
            tqs, priorities = self._candidates(shape, blocked)
            if not tqs:
                return None
            for index in self._draw_order(priorities, rng):
                job = self._extract(tqs[index], rng)
                if job is not None:
                    if limiter is not None:
                        limiter.record_match(site, job.job_type, now)
                    return job
        return None

    def matching_task_queues(self, resource: Mapping[str, Any], now: float = 0.0) -> list[TaskQueue]:
        """getMatchingTaskQueues: the TQs a CE could run (limiter applied, site mask not)."""
        shape = self._shape(resource, apply_mask=False)
        blocked = self.limiter.blocked_job_types(resource["Site"], now) if self.limiter else frozenset()
        return self._candidates(shape, blocked)[0]

    def count_matching(self, ce_description: Mapping[str, Any], now: float = 0.0) -> int:
        """Waiting jobs in the TQs matching a CE: the SiteDirector's "waiting jobs" for a queue."""
        return sum(tq.count for tq in self.matching_task_queues(ce_description, now))

    # ------------------------------------------------------------------ shares
    def set_group_share(self, group: str, share: float) -> None:
        self.group_shares[group] = share
        self._mark_dirty(group)

    def recalculate_shares(self, group: str | None = None) -> None:
        """recalculateTQSharesForAll / ForEntity (the TaskQueuesAgent calls the former)."""
        for name in [group] if group is not None else list(self._by_group):
            self._mark_dirty(name)

    def _mark_dirty(self, group: str) -> None:
        """DIRAC recalculates a group's shares whenever one of its TQs appears or goes; the twin
        defers that to the next priority read, so a burst of new TQs costs one O(TQs) pass. (The
        means are then those of that moment: it only differs when a group mixes job priorities.)"""
        self._dirty_groups.add(group)
        self._version += 1

    def _flush_shares(self) -> None:
        while self._dirty_groups:
            self._recalculate_group(self._dirty_groups.pop())

    def _recalculate_group(self, group: str) -> None:
        tqs = list(self._by_group.get(group, {}).values())
        if not tqs:
            return
        share = float(self.group_shares.get(group, DEFAULT_GROUP_SHARE))
        means = {tq.tq_id: tq.mean_real_priority() for tq in tqs}
        total = sum(means.values())
        prio = {tq_id: max(share / total * mean, TQ_MIN_SHARE) for tq_id, mean in means.items()}
        summed: dict[tuple[str, str, int, int], float] = {}
        for tq in tqs:
            key = tq.definition.priority_key
            summed[key] = summed.get(key, 0.0) + prio[tq.tq_id]
        for tq in tqs:
            tq._priority = round(summed[tq.definition.priority_key], 4)

    # ------------------------------------------------------------------ internals
    def _create(self, definition: TQDefinition) -> TaskQueue:
        holder = self._definitions.setdefault(definition, _Definition())
        tq = TaskQueue(self._next_tq_id, definition, self, holder)
        self._next_tq_id += 1
        self.tqs[tq.tq_id] = tq
        holder.add(tq)
        self._by_group.setdefault(definition.owner_group, {})[tq.tq_id] = tq
        if definition.sites:
            for site in definition.sites:
                self._by_site.setdefault(site, {})[tq.tq_id] = tq
        else:
            self._any_site[tq.tq_id] = tq
        self._version += 1
        return tq

    def _delete(self, tq: TaskQueue) -> None:
        definition = tq.definition
        del self.tqs[tq.tq_id]
        holder = self._definitions[definition]
        del holder.tqs[tq.tq_id]
        if not holder.tqs:
            del self._definitions[definition]
        del self._by_group[definition.owner_group][tq.tq_id]
        if definition.sites:
            for site in definition.sites:
                del self._by_site[site][tq.tq_id]
        else:
            del self._any_site[tq.tq_id]
        self._mark_dirty(definition.owner_group)

    def _detach(self, job: Job, tq: TaskQueue, cls: _PriorityClass) -> None:
        del self._queued[job.job_id]
        job.tq_id = None
        cls.count -= 1
        tq.count -= 1
        if tq.count == 0:
            self._delete(tq)
            return
        if cls.count == 0:
            del tq.classes[cls.prio]
        elif cls.bloated():
            cls.compact(self._liveness(tq, cls))
        tq.holder.note(tq)

    def _liveness(self, tq: TaskQueue, cls: _PriorityClass) -> Callable[[int], bool]:
        queued, tq_id, prio = self._queued, tq.tq_id, cls.prio

        def live(job_id: int) -> bool:
            job = queued.get(job_id)
            return job is not None and job.tq_id == tq_id and int(job.priority) == prio

        return live

    def _extract(self, tq: TaskQueue, rng: np.random.Generator) -> Job | None:
        """One job of the TQ: priority class by RAND()/RealPriority over job rows, then 1 of the 50 lowest IDs."""
        if tq.count == 0:
            return None
        cls = self._draw_class(tq, rng)
        rank = int(rng.integers(min(self.jobs_per_try, cls.count)))
        if len(cls.front) + len(cls.heap) == cls.count:  # no dead entry: no liveness test to build
            job_id = cls.take_direct(rank)
        else:
            job_id = cls.take(rank, self._liveness(tq, cls))
        job = self._queued[job_id]
        self._detach(job, tq, cls)
        return job

    @staticmethod
    def _draw_class(tq: TaskQueue, rng: np.random.Generator) -> _PriorityClass:
        """The class of the job row with the least RAND()/RealPriority.

        The least of n uniforms is drawn directly (1 - V**(1/n), V in (0, 1]), so the cost is per
        class, not per job.
        """
        if len(tq.classes) == 1:
            return next(iter(tq.classes.values()))
        classes = list(tq.classes.values())
        draws = 1.0 - rng.random(len(classes))
        keys = [-math.expm1(math.log(v) / c.count) / c.real for v, c in zip(draws, classes)]
        return classes[keys.index(min(keys))]

    def _draw_order(self, priorities: np.ndarray, rng: np.random.Generator) -> np.ndarray | tuple[int]:
        """ORDER BY RAND()/Priority LIMIT queues_per_try."""
        if len(priorities) == 1:  # one candidate TQ (the usual case): the same draw, without the array work
            rng.random()
            return _ONLY_FIRST
        keys = rng.random(len(priorities)) / priorities
        k = self.queues_per_try
        if len(keys) <= k:
            return np.argsort(keys, kind="stable")
        best = np.argpartition(keys, k - 1)[:k]
        return best[np.argsort(keys[best], kind="stable")]

    def _shape(self, resource: Mapping[str, Any], apply_mask: bool) -> _ResourceShape:
        if "CPUTime" not in resource:
            raise ValueError("Missing mandatory field 'CPUTime' in match request definition")
        site = resource["Site"]
        index = bisect.bisect_right(self.cpu_segments, resource["CPUTime"]) - 1
        masked = apply_mask and self.site_mask is not None and site not in self.site_mask
        job_type, group = resource.get("JobType"), resource.get("OwnerGroup")
        cacheable = job_type is None and group is None  # a pilot's request: a few shapes, asked once per match
        if cacheable:
            key = (site, index, masked, resource.get("NumberOfProcessors"), resource.get("MaxRAM"))
            shape = self._shapes.get(key)
            if shape is not None:
                return shape
        max_ram = resource.get("MaxRAM")
        shape = _ResourceShape(
            site=site,
            cpu_cap=self.cpu_segments[index] if index >= 0 else -1,
            processors=int(resource.get("NumberOfProcessors") or 1),
            max_ram=None if max_ram is None else int(max_ram),
            job_types=frozenset({"Test"}) if masked else _as_set(job_type),  # banned destinations only take Test jobs
            groups=_as_set(group),
        )
        if cacheable:
            self._shapes[key] = shape
        return shape

    def _candidates(self, shape: _ResourceShape, blocked: frozenset[str]) -> tuple[list[TaskQueue], np.ndarray]:
        cached = self._candidates_cache.get(shape)
        if cached is None or cached[0] != self._version:
            pool = list(self._any_site.values()) + list(self._by_site.get(shape.site, {}).values())
            tqs = sorted((tq for tq in pool if tq.accepts(shape)), key=lambda tq: tq.tq_id)
            priorities = np.fromiter((tq.priority for tq in tqs), dtype=float, count=len(tqs))
            if len(self._candidates_cache) > 4096:
                self._candidates_cache.clear()
            cached = self._candidates_cache[shape] = (self._version, tqs, priorities)
        _, tqs, priorities = cached
        if blocked:
            keep = [i for i, tq in enumerate(tqs) if tq.definition.job_type not in blocked]
            return [tqs[i] for i in keep], priorities[keep]
        return tqs, priorities


def request_job(
    tqdb: TaskQueueDB,
    jobdb: JobDB,
    resource: Mapping[str, Any],
    rng: np.random.Generator,
    now: float,
) -> Job | None:
    """Matcher.selectJob: match a job and set it Matched/"Assigned" at the resource's site.

    A matched job that is not Waiting is dropped from the TQ and the request fails, as in DIRAC.
    """
    return _assign(jobdb, tqdb.match(resource, rng, now), resource["Site"], now)


def request_pilot_job(tqdb: TaskQueueDB, jobdb: JobDB, site: str, cpu_time: int, max_ram: int | None,
                      processors: int | None, rng: np.random.Generator, now: float) -> Job | None:
    """``request_job`` for a pilot's {Site, CPUTime, MaxRAM, NumberOfProcessors} (``TaskQueueDB.match_pilot``)."""
    return _assign(jobdb, tqdb.match_pilot(site, cpu_time, max_ram, processors, rng, now), site, now)


def _assign(jobdb: JobDB, job: Job | None, site: str, now: float) -> Job | None:
    if job is None or job.status != WAITING:
        return None
    jobdb.set_status(job, MATCHED, "Assigned", now, source="Matcher", application="Unknown", site=site)
    return job
