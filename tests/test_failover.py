"""Killed jobs and CTADIRAC's TransformationFailoverAgent (issue 11 item 12).

DIRAC's MonitorFiles (WorkflowTasks.getSubmittedFileStatus) maps Done -> Processed and Failed -> Unused
and leaves a Killed job's files Assigned; CTADIRAC's failover agent Reassign is what frees them: ALL files
of the Failed/Killed tasks that still hold an Assigned file, forced Unused, at most MaxReassign+1 times
per LFN; its Flush needs tasks when there are a group's worth of Unused files.
"""

from __future__ import annotations

from conftest import minimal
from twin.build import build_world
from twin.dirac.wms import job_status as js
from twin.invariants import files_stuck_assigned
from twin.world import World


def world_for(**overrides) -> World:
    return build_world(minimal(**overrides))


def kill_a_running_processing_job(world: World) -> tuple[int, list[str]]:
    """Advance until a processing job runs, kill it (as an operator would); its TaskID and input LFNs."""
    while True:
        world.sim.env.run(until=world.sim.now + 300)
        running = [job for job in world.wms.jobdb.jobs_in(js.RUNNING) if job.job_group == 2]
        if running:
            job = running[0]
            world.wms.kill(job, "Killed by the operator")
            return int(job.task_name[9:]), list(job.input_data)


def file_states(world: World, trans_id: int, lfns: list[str]) -> set[str]:
    with world.services.unmetered():
        files = world.tsdb.getTransformationFiles({"TransformationID": trans_id, "LFN": lfns})["Value"]
    return {f["Status"] for f in files}


def test_a_killed_jobs_files_stay_assigned_and_are_reported_stuck():
    world = world_for()
    _, lfns = kill_a_running_processing_job(world)
    world.sim.env.run(until=world.sim.now + 4 * 3600)
    assert file_states(world, 2, lfns) == {"Assigned"}
    with world.services.unmetered():
        assert files_stuck_assigned(world) == len(lfns)
        assert not world.is_finished(2)


def test_failover_reassign_frees_the_files_of_killed_tasks_and_the_work_completes():
    world = world_for(**{"dirac.failover_reassign_types": ["DataReprocessing"]})
    task_id, lfns = kill_a_running_processing_job(world)
    while not world.all_finished() and world.sim.now < 4 * 86400:
        world.sim.env.run(until=world.sim.now + 600)
    with world.services.unmetered():
        files = world.tsdb.getTransformationStats(2)["Value"]
        task = world.tsdb.getTransformationTasks({"TransformationID": 2, "TaskID": task_id})["Value"][0]
    assert files["Processed"] == files["Total"] == 60
    assert task["ExternalStatus"] == "Killed" and world.all_finished()
    assert all(world.failover.reassigned[lfn] == 1 for lfn in lfns)


def test_reassign_takes_every_file_of_the_failed_task_and_counts_per_lfn():
    world = world_for(**{"dirac.failover_reassign_types": ["DataReprocessing"], "dirac.failover_max_reassign": 1})
    world.run()
    tsdb, failover = world.tsdb, world.failover
    with world.services.unmetered():
        lfns = [f["LFN"] for f in tsdb.getTransformationFiles({"TransformationID": 2, "TaskID": 1})["Value"]]
        tsdb.setTaskStatus(2, 1, "Killed")
        rounds = []
        for _ in range(3):  # one file Assigned again, the others Processed: the task still holds a file
            tsdb.setFileStatusForTransformation(2, "Assigned", lfns[:1], force=True)
            failover._reassign(2)
            rounds.append(file_states(world, 2, lfns))
    assert len(lfns) == 5
    assert rounds[:2] == [{"Unused"}, {"Unused"}]  # all five, Processed ones included (forced)
    assert rounds[2] == {"Assigned", "Unused"}  # MaxReassign 1: each LFN at most twice
    assert failover.reassigned[lfns[0]] == 2


def test_failover_flushes_a_full_group_only_when_the_transformation_has_tasks():
    world = world_for(**{"dirac.failover_flush_types": ["DataReprocessing"]})
    world.sim.env.run(until=1.0)
    with world.services.unmetered():
        world.tsdb.addFilesToTransformation(2, [f"/late/{i}.dat" for i in range(5)])
        trans = world.tsdb.getTransformation(2, extraParams=True)["Value"]
        assert world.failover._should_flush(trans, []) is False  # 5 Unused >= GroupSize 5, no task yet
        world.tsdb.setFileStatusForTransformation(2, "Problematic", ["/late/0.dat", "/late/1.dat"], force=True)
        assert world.failover._should_flush(trans, []) is True  # 3 Unused < GroupSize: flush, tasks or not
