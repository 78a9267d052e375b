"""The task managers monitor tasks and files in bulk, as DIRAC's TaskManagerAgentBase does:
one setTaskStatus per (transformation, new status) and cycle, one UPDATE per task behind it."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import minimal
from twin.build import build_world
from twin.dirac.transformation import agents
from twin.dirac.wms import job_status as js

#: Compiled (mypyc) agents check that the world's TransformationDB is one, so the recording proxy cannot stand in.
AGENTS_COMPILED = not agents.__file__.endswith(".py")


def _run_recording_set_task_status():
    world = build_world(minimal())
    calls: list[tuple[float, int, str, int]] = []
    world.tsdb = _RecordingTSDB(world.tsdb, world.sim, calls)  # the agents reach the DB through the world
    world.run()
    world.tsdb = world.tsdb.db
    return world, calls


class _RecordingTSDB:
    """The TransformationDB with its setTaskStatus calls recorded (a proxy: a compiled DB's methods cannot be patched)."""

    def __init__(self, db, sim, calls):
        self.db, self.sim, self.calls = db, sim, calls

    def setTaskStatus(self, trans_id, task_ids, status, now=None):
        ids = task_ids if isinstance(task_ids, list) else [task_ids]
        self.calls.append((self.sim.now, trans_id, status, len(ids)))
        return self.db.setTaskStatus(trans_id, task_ids, status, now=now)

    def __getattr__(self, name):
        return getattr(self.db, name)


@pytest.mark.skipif(AGENTS_COMPILED, reason="records the agents' calls through a proxy DB, which compiled agents refuse "
                                            "(they check its type); the same calls are checked in pure mode")
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
    world = build_world(minimal())
    world.run()
    done = world.wms.jobdb.count(js.DONE)
    assert done > 0
    with world.services.unmetered():
        tasks = world.tsdb.getTransformationTasks({"ExternalStatus": js.DONE})["Value"]
    assert len(tasks) >= done - sum(len(q) for q in world.ts.task_updates.values())


def tsdb_calls(world) -> int:
    return world.tsdb.counters["setTaskStatus"]


def test_a_failing_plugin_is_logged_and_the_run_goes_on(monkeypatch):
    """TransformationAgent: a plugin whose run() fails leaves its files Unused, logs plugin.error and makes no
    addTaskForTransformation call; the cycle goes on (it raised TypeError on the failed plugin's None tasks)."""
    from twin.dirac.returnvalues import S_ERROR
    from twin.dirac.transformation.runtime import TransformationRuntime

    class FailingPlugin:
        def __getattr__(self, name):
            return lambda *args, **kwargs: None

        def run(self):
            return S_ERROR("no tasks today")

    monkeypatch.setattr(TransformationRuntime, "make_plugin", lambda self: FailingPlugin())
    world = build_world(minimal(**{"run.duration": "1d"}))
    world.run()
    errors = world.sim.log.frame({"plugin.error": None})
    assert len(errors) > 0 and set(errors.detail.astype(str)) == {"no tasks today"}
    assert world.tsdb.counters["addTaskForTransformation"] == 0  # no task was created by the failed plugin
    processing = [t for t in world.tsdb.getTransformations()["Value"] if t["Type"] == "DataReprocessing"]
    assert processing and all(world.tsdb.getTransformationStats(t["TransformationID"])["Value"].get("Assigned", 0) == 0
                              for t in processing)
