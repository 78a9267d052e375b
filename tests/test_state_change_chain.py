"""The per-state-change chain of a job (issue 13 part 3): the shortcuts equal the plain computations they replace.

Each test compares an optimised path with the plain one it stands for (hypothesis where inputs vary): the
job template of a transformation against per-task destination and CPU-work draws, the pilot match without a
resource dict against ``match`` with one, the live site mask against the set of up sites, the Done-task bits
against ``_task_key``, the TransformationDB's condition filter and task dictionaries against their plain forms.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

from twin.dirac.transformation.db import TransformationDB, _order_page, _select
from twin.dirac.wms.jobdb import JobDB, _task_key
from twin.dirac.wms.scheduling import handle_destination
from twin.dirac.wms.system import _JobTemplate, _UpSites
from twin.dirac.wms.taskqueue import TaskQueueDB, request_job, request_pilot_job


# ---------------------------------------------------------------- the job template of a transformation
def _runtime(cpu_hs06s: float, cpu_cv: float, per_input: bool, destination: list[str], priority: int | None = None):
    model = SimpleNamespace(cpu_hs06s=cpu_hs06s, cpu_cv=cpu_cv, cpu_per_input=per_input, destination=destination,
                            cpu_time_limit=86400.0, memory_mb=2000, processors=1)
    step = SimpleNamespace(job=model, priority=priority)
    production = SimpleNamespace(job_priority=lambda s: s.priority if s.priority is not None else 1)
    return SimpleNamespace(step=step, job_type="MCSimulation", production=production)


def _plain_cpu_work(model, rng: np.random.Generator, n_inputs: int) -> float:
    """The per-task draw the template replaces (WorkloadManagement._sample_cpu before the template)."""
    mean = model.cpu_hs06s * (max(1, n_inputs) if model.cpu_per_input else 1)
    if model.cpu_cv <= 0:
        return mean
    sigma2 = math.log(1 + model.cpu_cv ** 2)
    return float(rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2)))


@settings(max_examples=60, deadline=None)
@given(mean=hs.floats(1.0, 1e6), cv=hs.sampled_from([0.0, 0.01, 0.2, 1.0, 7.5]), per_input=hs.booleans(),
       inputs=hs.lists(hs.integers(0, 12), min_size=1, max_size=8), seed=hs.integers(0, 2**32 - 1))
def test_template_cpu_work_draws_what_the_per_task_formula_draws(mean, cv, per_input, inputs, seed) -> None:
    runtime = _runtime(mean, cv, per_input, [])
    template = _JobTemplate(runtime, lambda job_type, se: set())
    fast, plain = np.random.default_rng(seed), np.random.default_rng(seed)
    assert [template.cpu_work(fast, n) for n in inputs] == [_plain_cpu_work(runtime.step.job, plain, n) for n in inputs]
    assert fast.random() == plain.random()  # the stream is left where the plain draws leave it


@settings(max_examples=60, deadline=None)
@given(destination=hs.lists(hs.sampled_from(["A", "B", "C"]), max_size=2, unique=True),
       targets=hs.lists(hs.sampled_from(["SE-A", "SE-B", "SE-AB", "Unknown", "SE-X"]), min_size=1, max_size=12))
def test_template_destination_is_the_plugin_and_job_site_intersection_once_per_target_se(destination, targets) -> None:
    sites_of = {"SE-A": {"A"}, "SE-B": {"B"}, "SE-AB": {"A", "B"}, "Unknown": set(), "SE-X": {"X"}}
    asked: list[str] = []

    def plugin_sites(job_type: str, target_se: str) -> set[str]:
        asked.append(target_se)
        return set(sites_of[target_se])

    template = _JobTemplate(_runtime(100.0, 0.0, False, destination), plugin_sites)
    for target in targets:
        plain = handle_destination(";".join(destination) or "ANY", sites_of[target])
        expected = None if plain is None else [] if plain == ["ANY"] else plain
        found = template.sites(target)
        assert (None if found is None else list(found)) == expected
    assert sorted(asked) == sorted(set(targets))  # the static CS answers once per TargetSE


def test_template_takes_the_steps_priority_and_job_limits() -> None:
    template = _JobTemplate(_runtime(100.0, 0.0, False, ["A"], priority=7), lambda job_type, se: set())
    assert (template.priority, template.cpu_time, template.memory_mb, template.processors) == (7, 86400, 2000, 1)
    assert template.sites("Unknown") == ("A",)


# ---------------------------------------------------------------- the pilot's match without a resource dict
def _filled_tqdb(jobs: list[tuple[str | None, int, int, int]]) -> tuple[TaskQueueDB, JobDB]:
    db, tqdb = JobDB(), TaskQueueDB({"cta_prod": 1000.0}, site_mask={"A", "B"})  # a pilot at C: Test jobs only
    for site, cpu_time, memory, priority in jobs:
        job = db.submit(0.0, job_type="Test" if priority == 3 else "MCSimulation", owner_group="cta_prod",
                        sites=[site] if site else [],
                        cpu_time=cpu_time, memory_mb=memory, priority=priority, status="Waiting")
        tqdb.insert(job)
    return tqdb, db


@settings(max_examples=40, deadline=None)
@given(jobs=hs.lists(hs.tuples(hs.sampled_from([None, "A", "B"]), hs.sampled_from([300, 3600, 86400, 200000]),
                               hs.sampled_from([0, 2000, 8000]), hs.integers(0, 3)), max_size=60),
       pilots=hs.lists(hs.tuples(hs.sampled_from(["A", "B", "C"]), hs.integers(0, 300000),
                                 hs.sampled_from([None, 4000, 16000]), hs.sampled_from([None, 1, 4])), max_size=40),
       seed=hs.integers(0, 2**32 - 1))
def test_pilot_match_takes_the_jobs_that_match_with_a_resource_dict_takes(jobs, pilots, seed) -> None:
    (fast_tq, fast_db), (plain_tq, plain_db) = _filled_tqdb(jobs), _filled_tqdb(jobs)
    fast_rng, plain_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    for now, (site, cpu_time, ram, processors) in enumerate(pilots):
        fast = request_pilot_job(fast_tq, fast_db, site, cpu_time, ram, processors, fast_rng, float(now))
        resource = {"Site": site, "CPUTime": cpu_time, "MaxRAM": ram, "NumberOfProcessors": processors}
        plain = request_job(plain_tq, plain_db, resource, plain_rng, float(now))
        assert (fast and (fast.job_id, fast.status, fast.site)) == (plain and (plain.job_id, plain.status, plain.site))
    assert len(fast_tq) == len(plain_tq) and fast_db.counters() == plain_db.counters()
    assert fast_rng.random() == plain_rng.random()


# ---------------------------------------------------------------- the live site mask
def test_site_mask_follows_the_sites_status_as_the_set_of_up_sites_would() -> None:
    sites = {name: SimpleNamespace(up=True) for name in ("A", "B", "C")}
    mask = _UpSites(sites)
    sites["B"].up = False
    assert ("A" in mask, "B" in mask, "Z" in mask) == (True, False, False)
    assert set(mask) == {name for name, site in sites.items() if site.up} and len(mask) == 2
    sites["B"].up, sites["C"].up = True, False  # read when asked, never a stale copy
    assert "B" in mask and "C" not in mask and set(mask) == {"A", "B"}


# ---------------------------------------------------------------- Done tasks of retired jobs
@settings(max_examples=60, deadline=None)
@given(jobs=hs.lists(hs.tuples(hs.sampled_from([3, 4, "5", None]), hs.integers(0, 40)), min_size=1, max_size=12),
       moves=hs.lists(hs.tuples(hs.integers(0, 11), hs.sampled_from(["Done", "Failed", "Killed", "Received"])),
                      max_size=40))
def test_done_task_bits_answer_what_task_keys_of_the_retired_done_jobs_say(jobs, moves) -> None:
    db = JobDB(retain_final=False)
    made = [db.submit(0.0, job_type="User") if group is None else
            db.submit(0.0, job_type="MCSimulation", job_group=group, task_name=f"{int(group):08d}_{task:08d}")
            for group, task in jobs]
    for at, (index, status) in enumerate(moves):
        job = made[index % len(made)]
        db.set_status(job, status, None, float(at), force=True)
        retired_done = {_task_key(j) for j in made if j.status == "Done" and db.get(j.job_id) is None}
        assert db.finished_done_tasks().tolist() == sorted(retired_done)


# ---------------------------------------------------------------- TransformationDB conditions and task dictionaries
def _plain_select(items, get, cond, older, newer, time_stamp):
    """The WHERE clause as written before the inlined form."""
    out = []
    for item in items:
        if all((get(item, a) in w if isinstance(w, (list, tuple, set)) else get(item, a) == w) for a, w in cond.items()):
            if time_stamp and (newer is not None and get(item, time_stamp) < newer
                               or older is not None and get(item, time_stamp) >= older):
                continue
            out.append(item)
    return out


_ROW = hs.fixed_dictionaries({"Status": hs.sampled_from(["Active", "Stopped", "Flush"]), "Type": hs.sampled_from(["MC", "Merge"]),
                              "T": hs.integers(0, 5)})


@settings(max_examples=80, deadline=None)
@given(rows=hs.lists(_ROW, max_size=12),
       cond=hs.dictionaries(hs.sampled_from(["Status", "Type"]),
                            hs.one_of(hs.sampled_from(["Active", "MC", "Flush"]), hs.lists(hs.sampled_from(["Active", "Stopped", "Merge"]))),
                            max_size=2),
       older=hs.one_of(hs.none(), hs.integers(0, 6)), newer=hs.one_of(hs.none(), hs.integers(0, 6)),
       time_stamp=hs.sampled_from([None, "", "T"]))
def test_select_is_the_plain_where_clause(rows, cond, older, newer, time_stamp) -> None:
    get = dict.get
    assert _select(rows, get, cond, older, newer, time_stamp) == _plain_select(rows, get, cond, older, newer, time_stamp)
    assert _order_page(list(rows), get, None, None, None) == rows
    assert _order_page(list(rows), get, "T:DESC", 3, 1) == sorted(rows, key=lambda r: r["T"], reverse=True)[1:4]


@settings(max_examples=40, deadline=None)
@given(sizes=hs.lists(hs.integers(0, 4), min_size=1, max_size=10), take=hs.integers(1, 12))
def test_tasks_to_submit_carry_each_tasks_own_input_vector(sizes, take) -> None:
    db = TransformationDB()
    tid = db.addTransformation("P", "", "", "Processing", "Standard", "Manual", "")["Value"]
    lfns = [f"/vo/f{i}" for i in range(sum(sizes))]
    db.addFilesToTransformation(tid, lfns, now=0.0)
    start = 0
    for n in sizes:
        db.addTaskForTransformation(tid, lfns[start:start + n], "SE-1", now=0.0)
        start += n
    vectors = db.getTaskInputVector(tid, list(range(1, len(sizes) + 1)))["Value"]
    jobs = db.getTasksToSubmit(tid, take, now=100.0)["Value"]["JobDictionary"]
    assert list(jobs) == list(range(1, min(take, len(sizes)) + 1))
    assert {task_id: job["InputData"] for task_id, job in jobs.items()} == {t: vectors.get(t, "") for t in jobs}


def test_template_cpu_work_keeps_the_variance_term_bit_for_bit() -> None:
    """CVs whose log(1 + cv^2) does not survive sqrt and squaring: the template keeps sigma^2 itself."""
    for cv in (0.01, 0.7, 1.0, 2.0, 3.3):
        runtime = _runtime(36000.0, cv, True, [])
        template = _JobTemplate(runtime, lambda job_type, se: set())
        fast, plain = np.random.default_rng(5), np.random.default_rng(5)
        assert [template.cpu_work(fast, n) for n in range(1, 200)] == [_plain_cpu_work(runtime.step.job, plain, n) for n in range(1, 200)]


@settings(max_examples=80, deadline=None)
@given(runs=hs.lists(hs.tuples(hs.integers(0, 6), hs.integers(0, 4)), max_size=10), cutoff=hs.integers(-1, 7))
def test_creation_time_rows_below_a_cutoff_are_the_rows_the_per_row_test_finds(runs, cutoff) -> None:
    from twin.dirac.transformation.db import _Runs

    column = _Runs()
    for value, count in runs:
        column.append(float(value), count)
    plain = [row for row in range(len(column)) if column[row] < cutoff]
    below = column.rows_below(float(cutoff))
    ordered = all(a <= b for a, b in zip([v for v, c in runs], [v for v, c in runs][1:]))
    assert below is None if not ordered else plain == list(range(below))


@settings(max_examples=60, deadline=None)
@given(times=hs.lists(hs.sampled_from([0.0, 50.0, 100.0, 200.0]), min_size=1, max_size=8), now=hs.sampled_from([60.0, 140.0, 300.0]),
       take=hs.integers(1, 10))
def test_tasks_to_submit_are_the_created_tasks_older_than_30s_whatever_the_creation_order(times, now, take) -> None:
    db = TransformationDB()
    mc = db.addTransformation("MC", "", "", "MCSimulation", "Standard", "Manual", "")["Value"]
    for t in times:  # creation times out of order too (only a test clock goes back)
        db.extendTransformation(mc, 1, now=t)
    expected = [task_id for task_id, t in enumerate(times, 1) if t < now - 30.0][:take]
    assert list(db.getTasksToSubmit(mc, take, now=now)["Value"]["JobDictionary"]) == expected


@given(ids=hs.lists(hs.one_of(hs.integers(-2, 8), hs.booleans(), hs.just(2.0), hs.just("3")), max_size=6))
def test_task_id_check_accepts_what_the_per_id_check_accepts(ids) -> None:
    from twin.dirac.transformation.db import _is_task_id

    db = TransformationDB()
    mc = db.addTransformation("MC", "", "", "MCSimulation", "Standard", "Manual", "")["Value"]
    db.extendTransformation(mc, 5, now=0.0)
    table = db._trans[mc].tasks  # noqa: SLF001
    assert table.valid(ids) == all(_is_task_id(task_id, 5) for task_id in ids)
    assert table.valid(iter(ids)) == table.valid(ids)


def test_resource_shapes_equal_in_fields_are_one_cache_key() -> None:
    from twin.dirac.wms.taskqueue import _ResourceShape

    def shape(site: str, ram: int | None) -> _ResourceShape:
        return _ResourceShape(site, 3600, 1, ram, None, frozenset({"cta_prod"}))

    cache = {shape("A", None): "a", shape("A", 4000): "a4"}
    assert cache[shape("A", None)] == "a" and cache[shape("A", 4000)] == "a4" and shape("B", None) not in cache


@settings(max_examples=60, deadline=None)
@given(ops=hs.lists(hs.tuples(hs.sampled_from(["submit", "Done", "Failed", "Received", "Running", "remove"]), hs.integers(0, 9)),
                    max_size=40))
def test_job_rows_are_the_live_records_plus_the_retired_ones(ops) -> None:
    db = JobDB(retain_final=False)
    made, removed = [db.submit(0.0, job_type="User")], set()
    for at, (op, index) in enumerate(ops):
        job = made[index % len(made)]
        if op == "submit":
            made.append(db.submit(float(at), job_type="User"))
        elif job.job_id in removed:  # JobCleaningAgent's removal is for good
            continue
        elif op == "remove":
            db.remove(job)
            removed.add(job.job_id)
        else:
            db.set_status(job, op, None, float(at), force=True)
        assert db.rows == len(db) == len(db.jobs) + sum(db._retired.values())  # noqa: SLF001 - the plain count
