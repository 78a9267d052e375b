"""Scheduling decisions as pure functions: JobScheduling, SiteDirector sizing, task destinations.

* ``schedule_job`` is the optimizer chain's verdict on a Checking job: the InputData executor's
  checks, then ``Executor/JobScheduling.py`` (DIRAC 9.1.22) step by step. It returns what to do
  (Hold / Stage / ToTaskQueue / Fail) and changes nothing, so the caller applies it in its world.
* ``site_director_pilots`` is ``SiteDirector._submitPilotsToQueue``'s count, with the CE's
  ``available()`` rule.
* ``by_se_sites``, ``by_job_type`` and ``handle_destination`` are the TaskManagerPlugin and
  ``WorkflowTasks._handleDestination``.

Replicas are given per site, ``{lfn: {site: medium}}``, medium one of DISK, TAPE (nearline, must be
staged) and CACHED (a tape replica already online), as ``getReplicasForJobs`` would leave them
(tape copies dropped where a disk copy exists).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

DISK: Final = "disk"
TAPE: Final = "tape"
CACHED: Final = "cached"
_ONLINE: Final = frozenset({DISK, CACHED})

RESCHEDULE_DELAYS: tuple[float, ...] = (60, 180, 300, 600)
HOLD_TIME: Final = 300.0
MAX_PILOTS_TO_SUBMIT: Final = 100

INPUT_DATA_NOT_AVAILABLE: Final = "Input data not available"
NO_CANDIDATE_SITE_FOUND: Final = "No candidate sites available"
FILE_NOT_IN_FC: Final = "File not in FC"

Replicas = Mapping[str, Mapping[str, str]]


# ----------------------------------------------------------------------------------- decisions
@dataclass(frozen=True, slots=True)
class Hold:
    """Keep the job in Checking and run the optimizer again at ``until`` (freezeTask)."""

    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class Stage:
    """Request staging (job -> Staging): ``files`` to bring online, ``site`` where, ``by_site`` per site."""

    site: str
    files: tuple[str, ...]
    by_site: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class ToTaskQueue:
    """Job -> Waiting in a TQ limited to ``sites`` (empty: anywhere); ``site_label`` is its Site attribute."""

    sites: tuple[str, ...]
    site_label: str


@dataclass(frozen=True, slots=True)
class Fail:
    """Job -> Failed with this MinorStatus."""

    reason: str


Decision = Hold | Stage | ToTaskQueue | Fail


class SchedulableJob(Protocol):
    """The job attributes JobScheduling reads (``twin.dirac.wms.jobdb.Job`` has them): read-only members,
    so a job whose attributes are narrower (a frozenset, a tuple) matches."""

    @property
    def sites(self) -> Collection[str]: ...
    @property
    def banned_sites(self) -> Collection[str]: ...
    @property
    def reschedule_counter(self) -> int: ...
    @property
    def reschedule_time(self) -> float | None: ...
    @property
    def input_data(self) -> Sequence[str]: ...


# ----------------------------------------------------------------------------------- JobScheduling
def schedule_job(
    job: SchedulableJob,
    replicas: Replicas,
    site_mask: Collection[str],
    now: float,
    *,
    production: bool,
    rng: np.random.Generator | None = None,
    reschedule_delays: Sequence[float] = RESCHEDULE_DELAYS,
    hold_time: float = HOLD_TIME,
    check_input_data: bool = True,
) -> Decision:
    """The optimizers' decision for a Checking job.

    ``site_mask``: the usable (Active/Degraded) sites. ``production``: the JobType is listed in
    Operations Transformations/DataProcessing. ``check_input_data`` runs the InputData executor's
    checks first (it precedes JobScheduling for any job with input data). ``rng`` breaks the ties
    DIRAC breaks at random; without it the first site in sorted order is taken.
    """
    lfns = tuple(job.input_data)
    if lfns and check_input_data:
        failure = _input_data_check(lfns, replicas)
        if failure is not None:
            return failure
    if job.reschedule_counter:
        delay = reschedule_delays[min(job.reschedule_counter - 1, len(reschedule_delays) - 1)]
        if job.reschedule_time is not None and now - job.reschedule_time < delay:
            return Hold(now + delay, f"On Hold: after rescheduling {job.reschedule_counter}")
    user_sites = [s for s in job.sites if s.strip().lower() not in ("any", "")]
    if user_sites:
        user_sites = sorted(set(user_sites) - set(job.banned_sites))
        if not user_sites:
            return Fail("Impossible site requirement")
        usable = [s for s in user_sites if s in site_mask]
        if not usable:
            return Hold(now + hold_time, f"Requested site(s) {','.join(user_sites)} are inactive")
        user_sites = usable
    if not lfns:
        return ToTaskQueue(tuple(user_sites), _site_label(user_sites))
    if production:
        return _schedule_production(lfns, replicas, user_sites, rng)
    return _schedule_user(lfns, replicas, user_sites, job.banned_sites, site_mask, now, hold_time, rng)


def _input_data_check(lfns: Sequence[str], replicas: Replicas) -> Fail | None:
    """InputData executor: every file needs a replica, and one site must hold them all."""
    if any(not replicas.get(lfn) for lfn in lfns):
        return Fail(INPUT_DATA_NOT_AVAILABLE)
    if not _sites_with_all(lfns, replicas):
        return Fail(NO_CANDIDATE_SITE_FOUND)
    return None


def _sites_with_all(lfns: Sequence[str], replicas: Replicas) -> set[str]:
    sites = set(replicas.get(lfns[0], {}))
    for lfn in lfns[1:]:
        sites &= set(replicas.get(lfn, {}))
    return sites


def _schedule_production(
    lfns: Sequence[str],
    replicas: Replicas,
    user_sites: list[str],
    rng: np.random.Generator | None,
) -> Decision:
    """Production jobs: getFilesToStage; data locality comes from the task's Site, not from here."""
    absent = [lfn for lfn in lfns if not replicas.get(lfn)]
    if absent:
        return Fail(FILE_NOT_IN_FC)
    offline = [lfn for lfn in lfns if not _ONLINE.intersection(replicas[lfn].values())]
    online_sites = {site for lfn in lfns for site, medium in replicas[lfn].items() if medium in _ONLINE}
    if offline:
        by_site: dict[str, list[str]] = {}
        for lfn in offline:
            by_site.setdefault(_stage_site_for(sorted(replicas[lfn]), online_sites, rng), []).append(lfn)
        return _stage(by_site)
    online = sorted(online_sites & set(user_sites))
    sites = online + [s for s in user_sites if s not in online]
    return ToTaskQueue(tuple(sites), _site_label(sites, online))


