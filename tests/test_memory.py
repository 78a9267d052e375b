"""Memory bounded by work in flight: final jobs leave the JobDB's records, nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

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
    # the compact columns hold what the invariants read of the records: status by job, Done tasks, work
    finished = lean.wms.jobdb.finished()
    records = sorted(kept.wms.jobdb.jobs.values(), key=lambda j: j.job_id)
    assert list(finished["job_id"]) == [j.job_id for j in records]
    assert list(finished["status"]) == [j.status for j in records]
    done_tasks = lean.wms.jobdb.finished_done_tasks()
    assert [f"{k >> 32:08d}_{k & 0xFFFFFFFF:08d}" for k in done_tasks.tolist()] == sorted(
        {j.task_name for j in records if j.status == "Done"})
    for status in ("Done", "Failed"):
        assert lean.wms.jobdb.finished_cpu_work(status) == pytest.approx(sum(j.cpu_work for j in records if j.status == status))


def test_a_retired_job_forced_back_is_a_record_again_and_counted_once():
    db = JobDB(retain_final=False)
    job = db.submit(0.0, job_type="MCSimulation", cpu_work=5.0)
    db.set_status(job, "Failed", "boom", 1.0, force=True)
    assert db.get(job.job_id) is None and db.counters() == {"Failed": 1} and len(db) == 1
    assert db.reschedule(job, 2.0)
    assert db.get(job.job_id) is job and db.counters() == {"Received": 1} and len(db) == 1
    assert len(db.finished()["job_id"]) == 0 and db.finished_cpu_work("Failed") == 0.0
    db.set_status(job, "Killed", "stop", 3.0)
    assert db.counters() == {"Killed": 1} and list(db.finished()["status"]) == ["Killed"]
    assert (db.finished_cpu_work("Failed"), db.finished_cpu_work("Killed")) == (0.0, 5.0)


def _task_job(db: JobDB, group: int | str, task: int):
    return db.submit(0.0, job_type="MCSimulation", job_group=group, task_name=f"{int(group):08d}_{task:08d}")


def test_done_tasks_are_a_multiset_of_bits_that_forgets_jobs_forced_back():
    db = JobDB(retain_final=False)
    first, second, other, user = _task_job(db, 3, 17), _task_job(db, 3, 17), _task_job(db, "4", 9), db.submit(0.0, job_type="User")
    for job in (first, second, other, user):
        db.set_status(job, "Done", None, 1.0, force=True)
    assert db.finished_done_tasks().tolist() == [-1, 3 << 32 | 17, 4 << 32 | 9]
    db.set_status(first, "Received", None, 2.0, force=True)  # forced back: its Done no longer counts...
    assert db.finished_done_tasks().tolist() == [-1, 3 << 32 | 17, 4 << 32 | 9]  # ...but `second` still is Done
    db.set_status(second, "Received", None, 2.0, force=True)
    assert db.finished_done_tasks().tolist() == [-1, 4 << 32 | 9]  # while live again, no Done job for task 17
    db.set_status(first, "Failed", None, 3.0, force=True)  # retires again: the stale Done is taken back
    assert db.finished_done_tasks().tolist() == [-1, 4 << 32 | 9]
    assert list(db.finished()["status"]) == ["Failed", "Done", "Done"] and list(db.finished()["job_id"]) == [1, 3, 4]
    codes, first = db.finished_codes()  # the same, one byte per job ID (second is live: 0)
    assert first == 1 and codes.tolist() == [2, 0, 1, 1]
    db.set_status(second, "Done", None, 4.0, force=True)
    assert db.finished_done_tasks().tolist() == [-1, 3 << 32 | 17, 4 << 32 | 9]
    assert db._finished.done_extra == {-1: 1}  # noqa: SLF001 - one bit per task, no per-job rows


def test_a_job_id_below_the_first_is_refused_not_written_over_another_job():
    from twin.dirac.wms.jobdb import _FinishedColumns

    columns = _FinishedColumns(first=5)
    job = JobDB(retain_final=False).submit(0.0, job_type="User")  # job id 1 < first: would index from the end
    job.status = "Done"
    with pytest.raises(ValueError, match="below the first job id 5"):
        columns.add(job)
    assert not columns.status


# ---------------------------------------------------------------- TransformationDB tasks as columns
def _mc_db(n: int):
    from twin.dirac.transformation.db import TransformationDB

    db = TransformationDB()
    trans_id = db.addTransformation("MC", "", "", "MCSimulation", "Standard", "Manual", "")["Value"]
    db.extendTransformation(trans_id, n, now=1.0)
    return db, trans_id


def test_task_external_ids_keep_their_text_whatever_is_stored():
    db, mc = _mc_db(5)
    for task_id, wms_id in zip(range(1, 6), [1234, "007", "job-7", 2**40, -5]):
        assert db.setTaskStatusAndWmsID(mc, task_id, "Submitted", wms_id, now=2.0)["OK"]
    tasks = db.getTransformationTasks({"TransformationID": mc})["Value"]
    assert [t["ExternalID"] for t in tasks] == ["1234", "007", "job-7", str(2**40), "-5"]
    db.setTaskStatusAndWmsID(mc, 3, "Submitted", 99)  # text replaced by a number
    assert db.getTransformationTasks({"TransformationID": mc, "TaskID": 3})["Value"][0]["ExternalID"] == "99"
    assert db._trans[mc].tasks.external_text == {2: "007", 4: str(2**40)}  # noqa: SLF001 - the ints are columns


def test_final_tasks_are_counted_not_indexed_and_still_found_by_status():
    db, mc = _mc_db(6)
    db.setTaskStatus(mc, [5, 2], "Submitted", now=2.0)
    db.setTaskStatus(mc, [4, 1, 5], "Done", now=3.0)
    db.setTaskStatus(mc, 3, "Failed", now=4.0)
    table = db._trans[mc].tasks  # noqa: SLF001
    assert "Done" not in table.by_status and table.unindexed == {"Done": 3, "Failed": 1}
    done = db.getTransformationTasks({"TransformationID": mc, "ExternalStatus": ["Done", "Submitted"]})["Value"]
    assert [(t["TaskID"], t["ExternalStatus"], t["LastUpdateTime"]) for t in done] == [
        (1, "Done", 3.0), (2, "Submitted", 2.0), (4, "Done", 3.0), (5, "Done", 3.0)]
    assert list(table.counts().items()) == [("Created", 1), ("Submitted", 1), ("Done", 3), ("Failed", 1)]  # first use
    db.setTaskStatus(mc, 3, "Waiting", now=5.0)  # a final task may move on: index and counts follow
    assert table.unindexed["Failed"] == 0 and list(table.by_status["Waiting"]) == [3]
    assert db.getTransformationTaskStats(mc)["Value"] == {
        "Created": 1, "Done": 3, "Submitted": 1, "Waiting": 1, "TotalCreated": 6}
    assert db.getTransformationTasks({"TransformationID": mc, "ExternalStatus": "Failed"})["Value"] == []


def test_task_inputs_are_one_flat_column():
    from twin.dirac.transformation.db import TransformationDB

    db = TransformationDB()
    trans_id = db.addTransformation("P", "", "", "Processing", "Standard", "Manual", "")["Value"]
    lfns = [f"/vo/f{i}" for i in range(5)]
    db.addFilesToTransformation(trans_id, lfns)
    for group in (lfns[:2], lfns[2:3], lfns[3:]):
        db.addTaskForTransformation(trans_id, group, "SE-1", now=1.0)
    vectors = db.getTaskInputVector(trans_id, [1, 2, 3])["Value"]
    assert vectors == {1: "/vo/f0;/vo/f1", 2: "/vo/f2", 3: "/vo/f3;/vo/f4"}
    table = db._trans[trans_id].tasks  # noqa: SLF001
    assert list(table.inputs_end) == [2, 3, 5] and len(table.inputs) == 5


@settings(deadline=None)
@given(values=hs.lists(hs.sampled_from([0.0, 1.5, 30.0, 31.0]), max_size=40), cut=hs.integers(0, 40))
def test_creation_times_as_runs_read_back_row_by_row(values, cut):
    from twin.dirac.transformation.db import _Runs

    column = _Runs()
    for value in values:
        column.append(value)
    assert len(column) == len(values) and [column[i] for i in range(len(values))] == values
    assert len(column.values) == sum(1 for i, v in enumerate(values) if not i or values[i - 1] != v)  # one per run
    cut = min(cut, len(values))
    del column[cut:]
    column.append(99.0)
    assert [column[i] for i in range(len(column))] == values[:cut] + [99.0]
    with pytest.raises(IndexError):
        column[len(column)]


def test_a_job_keeps_its_task_as_an_int_and_gives_back_its_name():
    db = JobDB()
    job = _task_job(db, 12, 345)
    assert (job.task_id, job.task_name) == (345, "00000012_00000345")
    assert db.submit(0.0, job_type="MCSimulation", job_group=12, task_id=7).task_name == "00000012_00000007"
    assert db.submit(0.0, job_type="User").task_name == ""
    for bad in ("00000013_00000345", "12_345", "00000012-00000345", "00000012_"):  # not "%08d_%08d" of (JobGroup, TaskID)
        with pytest.raises(ValueError, match="JobGroup"):
            db.submit(0.0, job_type="MCSimulation", job_group=12, task_name=bad)


def test_status_changes_follow_the_state_machine_whatever_was_asked_before():
    """JobDB remembers next_state's answers: every (current, proposed, force), asked twice, answers as the machine does."""
    from twin.dirac.wms import job_status as js

    db = JobDB()
    for _ in range(2):
        for current in js.JOB_STATES:
            for proposed in js.JOB_STATES:
                for force in (False, True):
                    job = db.submit(0.0, job_type="MCSimulation")
                    db.set_status(job, current, None, 1.0, force=True)
                    expected = js.next_state(current, proposed, force)
                    assert (db.set_status(job, proposed, "m", 2.0, force=force), job.status) == (expected[1], expected[0])
    assert sum(db.counters().values()) == len(db)


