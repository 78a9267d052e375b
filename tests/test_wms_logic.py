"""WMS logic: job state machine, JobDB, TaskQueueDB/Matcher/Limiter, JobScheduling, StalledJobAgent."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.dirac.wms import job_status as js
from twin.dirac.wms import taskqueue as taskqueue_module
from twin.dirac.wms.job_status import JOB_STATE_MACHINE, JOB_STATES, next_state
from twin.dirac.wms.jobdb import MAX_RESCHEDULING_REACHED, Job, JobDB
from twin.dirac.wms.scheduling import (
    CACHED,
    DISK,
    TAPE,
    Fail,
    Hold,
    Stage,
    ToTaskQueue,
    by_job_type,
    by_se_sites,
    handle_destination,
    schedule_job,
    site_director_pilots,
)
from twin.dirac.wms.system import STOP_MARGIN_S, cpu_work_left, watchdog_cpu_kill_after
from twin.dirac.wms.stalled import (
    FAIL,
    MARK_STALLED,
    RESCHEDULE,
    SET_RESCHEDULED,
    STALLED_PILOT_NOT_RUNNING,
    StalledConfig,
    run_stalled_job_agent,
    stalled_job_actions,
)
from twin.dirac.wms.taskqueue import (
    Limiter,
    TaskQueueDB,
    fit_cpu_time_to_segment,
    real_priority,
    request_job,
)

CNAF, DESY, PIC = "LCG.CNAF.it", "LCG.DESY-ZEUTHEN.de", "LCG.PIC.es"
DAY = 86400


def waiting_job(db: JobDB, now: float = 0.0, **attrs) -> Job:
    """A job submitted and moved to Waiting, as after JobScheduling."""
    attrs.setdefault("job_type", "MCSimulation")
    attrs.setdefault("owner_group", "cta_prod")
    job = db.submit(now, **attrs)
    db.set_status(job, js.CHECKING, "JobScheduling", now)
    db.set_status(job, js.WAITING, "Pilot Agent Submission", now)
    return job


def pilot(site: str = CNAF, cpu: float = 2 * DAY, **extra) -> dict:
    return {"Site": site, "CPUTime": cpu, **extra}


# ======================================================================================= state machine
ALL_PAIRS = [(a, b) for a in JOB_STATES for b in JOB_STATES]


@pytest.mark.parametrize(("current", "proposed"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_every_transition_follows_the_dirac_table(current: str, proposed: str) -> None:
    allowed = proposed == current or proposed in JOB_STATE_MACHINE[current] or current == js.DELETED
    state, accepted = next_state(current, proposed)
    assert accepted is allowed
    assert state == (proposed if allowed else current)  # a refused proposal keeps the current state
    assert next_state(current, proposed, force=True) == (proposed, True)


@pytest.mark.dirac
def test_table_matches_dirac_when_available() -> None:
    """Differential check against the genuine DIRACCommon (PYTHONPATH to an unpacked wheel)."""
    dirac = pytest.importorskip("DIRACCommon.WorkloadManagementSystem.Client.JobStatus")
    assert tuple(dirac.JOB_STATES) == JOB_STATES
    for current, proposed in ALL_PAIRS:
        got = dirac.JobsStateMachine(current).getNextState(proposed)["Value"]
        assert next_state(current, proposed)[0] == got, (current, proposed)


def test_state_machine_rejects_unknown_states_and_lists_final_states() -> None:
    with pytest.raises(ValueError):
        next_state(js.RUNNING, "Sleeping")
    assert js.JOB_FINAL_STATES == {js.DONE, js.COMPLETED, js.FAILED, js.KILLED}
    assert js.JOB_REALLY_FINAL_STATES == {js.DELETED}


# ======================================================================================= JobDB
def test_set_status_applies_machine_counters_indexes_and_callback() -> None:
    events = []
    db = JobDB(on_status=lambda job, old, new, now: events.append((job.job_id, old, new, now)))
    job = db.submit(10.0, job_type="MCSimulation", sites=[CNAF])
    assert (job.job_id, job.status, job.site) == (1, js.RECEIVED, CNAF)
    assert db.set_status(job, js.RUNNING, "bogus", 11.0) is False  # Received -> Running refused
    assert job.status == js.RECEIVED and job.minor_status == "bogus" and events == []
    db.set_status(job, js.CHECKING, "JobPath", 12.0)
    db.set_status(job, js.WAITING, "Pilot Agent Submission", 13.0)
    db.set_status(job, js.MATCHED, "Assigned", 14.0, site=PIC)
    db.set_status(job, js.RUNNING, "Application", 15.0)
    assert job.start_time == 15.0 and job.heartbeat_time == 15.0 and job.last_update_time == 15.0
    assert [e[2] for e in events] == [js.CHECKING, js.WAITING, js.MATCHED, js.RUNNING]
    assert list(db.jobs_in(js.RUNNING)) == [job] and db.count(js.WAITING) == 0
    assert db.count_at(PIC, js.RUNNING) == 1 and db.count_at(CNAF, js.WAITING) == 0
    assert db.running_by_job_type(PIC) == {"MCSimulation": 1}
    db.set_status(job, js.DONE, "Execution Complete", 20.0)
    assert job.end_time == 20.0 and db.counters() == {js.DONE: 1}
    assert db.running_by_job_type(PIC) == {"MCSimulation": 0}
    db.remove(job)
    assert len(db) == 0 and db.counters() == {} and db.site_counters() == {}


def test_heartbeat_restores_running_from_stalled() -> None:
    db = JobDB()
    job = waiting_job(db)
    db.set_status(job, js.MATCHED, "Assigned", 1.0, site=CNAF)
    db.heartbeat(job, 2.0)
    assert job.status == js.RUNNING
    db.set_status(job, js.STALLED, None, 3.0)
    db.heartbeat(job, 4.0)
    assert job.status == js.RUNNING and job.heartbeat_time == 4.0


def test_reschedule_fails_the_job_at_the_fourth_reschedule() -> None:
    db = JobDB()
    job = waiting_job(db, sites=[CNAF, PIC])
    for n in (1, 2, 3):
        db.set_status(job, js.CHECKING, None, 0.0)
        db.set_status(job, js.WAITING, None, 0.0)
        db.set_status(job, js.MATCHED, "Assigned", 0.0, site=CNAF)
        assert db.reschedule(job, now=100.0 * n) is True
        assert (job.status, job.minor_status, job.reschedule_counter) == (js.RECEIVED, "Job Rescheduled", n)
        assert job.reschedule_time == 100.0 * n and job.site == "Multiple"
    db.set_status(job, js.CHECKING, None, 0.0)
    db.set_status(job, js.WAITING, None, 0.0)
    db.set_status(job, js.MATCHED, "Assigned", 0.0, site=CNAF)
    assert db.reschedule(job, now=400.0) is False
    assert (job.status, job.minor_status, job.reschedule_counter) == (js.FAILED, MAX_RESCHEDULING_REACHED, 3)


def test_job_record_memory_is_bounded() -> None:
    """Bytes per job with tracemalloc: the record alone, and the JobDB with its indexes."""
    n = 20000
    lfns = tuple(f"/ctao/MC/prod/run{i:06d}.simtel.zst" for i in range(n))  # owned by the TS, shared
    db = JobDB()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    records = [
        Job(i, job_type="MCSimulation", now=float(i), owner_group="cta_prod", job_group=7, input_data=(lfns[i],))
        for i in range(n)
    ]
    middle = tracemalloc.take_snapshot()
    for i in range(n):
        job = db.submit(float(i), job_type="MCSimulation", owner_group="cta_prod", job_group=7, input_data=(lfns[i],))
        db.set_status(job, js.CHECKING, "JobScheduling", float(i) + 0.5)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_record = sum(s.size_diff for s in middle.compare_to(before, "filename")) / n
    per_db_job = sum(s.size_diff for s in after.compare_to(middle, "filename")) / n
    assert len(records) == n
    assert per_record <= 400, per_record
    assert per_db_job <= 600, per_db_job


# ======================================================================================= task queues
def test_identical_requirements_share_a_task_queue() -> None:
    db, tqdb = JobDB(), TaskQueueDB()
    a = waiting_job(db, sites=[CNAF], cpu_time=3000)
    b = waiting_job(db, sites=[CNAF], cpu_time=3500)  # same 1 h segment
    c = waiting_job(db, sites=[CNAF], cpu_time=4000)  # 6 h segment
    d = waiting_job(db, sites=[PIC], cpu_time=3000)
    e = waiting_job(db, sites=[CNAF], cpu_time=3000, owner_group="cta_user")
    f = waiting_job(db, sites=[CNAF], cpu_time=3000, memory_mb=4000)
    tq_ids = [tqdb.insert(job).tq_id for job in (a, b, c, d, e, f)]
    assert tq_ids[0] == tq_ids[1] and len(set(tq_ids)) == 5
    assert fit_cpu_time_to_segment(3000) == 3600 and fit_cpu_time_to_segment(2e6) == int(12.5 * DAY)
    assert tqdb.remove(a) and not tqdb.remove(a) and a.tq_id is None and len(tqdb) == 5


def test_full_task_queue_spills_into_a_new_one_with_summed_priority() -> None:
    db, tqdb = JobDB(), TaskQueueDB(max_jobs_in_tq=3)
    tqs = [tqdb.insert(waiting_job(db)).tq_id for _ in range(7)]
    assert tqs == [1, 1, 1, 2, 2, 2, 3]
    # share 1000 split over 3 TQs of mean RealPriority 1, then summed: identical definitions
    assert [tq.priority for tq in tqdb.tqs.values()] == [1000.0, 1000.0, 1000.0]
    assert tqdb.insert(waiting_job(db)).tq_id == 3  # the emptiest TQ, not the newest
    tqdb.remove(db.get(1))
    tqdb.remove(db.get(2))
    assert tqdb.insert(waiting_job(db)).tq_id == 1


def test_priorities_follow_shares_and_job_priority() -> None:
    db, tqdb = JobDB(), TaskQueueDB({"cta_prod": 1000, "cta_user": 10})
    mc = tqdb.insert(waiting_job(db, priority=1))
    merge = tqdb.insert(waiting_job(db, job_type="Merge", priority=3))
    user = tqdb.insert(waiting_job(db, owner_group="cta_user", priority=0))
    assert (mc.priority, merge.priority, user.priority) == (250.0, 750.0, 10.0)
    assert (real_priority(0), real_priority(1), real_priority(7.9), real_priority(10)) == (1e-5, 1, 7, 1e6)
    tqdb.set_group_share("cta_prod", 4000)
    assert (mc.priority, merge.priority) == (1000.0, 3000.0)


def test_matching_respects_site_banned_sites_cpu_processors_ram_and_job_type() -> None:
    db, tqdb = JobDB(), TaskQueueDB()
    jobs = {
        "site": waiting_job(db, sites=[PIC]),
        "banned": waiting_job(db, banned_sites=[CNAF]),
        "cpu": waiting_job(db, cpu_time=3 * DAY),
        "procs": waiting_job(db, processors=8),
        "ram": waiting_job(db, memory_mb=16000),
        "type": waiting_job(db, job_type="Merge"),
    }
    tq_of = {tqdb.insert(job).tq_id: name for name, job in jobs.items()}

    def matching(site: str, **resource) -> set[str]:
        return {tq_of[tq.tq_id] for tq in tqdb.matching_task_queues(pilot(site, **resource))}

    narrow = dict(cpu=2 * DAY, NumberOfProcessors=4, MaxRAM=8000, JobType=["MCSimulation"])
    assert matching(CNAF, **narrow) == set()
    assert matching(PIC, **narrow) == {"site", "banned"}
    assert matching(CNAF, **{**narrow, "cpu": 3 * DAY}) == {"cpu"}
    assert matching(CNAF, **{**narrow, "NumberOfProcessors": 8}) == {"procs"}
    assert matching(CNAF, **{**narrow, "MaxRAM": 16000}) == {"ram"}
    assert matching(CNAF, **{**narrow, "JobType": "ANY"}) == {"type"}
    assert matching(CNAF, cpu=3 * DAY) == {"cpu", "ram", "type"}  # no MaxRAM given: no RAM condition
    rng = np.random.default_rng(1)
    assert tqdb.match(pilot(CNAF, **narrow), rng) is None
    assert tqdb.match(pilot(DESY, **narrow), rng) is jobs["banned"]
    assert tqdb.match(pilot(DESY, **narrow), rng) is None


def test_banned_site_in_the_mask_only_gets_test_jobs() -> None:
    db, tqdb = JobDB(), TaskQueueDB(site_mask={PIC})
    rng = np.random.default_rng(2)
    tqdb.insert(waiting_job(db))
    test_job = waiting_job(db, job_type="Test")
    tqdb.insert(test_job)
    assert tqdb.match(pilot(CNAF), rng) is test_job
    assert tqdb.match(pilot(CNAF), rng) is None
    assert tqdb.count_matching(pilot(CNAF)) == 1  # the SiteDirector's count ignores the mask


def test_match_takes_one_of_the_fifty_lowest_job_ids() -> None:
    db, tqdb = JobDB(), TaskQueueDB(max_jobs_in_tq=None)
    rng = np.random.default_rng(3)
    for _ in range(300):
        tqdb.insert(waiting_job(db))
    queued = set(range(1, 301))
    for _ in range(250):
        job = tqdb.match(pilot(), rng)
        lowest = sorted(queued)[:50]
        assert job.job_id in lowest
        queued.remove(job.job_id)
    assert len(tqdb) == 50


def _p_first(priorities: list[float], i: int) -> float:
    """P(X_i is the least) for X_j = U_j / p_j: the ORDER BY RAND()/Priority winner."""
    steps = 200000
    t = (np.arange(steps) + 0.5) / (steps * priorities[i])
    survival = np.ones_like(t)
    for j, p in enumerate(priorities):
        if j != i:
            survival *= np.clip(1 - p * t, 0, None)
    return float(np.sum(priorities[i] * survival) / (steps * priorities[i]))


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    return abs(hits / n - p) <= 4.5 * math.sqrt(p * (1 - p) / n)


def test_weighted_tq_draw_follows_rand_over_priority() -> None:
    """Shares 3:1 do not give 3/4: with ORDER BY RAND()/Priority the 3x TQ wins 1 - 1/(2*3) = 5/6."""
    db = JobDB()
    tqdb = TaskQueueDB({"big": 3000, "small": 1000})
    rng = np.random.default_rng(4)
    big = [tqdb.insert(waiting_job(db, owner_group="big")) for _ in range(5)][0]
    small = [tqdb.insert(waiting_job(db, owner_group="small")) for _ in range(5)][0]
    assert (big.priority, small.priority) == (3000.0, 1000.0)
    expected = _p_first([3.0, 1.0], 0)
    assert expected == pytest.approx(5 / 6, abs=1e-6)
    n, hits = 20000, 0
    for _ in range(n):
        job = tqdb.match(pilot(), rng)
        hits += job.owner_group == "big"
        tqdb.insert(job)
    assert _binomial_ok(hits, n, expected), hits / n


def test_weighted_draw_with_three_task_queues() -> None:
    db = JobDB()
    shares = {"a": 5000, "b": 2000, "c": 1000}
    tqdb = TaskQueueDB(shares)
    rng = np.random.default_rng(5)
    for group in shares:
        tqdb.insert(waiting_job(db, owner_group=group))
    n = 20000
    counts = dict.fromkeys(shares, 0)
    for _ in range(n):
        job = tqdb.match(pilot(), rng)
        counts[job.owner_group] += 1
        tqdb.insert(job)
    for i, group in enumerate(shares):
        assert _binomial_ok(counts[group], n, _p_first([5.0, 2.0, 1.0], i)), (group, counts)


def test_priority_class_is_drawn_per_job_row() -> None:
    """RAND()/RealPriority over rows: 3 jobs of priority 1 against 1 job of priority 3."""
    db, tqdb = JobDB(), TaskQueueDB()
    rng = np.random.default_rng(6)
    for prio in (1, 1, 1, 3):
        tqdb.insert(waiting_job(db, priority=prio))
    # X_low = min of 3 uniforms (survival (1-t)^3), X_high = U/3 (survival 1-3t)
    steps = 200000
    t = (np.arange(steps) + 0.5) / (steps * 3)
    expected_high = float(np.sum(3 * (1 - t) ** 3) / (steps * 3))
    n, hits = 20000, 0
    for _ in range(n):
        job = tqdb.match(pilot(), rng)
        hits += job.priority == 3
        tqdb.insert(job)
    assert _binomial_ok(hits, n, expected_high), (hits / n, expected_high)


def test_running_limit_and_matching_delay() -> None:
    db = JobDB()
    limiter = Limiter(
        running_limits={CNAF: {"Merge": 2}},
        running_counts=db.running_by_job_type,
        matching_delays={PIC: {"MCSimulation": (100.0, 1)}},
    )
    tqdb = TaskQueueDB(limiter=limiter)
    rng = np.random.default_rng(7)
    for _ in range(4):
        tqdb.insert(waiting_job(db, job_type="Merge"))
    for _ in range(3):
        tqdb.insert(waiting_job(db))
    merge_only = pilot(CNAF, JobType="Merge")
    assert request_job(tqdb, db, merge_only, rng, 0.0).job_type == "Merge"
    assert request_job(tqdb, db, merge_only, rng, 0.0).job_type == "Merge"
    assert tqdb.count_matching(merge_only) == 0 and request_job(tqdb, db, merge_only, rng, 0.0) is None
    assert db.running_by_job_type(CNAF) == {"Merge": 2}
    mc_only = pilot(PIC, JobType="MCSimulation")
    assert request_job(tqdb, db, mc_only, rng, 0.0) is not None
    assert request_job(tqdb, db, mc_only, rng, 50.0) is None  # token bucket empty
    assert request_job(tqdb, db, mc_only, rng, 100.0) is not None


def test_request_job_sets_matched_and_drops_jobs_that_are_not_waiting() -> None:
    db, tqdb = JobDB(), TaskQueueDB()
    rng = np.random.default_rng(8)
    job = waiting_job(db)
    tqdb.insert(job)
    matched = request_job(tqdb, db, pilot(PIC), rng, 5.0)
    assert matched is job and (job.status, job.minor_status, job.site) == (js.MATCHED, "Assigned", PIC)
    killed = waiting_job(db)
    tqdb.insert(killed)
    db.set_status(killed, js.KILLED, "Marked for termination", 6.0)
    assert request_job(tqdb, db, pilot(), rng, 7.0) is None and len(tqdb) == 0


def _calls_per_match(waiting: int, matches: int = 2000) -> float:
    """Python function calls per TaskQueueDB.match with `waiting` jobs queued (an operation count)."""
    import sys

    db, tqdb = JobDB(), TaskQueueDB()
    rng = np.random.default_rng(9)
    sites = [CNAF, DESY, PIC, "LCG.IN2P3-CC.fr", "LCG.CSCS.ch"]
    for i in range(waiting):
        job = db.submit(0.0, job_type=("MCSimulation", "Merge")[i % 2], sites=[sites[i % 5]] if i % 3 else [])
        db.set_status(job, js.WAITING, None, 0.0)
        tqdb.insert(job)
    calls = 0

    def count(_frame, event, _arg) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        for i in range(matches):
            assert tqdb.match(pilot(sites[i % 5]), rng) is not None
    finally:
        sys.setprofile(None)
    return calls / matches


@pytest.mark.skipif(not taskqueue_module.__file__.endswith(".py"),
                    reason="compiled (mypyc) taskqueue: sys.setprofile sees no call inside compiled code, nothing to count")
def test_match_work_does_not_grow_with_the_waiting_jobs() -> None:
    # Counted, not timed (wall time: benchmarks/queue_and_match.py): a match that scanned jobs
    # would make ~10x the calls at 100k waiting jobs as at 10k.
    small, large = _calls_per_match(10_000), _calls_per_match(100_000)
    assert large < 1.5 * small, (small, large)


# ======================================================================================= hypothesis
SITES = (CNAF, DESY, PIC)
RESOURCES = [
    pilot(site, cpu=cpu, NumberOfProcessors=procs, MaxRAM=ram)
    for site in SITES
    for cpu in (3600, 2 * DAY)
    for procs in (1, 4)
    for ram in (2000, 8000)
]

JOB_PROTOTYPES = [
    {"sites": set(), "banned_sites": set(), "job_type": "MCSimulation", "owner_group": "cta_prod"},
    {"sites": {CNAF}, "banned_sites": set(), "job_type": "MCSimulation", "owner_group": "cta_prod"},
    {"sites": {CNAF, PIC}, "banned_sites": set(), "job_type": "Merge", "owner_group": "cta_prod"},
    {"sites": set(), "banned_sites": {DESY}, "job_type": "Merge", "owner_group": "cta_user"},
    {"sites": set(), "banned_sites": set(), "job_type": "MCSimulation", "cpu_time": DAY, "processors": 4},
    {"sites": {PIC}, "banned_sites": set(), "job_type": "MCSimulation", "cpu_time": 7200, "memory_mb": 4000},
]
job_specs = st.builds(
    lambda proto, priority: {**proto, "priority": priority},
    st.sampled_from(JOB_PROTOTYPES),
    st.sampled_from([1, 1, 1, 1, 3, 0, 10]),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), job_specs),
        st.tuples(st.just("requeue"), st.integers(0, 10**6)),
        st.tuples(st.just("remove"), st.integers(0, 10**6)),
        st.tuples(st.just("match"), st.integers(0, len(RESOURCES) - 1)),
    ),
    min_size=20,
    max_size=150,
)


def _brute_force_accepts(job: Job, resource: dict) -> bool:
    site = resource["Site"]
    return (
        (not job.sites or site in job.sites)
        and site not in job.banned_sites
        and fit_cpu_time_to_segment(job.cpu_time) <= resource["CPUTime"]
        and (job.processors <= 1 or job.processors <= resource["NumberOfProcessors"])
        and job.memory_mb <= resource["MaxRAM"]
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, seed=st.integers(0, 2**32 - 1), cap=st.sampled_from([2, 5, None]))
def test_random_insert_remove_match_keep_counts_exact(ops, seed, cap) -> None:
    db, tqdb = JobDB(), TaskQueueDB(max_jobs_in_tq=cap, jobs_per_try=3)
    rng = np.random.default_rng(seed)
    queued: dict[int, Job] = {}
    out: list[Job] = []  # matched or removed, may be queued again
    for op, arg in ops:
        if op == "submit":
            job = waiting_job(db, **arg)
            tqdb.insert(job)
            queued[job.job_id] = job
        elif op == "requeue" and out:
            job = out.pop(arg % len(out))
            tqdb.insert(job)
            queued[job.job_id] = job
        elif op == "remove" and queued:
            job = queued.pop(sorted(queued)[arg % len(queued)])
            assert tqdb.remove(job)
            out.append(job)
        elif op == "match":
            resource = RESOURCES[arg]
            tq_of = {j.job_id: j.tq_id for j in queued.values()}
            job = tqdb.match(resource, rng)
            if job is None:
                assert not any(_brute_force_accepts(j, resource) for j in queued.values())
            else:
                assert queued.pop(job.job_id) is job, "a job came out twice or was never queued"
                assert _brute_force_accepts(job, resource)
                same_class = [
                    j.job_id for j in queued.values() if tq_of[j.job_id] == tq_of[job.job_id] and j.priority == job.priority
                ]
                assert sum(jid < job.job_id for jid in same_class) < 3, "not among the jobs_per_try lowest IDs"
                out.append(job)
        for resource in RESOURCES[::5]:
            assert tqdb.count_matching(resource) == sum(_brute_force_accepts(j, resource) for j in queued.values())
        assert len(tqdb) == len(queued) == sum(tq.count for tq in tqdb.tqs.values())
        assert all(tq.count > 0 for tq in tqdb.tqs.values())
        assert all(j.tq_id in tqdb.tqs for j in queued.values()) and all(j.tq_id is None for j in out)


# ======================================================================================= JobScheduling
class _J:
    """The attributes schedule_job reads."""

    def __init__(self, sites=(), banned=(), counter=0, resched=None, lfns=()):
        self.sites, self.banned_sites = frozenset(sites), frozenset(banned)
        self.reschedule_counter, self.reschedule_time, self.input_data = counter, resched, tuple(lfns)


MASK = {CNAF, DESY, PIC}


@pytest.mark.parametrize(
    ("counter", "waited", "held_for"),
    [(1, 59, 60), (1, 60, None), (2, 100, 180), (3, 299, 300), (4, 599, 600), (9, 599, 600), (9, 601, None)],
)
def test_schedule_holds_rescheduled_jobs(counter, waited, held_for) -> None:
    decision = schedule_job(_J(counter=counter, resched=1000.0), {}, MASK, 1000.0 + waited, production=True)
    if held_for is None:
        assert decision == ToTaskQueue((), "ANY")
    else:
        assert decision == Hold(1000.0 + waited + held_for, f"On Hold: after rescheduling {counter}")


def test_schedule_site_requirements() -> None:
    assert schedule_job(_J([CNAF], [CNAF]), {}, MASK, 0.0, production=True) == Fail("Impossible site requirement")
    held = schedule_job(_J(["LCG.Down.org"]), {}, MASK, 10.0, production=True)
    assert isinstance(held, Hold) and held.until == 310.0
    assert schedule_job(_J([CNAF, "LCG.Down.org", "ANY"]), {}, MASK, 0.0, production=True) == ToTaskQueue((CNAF,), CNAF)
    assert schedule_job(_J([CNAF, PIC]), {}, MASK, 0.0, production=False) == ToTaskQueue((CNAF, PIC), "Multiple")


def test_schedule_input_data_checks() -> None:
    lfns = ["/a", "/b"]
    missing = schedule_job(_J(lfns=lfns), {"/a": {CNAF: DISK}}, MASK, 0.0, production=True)
    assert missing == Fail("Input data not available")
    apart = schedule_job(_J(lfns=lfns), {"/a": {CNAF: DISK}, "/b": {PIC: DISK}}, MASK, 0.0, production=True)
    assert apart == Fail("No candidate sites available")
    absent = schedule_job(_J(lfns=lfns), {"/a": {CNAF: DISK}}, MASK, 0.0, production=True, check_input_data=False)
    assert absent == Fail("File not in FC")


def test_schedule_production_jobs() -> None:
    rng = np.random.default_rng(10)
    on_disk = {"/a": {CNAF: DISK, PIC: TAPE}, "/b": {CNAF: DISK, PIC: TAPE}}
    job = _J([PIC, CNAF], lfns=on_disk)
    assert schedule_job(job, on_disk, MASK, 0.0, production=True) == ToTaskQueue((CNAF, PIC), "Group.CNAF.it")
    anywhere = schedule_job(_J(lfns=on_disk), on_disk, MASK, 0.0, production=True)
    assert anywhere == ToTaskQueue((), "ANY")  # locality is the TaskManagerPlugin's business
    mixed = {"/a": {CNAF: DISK, PIC: TAPE}, "/b": {PIC: TAPE, DESY: TAPE}, "/c": {PIC: TAPE, DESY: CACHED}}
    staged = schedule_job(_J(lfns=mixed, sites=[PIC]), mixed, MASK, 0.0, production=True, rng=rng)
    assert staged == Stage(DESY, ("/b",), ((DESY, ("/b",)),))  # the tape copy at a site with online files


def test_schedule_user_jobs_with_input_data() -> None:
    rng = np.random.default_rng(11)
    replicas = {"/a": {CNAF: DISK, PIC: TAPE, DESY: DISK}, "/b": {CNAF: DISK, PIC: TAPE, DESY: TAPE}}
    job = _J(lfns=replicas)
    assert schedule_job(job, replicas, MASK, 0.0, production=False) == ToTaskQueue((CNAF,), CNAF)
    assert schedule_job(_J(lfns=replicas, sites=[PIC, DESY]), replicas, MASK, 0.0, production=False, rng=rng) == (
        Stage(DESY, ("/b",), ((DESY, ("/b",)),))  # DESY has the most files on disk
    )
    assert schedule_job(_J(lfns=replicas, banned=[CNAF, DESY, PIC]), replicas, MASK, 0.0, production=False) == Fail(
        "Impossible InputData * Site requirements"
    )
    held = schedule_job(job, replicas, {PIC, DESY}, 5.0, production=False)
    assert held == Hold(305.0, f"Sites {CNAF} are inactive or banned")


# ======================================================================================= SiteDirector, destinations
@pytest.mark.parametrize(
    ("free", "max_waiting", "waiting_pilots", "waiting_jobs", "expected"),
    [
        (10, 10, 0, 500, 10),  # queue defaults MaxTotalJobs = MaxWaitingJobs = 10
        (10, 10, 4, 500, 6),
        (3, 10, 4, 500, 3),
        (10, 10, 10, 500, 0),
        (0, 10, 0, 500, 0),
        (500, 500, 20, 25, 5),  # pilots only for jobs not yet covered by a waiting pilot
        (5000, 5000, 0, 10**6, 100),  # MaxPilotsToSubmit
        (50, 50, 30, 10, 0),
    ],
)
def test_site_director_pilots(free, max_waiting, waiting_pilots, waiting_jobs, expected) -> None:
    assert site_director_pilots(free, max_waiting, waiting_pilots, waiting_jobs) == expected


SE_SITES = {"CNAF-Disk": [CNAF], "PIC-Disk": [PIC], "DESY-ZN-Disk": [DESY]}


def test_task_destination_by_se_and_intersection() -> None:
    assert by_se_sites("CNAF-Disk, PIC-Disk", SE_SITES) == {CNAF, PIC}
    assert by_se_sites("Unknown", SE_SITES) == set() and by_se_sites("", SE_SITES) == set()
    assert handle_destination("", {CNAF, PIC}) == [CNAF, PIC]
    assert handle_destination(f"{PIC}; {DESY}", {CNAF, PIC}) == [PIC]
    assert handle_destination(f"{DESY}", {CNAF, PIC}) is None  # not submitted
    assert handle_destination(f"{DESY};{PIC}", set()) == [DESY, PIC]
    assert handle_destination(None, set()) == ["ANY"]


def test_task_destination_by_job_type() -> None:
    common = dict(all_sites=[CNAF, PIC, DESY], sites_for_se=SE_SITES.get)
    assert by_job_type("MCSimulation", "Unknown", **common) == {CNAF, PIC, DESY}
    merge = by_job_type("Merge", "CNAF-Disk", exclude=["ALL"], allow={DESY: CNAF, PIC: DESY}, **common)
    assert merge == {DESY}
    auto = by_job_type(
        "Merge", "", exclude=["ALL"], auto_added_sites=["WithStorage"], tiers_with_storage=[PIC], **common
    )
    assert auto == {PIC}
    with pytest.raises(RuntimeError):
        by_job_type("", "", **common)


# ======================================================================================= StalledJobAgent
def _running(db: JobDB, started: float, site: str = CNAF) -> Job:
    job = waiting_job(db, started)
    db.set_status(job, js.MATCHED, "Assigned", started, site=site)
    db.set_status(job, js.RUNNING, "Application", started)
    return job


def test_stalled_time_defaults_come_from_watchdog_cycles() -> None:
    config = StalledConfig.from_options()
    assert (config.stalled_time, config.failed_time) == (4500, 11700)


def test_running_jobs_stall_then_fail() -> None:
    db = JobDB()
    quiet, chatty = _running(db, 0.0), _running(db, 0.0)
    db.heartbeat(chatty, 4000.0)
    assert stalled_job_actions(db, 4500.0) == []  # not *more* than 4500 s
    run_stalled_job_agent(db, 4501.0)
    assert quiet.status == js.STALLED and chatty.status == js.RUNNING
    assert quiet.last_update_time == 4501.0  # the agent's update refreshes LastUpdateTime
    assert [(a.action, a.job) for a in stalled_job_actions(db, 4501.0 + 11700.0)] == [(MARK_STALLED, chatty)]
    actions = run_stalled_job_agent(db, 4502.0 + 11700.0)
    assert [(a.action, a.job) for a in actions] == [(MARK_STALLED, chatty), (FAIL, quiet)]
    assert (quiet.status, quiet.minor_status) == (js.FAILED, "Stalling for more than 11700 sec")


def test_stalled_job_with_dead_pilot_fails_next_cycle_or_is_rescheduled() -> None:
    db = JobDB()
    dead, moved = _running(db, 0.0), _running(db, 0.0, site=PIC)
    config = StalledConfig(reschedule_sites=frozenset({PIC}))
    first = run_stalled_job_agent(db, 5000.0, config, pilot_running=lambda job: False)
    assert [a.action for a in first] == [MARK_STALLED, MARK_STALLED]  # marked, not yet failed
    second = run_stalled_job_agent(db, 8600.0, config, pilot_running=lambda job: False)
    assert [(a.action, a.job) for a in second] == [(FAIL, dead), (SET_RESCHEDULED, moved)]
    assert (dead.status, dead.minor_status) == (js.FAILED, STALLED_PILOT_NOT_RUNNING)
    assert moved.status == js.RESCHEDULED
    third = run_stalled_job_agent(db, 8600.0 + 601.0, config)
    assert [a.action for a in third] == [RESCHEDULE]
    assert (moved.status, moved.reschedule_counter) == (js.RECEIVED, 1)


def test_stuck_matched_and_submitting_jobs() -> None:
    db, tqdb = JobDB(), TaskQueueDB()
    matched = waiting_job(db, 0.0)
    db.set_status(matched, js.MATCHED, "Assigned", 0.0, site=CNAF)
    submitting = db.submit(0.0, job_type="MCSimulation", status=js.SUBMITTING, minor_status="Bulk transaction")
    fresh = db.submit(100.0, job_type="MCSimulation", status=js.SUBMITTING, minor_status="Bulk transaction")
    run_stalled_job_agent(db, 301.0, tqdb=tqdb)
    assert (submitting.status, submitting.minor_status) == (js.FAILED, "Bulk transaction")
    assert fresh.status == js.SUBMITTING and matched.status == js.MATCHED
    run_stalled_job_agent(db, 7201.0, tqdb=tqdb)
    assert (matched.status, matched.minor_status, matched.reschedule_counter) == (js.RECEIVED, "Job Rescheduled", 1)
    assert fresh.status == js.FAILED


# ======================================================================================= CPU work (JobAgent, Watchdog)
def _queue(lifetime: float = 3 * DAY, hs06: float = 10.0, processors: int = 1):
    """A real CE queue (compiled code checks the types it is given), alone at its site."""
    from twin.engine.simulation import Simulation
    from twin.grid.site import Site
    from twin.scenario import schema

    ce = schema.ComputingElement(name="ce", slots=1, hs06_per_core=hs06, processors=processors, pilot_lifetime=lifetime)
    return Site(Simulation(1), schema.Site(name=CNAF, ces=[ce])).ces["ce"]


def _slot(wall_left: float, hs06: float, processors: int = 1):
    """What the JobAgent reads of its pilot: wall-clock left (at time 0) and CPUNormalizationFactor."""
    from twin.grid.site import RUNNING, Pilot

    slot = Pilot(1, _queue(hs06=hs06, processors=processors))
    slot.status, slot.start, slot.end_time = RUNNING, 0.0, wall_left
    return slot


def test_pilot_offers_normalised_cpu_work_so_a_two_day_queue_matches_a_three_day_cputime_job() -> None:
    """JobAgent._computeCPUWorkLeft: (wall left - StopMargin) x HS06; the JDL CPUTime is HS06-s too."""
    slot = _slot(wall_left=2 * DAY, hs06=10.0)
    assert cpu_work_left(slot, 0.0) == (2 * DAY - STOP_MARGIN_S) * 10.0
    db, tqdb = JobDB(), TaskQueueDB()
    mc = waiting_job(db, cpu_time=259200)  # Prod5b MC CPUTime: the 3 d segment
    tqdb.insert(mc)
    rng = np.random.default_rng(3)
    assert tqdb.match(pilot(CNAF, cpu=2 * DAY), rng) is None  # wall seconds (the old offer) match nothing
    assert tqdb.match(pilot(CNAF, cpu=int(cpu_work_left(slot, 0.0))), rng) is mc
    tqdb.insert(mc)
    late = _slot(wall_left=259200 / 10.0 + STOP_MARGIN_S - 1, hs06=10.0)  # just too little work left
    assert tqdb.match(pilot(CNAF, cpu=int(cpu_work_left(late, 0.0))), rng) is None


def test_site_director_counts_jobs_against_the_queue_cpu_time_in_hs06_seconds() -> None:
    """QueueUtilities.computeQueueCPULimit: maxCPUTime x SI00/250, capped at 12.5 days of wall-clock."""
    def queue(lifetime: float, hs06: float) -> int:
        return _queue(lifetime, hs06).queue_cpu_time

    assert queue(2 * DAY, 11.0) == 2 * DAY * 11
    assert queue(30 * DAY, 10.0) == int(12.5 * DAY * 10)
    db, tqdb = JobDB(), TaskQueueDB()
    tqdb.insert(waiting_job(db, cpu_time=432000))  # EvnDisp: 6 d segment = 518400 HS06-s
    assert tqdb.count_matching(pilot(CNAF, cpu=queue(DAY, 10.0))) == 1
    assert tqdb.count_matching(pilot(CNAF, cpu=queue(DAY / 2, 10.0))) == 0


@pytest.mark.parametrize(("cpu_time", "job_procs", "slot_procs", "expected"),
                         [(259200, 1, 1, 259200 * 1.2), (36000, 8, 8, 36000 * 1.2 / 8), (36000, 8, 4, 36000 * 1.2 / 4)])
def test_watchdog_kills_on_raw_cpu_over_cputime_plus_margin(cpu_time, job_procs, slot_procs, expected) -> None:
    """Watchdog.__checkCPULimit: raw (not normalised) CPU seconds > CPUTime x (1 + 20 %)."""
    job = JobDB().submit(0.0, job_type="MCSimulation", cpu_time=cpu_time, processors=job_procs)
    assert watchdog_cpu_kill_after(job, _slot(DAY, 10.0, slot_procs)) == pytest.approx(expected)


def _one_twentieth_baseline(duration: str, pilot_lifetime: str):
    """The Prod5b baseline with slots and MC task counts divided by 20."""
    from twin.scenario.loader import load_scenario

    path = "scenarios/prod5b-baseline.yaml"
    base = load_scenario(path)
    overrides: dict[str, object] = {"run.duration": duration}
    for site in base.topology.sites:
        for i, ce in enumerate(site.ces):
            overrides[f"topology.sites[{site.name}].ces[{i}].slots"] = max(1, ce.slots // 20)
            overrides[f"topology.sites[{site.name}].ces[{i}].pilot_lifetime"] = pilot_lifetime
    for production in base.workload.productions:
        for step in production.steps:
            if step.max_tasks:
                overrides[f"workload.productions[{production.name}].steps[{step.name}].max_tasks"] = step.max_tasks // 20
    return load_scenario(path, overrides)


def test_two_day_pilots_do_not_starve_the_baseline_at_one_twentieth_scale() -> None:
    """Issue 11 item 2: with CPUTime compared to wall seconds, no Prod5b MC job (CPUTime 3 d) matched
    a 2-day pilot. Matching on normalised work, MC runs at close to the slots' capacity."""
    from twin.runner import simulate

    scenario = _one_twentieth_baseline("2d", "2d")
    result = simulate(scenario)
    done = sum(t["tasks"].get("Done", 0) for t in result.summary["transformations"] if t["type"] == "MCSimulation")
    hs06_slots = sum(ce.slots * ce.hs06_per_core for site in scenario.topology.sites for ce in site.ces)
    mc_cpu = max(step.job.cpu_hs06s for p in scenario.workload.productions for step in p.steps if step.type == "MCSimulation")
    capacity = hs06_slots * 2 * DAY / mc_cpu  # MC jobs the slots could finish in 2 days at the dearest MC
    assert done >= 0.7 * capacity, (done, capacity)