def _stage_site_for(sites: list[str], online_sites: set[str], rng: np.random.Generator | None) -> str:
    """The copy to stage: the only one, else one at a site already holding online files, else any."""
    if len(sites) == 1:
        return sites[0]
    for site in sites:
        if site in online_sites:
            return site
    return _pick(sites, rng)


def _schedule_user(
    lfns: Sequence[str],
    replicas: Replicas,
    user_sites: list[str],
    banned: Collection[str],
    site_mask: Collection[str],
    now: float,
    hold_time: float,
    rng: np.random.Generator | None,
) -> Decision:
    """Other jobs with input data: run where all files are, staging from tape if no site has them on disk."""
    candidates = _sites_with_all(lfns, replicas)
    if user_sites:
        candidates &= set(user_sites)
    candidates -= set(banned)
    if not candidates:
        return Fail("Impossible InputData * Site requirements")
    on_disk = {site: sum(replicas[lfn][site] == DISK for lfn in lfns) for site in sorted(candidates)}
    disk_sites = [site for site, n in on_disk.items() if n == len(lfns)]
    if disk_sites:
        chosen, stage_required = disk_sites, False
    else:
        best = max(on_disk.values())
        chosen, stage_required = [site for site, n in on_disk.items() if n == best], True
    active = [site for site in chosen if site in site_mask]
    if not active:
        return Hold(now + hold_time, f"Sites {', '.join(chosen)} are inactive or banned")
    if not stage_required:
        return ToTaskQueue(tuple(chosen), _site_label(chosen))
    site = _pick(active, rng)
    return _stage({site: [lfn for lfn in lfns if replicas[lfn][site] != DISK]})


def _stage(by_site: Mapping[str, list[str]]) -> Stage:
    site = max(sorted(by_site), key=lambda s: len(by_site[s]))
    files = tuple(lfn for s in sorted(by_site) for lfn in by_site[s])
    return Stage(site, files, tuple((s, tuple(by_site[s])) for s in sorted(by_site)))


def _pick(options: Sequence[str], rng: np.random.Generator | None) -> str:
    return options[int(rng.integers(len(options)))] if rng is not None and len(options) > 1 else options[0]


def _site_label(sites: Sequence[str], online_sites: Sequence[str] = ()) -> str:
    """__setJobSite: ANY, the site, Group.<domain> / MultipleInput for data sites, else Multiple."""
    if not sites:
        return "ANY"
    if len(sites) == 1:
        return sites[0]
    if len(online_sites) == 1:
        return "Group." + ".".join(online_sites[0].split(".")[1:])
    return "MultipleInput" if online_sites else "Multiple"


