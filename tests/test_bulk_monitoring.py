"""The task managers monitor tasks and files in bulk, as DIRAC's TaskManagerAgentBase does:
one setTaskStatus per (transformation, new status) and cycle, one UPDATE per task behind it."""

from __future__ import annotations

from collections import Counter

from conftest import minimal
from twin.build import build_world
from twin.dirac.wms import job_status as js


def _run_recording_set_task_status():
    world = build_world(minimal())
    calls: list[tuple[float, int, str, int]] = []
    tsdb = world.tsdb
    original = tsdb.setTaskStatus

    def recording(trans_id, task_ids, status, now=None):
        ids = task_ids if isinstance(task_ids, list) else [task_ids]
        calls.append((world.sim.now, trans_id, status, len(ids)))
        return original(trans_id, task_ids, status, now=now)

    tsdb.setTaskStatus = recording
    world.run()
    return world, calls


def test_one_set_task_status_per_transformation_and_status_per_cycle():
    world, calls = _run_recording_set_task_status()
    assert calls, "MonitorTasks never updated a task"
    groups = Counter((now, trans_id, status) for now, trans_id, status, _ in calls)
    assert max(groups.values()) == 1  # never two calls for the same status of a transformation in one cycle
    assert any(n > 1 for *_, n in calls)  # some calls carry several tasks (the minimal production runs 60)
    db = world.grid.databases["TransformationDB"]
    assert db.queries_by_op["setTaskStatus"] == sum(n for *_, n in calls)  # one UPDATE per task
    assert tsdb_calls(world) == len(calls)  # one RPC per bulk call


def test_bulk_monitoring_leaves_tasks_with_their_jobs_final_status():
    world, _ = _run_recording_set_task_status()
    done = world.wms.jobdb.count(js.DONE)
    assert done > 0
    with world.services.unmetered():
        tasks = world.tsdb.getTransformationTasks({"ExternalStatus": js.DONE})["Value"]
    assert len(tasks) >= done - sum(len(q) for q in world.ts.task_updates.values())


def tsdb_calls(world) -> int:
    return world.tsdb.counters["setTaskStatus"]