def test_unlisted_statuses_are_counted_and_still_found():
    """Waiting (like Received, Checking and the final statuses) is counted, not indexed: a waiting job is one
    dict entry. It is still counted per status and per site, and listed (in DB order) when asked."""
    from twin.dirac.wms import job_status as js
    from twin.dirac.wms.jobdb import LISTED_STATES

    assert js.WAITING not in LISTED_STATES and js.RUNNING in LISTED_STATES
    db = JobDB(retain_final=False)
    jobs = [db.submit(float(i), job_type="MCSimulation", sites=["S"]) for i in range(4)]
    for job in reversed(jobs[:3]):
        db.set_status(job, js.WAITING, None, 5.0, force=True)
    assert list(db.jobs_in(js.WAITING)) == jobs[:3] and db.count(js.WAITING) == 3 and db.count(js.RECEIVED) == 1
    db.set_status(jobs[1], js.MATCHED, None, 6.0)
    db.set_status(jobs[1], js.RUNNING, None, 7.0)
    assert list(db.jobs_in(js.RUNNING)) == [jobs[1]] and db.count_at("S", js.WAITING) == 2
    db.set_status(jobs[0], js.KILLED, None, 8.0)
    assert db.counters() == {js.RECEIVED: 1, js.WAITING: 1, js.RUNNING: 1, js.KILLED: 1} and len(db) == 4
    assert list(db.jobs_in(js.KILLED)) == [] and db.get(jobs[0].job_id) is None  # retired