# ======================================================================================= configuration that must be used
def _sites_that_ran(**overrides) -> dict[str, dict[str, int]]:
    from conftest import minimal

    from twin.runner import simulate

    settings = {"run.duration": "12h", "workload.productions[test].steps[MCSimulation].max_tasks": 30}
    scenario = minimal(**{**settings, **overrides})
    return {site: counts for site, counts in simulate(scenario).summary["jobs"]["by_site"].items() if site != "ANY"}


def test_by_job_type_destination_plugin_applies_the_job_type_mapping() -> None:
    """dirac.destination_plugin: ByJobType calls TaskManagerPlugin._ByJobType over Operations JobTypeMapping."""
    assert set(_sites_that_ran()) == {"LCG.IN2P3-CC.fr", "LCG.PIC.es"}
    excluded = _sites_that_ran(**{"dirac.destination_plugin": "ByJobType",
                                  "dirac.operations": {"JobTypeMapping/MCSimulation/Exclude": "LCG.IN2P3-CC.fr"}})
    assert set(excluded) == {"LCG.PIC.es"}
    helped = _sites_that_ran(**{"dirac.destination_plugin": "ByJobType",
                                "dirac.operations": {"JobTypeMapping/MCSimulation/Exclude": "ALL",
                                                     "JobTypeMapping/MCSimulation/Allow/LCG.IN2P3-CC.fr": "LCG.PIC.es"}})
    assert set(helped) == {"LCG.IN2P3-CC.fr"}  # MC has no TargetSE: an Allow entry applies whatever its source