# ----------------------------------------------------------------------------------- SiteDirector
def site_director_pilots(
    free_slots: int,
    max_waiting_pilots: int,
    waiting_pilots: int,
    waiting_jobs: int,
    max_pilots: int = MAX_PILOTS_TO_SUBMIT,
) -> int:
    """Pilots to submit to one queue this cycle.

    ``free_slots`` = MaxTotalJobs - pilots already at the CE (waiting + running);
    ``waiting_jobs`` = jobs in the TQs matching the CE. The CE offers
    min(free_slots, MaxWaitingJobs - waiting pilots) slots (0 when either is used up), the
    director wants pilots for the waiting jobs not yet covered by a waiting pilot, and sends at
    most ``max_pilots`` (MaxPilotsToSubmit).
    """
    slots = min(free_slots, max_waiting_pilots - waiting_pilots)
    if slots <= 0:
        return 0
    needed = max(0, waiting_jobs - waiting_pilots)
    return max(0, min(max_pilots, slots, needed))


# ----------------------------------------------------------------------------------- TaskManagerPlugin
def _split(value: str | Iterable[str] | None, sep: str = ",") -> list[str]:
    """DIRACCommon List.fromChar for strings; lists pass through."""
    if not value:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(sep) if part.strip()]
    return list(value)


def by_se_sites(
    target_se: str | Iterable[str] | None,
    sites_for_se: Callable[[str], Iterable[str]] | Mapping[str, Iterable[str]],
) -> set[str]:
    """TaskManagerPlugin._BySE: the union of the sites of the task's TargetSEs; none for "Unknown"/empty."""
    ses = _split(target_se)
    if not ses or ses == ["Unknown"]:
        return set()
    lookup = sites_for_se.get if isinstance(sites_for_se, Mapping) else sites_for_se
    sites: set[str] = set()
    for se in ses:
        sites.update(lookup(se) or ())
    return sites


def by_job_type(
    job_type: str,
    target_se: str | Iterable[str] | None,
    all_sites: Iterable[str],
    sites_for_se: Callable[[str], Iterable[str]] | Mapping[str, Iterable[str]],
    exclude: Iterable[str] = (),
    allow: Mapping[str, str | Iterable[str]] | None = None,
    auto_added_sites: Iterable[str] = (),
    tiers_with_storage: Iterable[str] = (),
    job_type_auto_added_sites: Iterable[str] | None = None,
) -> set[str]:
    """TaskManagerPlugin._ByJobType over Operations JobTypeMapping.

    Start from every site, drop ``exclude`` (all of them for "ALL"), then add each ``allow``
    destination (``{dest: from-sites}``) whose from-site is among the BySE sites, or always when
    BySE gives none. ``auto_added_sites`` (JobTypeMapping/AutoAddedSites, "WithStorage" = every tier
    with storage) let a site help itself; ``job_type_auto_added_sites`` (JobTypeMapping/<type>/
    AutoAddedSites) replaces them when given, and is not expanded, as in DIRAC.
    """
    if not job_type:
        raise RuntimeError("No jobType specified")
    dest = set(all_sites)
    excluded = set(exclude)
    if "ALL" in excluded:
        dest = set()
    else:
        dest -= excluded
    auto = [s for s in auto_added_sites if s != "WithStorage"]
    if "WithStorage" in auto_added_sites:
        auto += list(tiers_with_storage)
    if job_type_auto_added_sites is not None:
        auto = list(job_type_auto_added_sites)
    allowed = {site: set(_split(sources)) for site, sources in (allow or {}).items()}
    for site in auto:
        allowed.setdefault(site, set()).add(site)
    task_sites = by_se_sites(target_se, sites_for_se)
    for site, sources in allowed.items():
        if any(not task_sites or source in task_sites for source in sources):
            dest.add(site)
    return dest


def handle_destination(job_site: str | None, plugin_sites: Collection[str]) -> list[str] | None:
    """WorkflowTasks._handleDestination: the job's Site (';'-list, default ANY) AND the plugin's sites.

    An empty plugin result keeps the job's Site. None means an empty intersection: the task is
    not submitted (it stays Reserved and is retried). The result is sorted for reproducibility.
    """
    sites = _split(job_site, ";") or ["ANY"]
    if not plugin_sites:
        return sites
    if sites == ["ANY"]:
        return sorted(plugin_sites)
    return sorted(set(plugin_sites) & set(sites)) or None
