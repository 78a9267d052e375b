"""Memory bounded by work in flight: final jobs leave the JobDB's records, nothing else changes."""

from __future__ import annotations

import numpy as np

from tests.conftest import minimal
from twin.build import build_world
from twin.dirac.wms.jobdb import JobDB
from twin.summary import summarize


def _run(retain_final: bool, **overrides):
    world = build_world(minimal(**overrides))
    world.wms.jobdb.retain_final = retain_final
    world.run()
    return world, summarize(world)


def test_retiring_final_jobs_changes_no_event_and_no_count():
    overrides = {"workload.productions[test].steps[Processing].job.failure_prob": 0.3}
    kept, s_kept = _run(True, **overrides)
    lean, s_lean = _run(False, **overrides)
    assert kept.sim.log.digest() == lean.sim.log.digest()
    assert s_kept["jobs"] == s_lean["jobs"] and s_kept["invariants"] == s_lean["invariants"]
    assert s_lean["jobs"]["by_status"].get("Failed", 0) > 0
    # the records left memory; the compact columns hold what the records held
    assert len(lean.wms.jobdb.jobs) == 0 and len(kept.wms.jobdb.jobs) == s_kept["jobs"]["total"]
    finished = lean.wms.jobdb.finished()
    records = sorted(kept.wms.jobdb.jobs.values(), key=lambda j: j.job_id)
    order = np.argsort(finished["job_id"])
    assert list(finished["job_id"][order]) == [j.job_id for j in records]
    assert list(finished["status"][order]) == [j.status for j in records]
    assert np.allclose(finished["cpu_work"][order], [j.cpu_work for j in records])
    assert np.allclose(finished["end_time"][order], [j.end_time for j in records])
    assert [f"{g:08d}_{t:08d}" for g, t in zip(finished["job_group"][order], finished["task_id"][order])] == [j.task_name for j in records]


def test_a_retired_job_forced_back_is_a_record_again_and_counted_once():
    db = JobDB(retain_final=False)
    job = db.submit(0.0, job_type="MCSimulation")
    db.set_status(job, "Failed", "boom", 1.0, force=True)
    assert db.get(job.job_id) is None and db.counters() == {"Failed": 1} and len(db) == 1
    assert db.reschedule(job, 2.0)
    assert db.get(job.job_id) is job and db.counters() == {"Received": 1} and len(db) == 1
    assert len(db.finished()["job_id"]) == 0
    db.set_status(job, "Killed", "stop", 3.0)
    assert db.counters() == {"Killed": 1} and list(db.finished()["status"]) == ["Killed"]