def test_job_destination_sets_the_job_site() -> None:
    """JobModel.destination is the JDL Site (Job.setDestination), ANDed with the plugin's sites."""
    assert set(_sites_that_ran(**{"workload.productions[test].steps[MCSimulation].job.destination": ["LCG.PIC.es"]})) == {"LCG.PIC.es"}


def test_matching_delay_from_the_scenario_spaces_matches_at_a_site() -> None:
    """Operations JobScheduling/MatchingDelay/<Site>/JobType/<type>: one match per interval (burst 1),
    so 12 h let PIC (20 slots) match at most 13 MC jobs; without the delay it fills its slots at once."""
    def at_pic(**overrides) -> int:
        return sum(_sites_that_ran(**{"workload.productions[test].steps[MCSimulation].max_tasks": 60}, **overrides)
                   .get("LCG.PIC.es", {}).values())

    assert at_pic() >= 20
    assert 1 <= at_pic(**{"dirac.matching_delays": {"LCG.PIC.es": {"MCSimulation": {"interval": "1h"}}}}) <= 13
    assert at_pic(**{"dirac.matching_delays": {"LCG.PIC.es": {"MCSimulation": {"interval": "1h", "burst": 20}}}}) >= 20


def test_unknown_destination_or_limit_site_is_refused_with_its_key_path() -> None:
    from conftest import minimal

    from twin.errors import TwinError

    with pytest.raises(TwinError, match=r"job\.destination\[0\].*site"):
        minimal(**{"workload.productions[test].steps[MCSimulation].job.destination": ["LCG.Nowhere.xx"]})
    with pytest.raises(TwinError, match=r"dirac\.matching_delays\.LCG\.Nowhere\.xx"):
        minimal(**{"dirac.matching_delays": {"LCG.Nowhere.xx": {"MCSimulation": {"interval": 60}}}})


def test_fts_settings_without_an_fts_path_are_refused_not_ignored() -> None:
    """In direct mode no RMS path submits FTS jobs (DMMode copies only), so FTS job size and retries would be
    silently ignored (fts3 mode uses them: tests/test_fts3.py)."""
    from conftest import minimal

    from twin.errors import TwinError

    for key in ("max_files_per_fts_job", "max_attempts_per_file"):
        with pytest.raises(TwinError, match=rf"topology\.network\.{key}: expected no value with dirac\.replication_mode: direct"):
            minimal(**{f"topology.network.{key}": 10})
    with pytest.raises(TwinError, match=r"dirac\.fts3_agent: expected no value"):
        minimal(**{"dirac.fts3_agent": {"polling_time": 60}})
