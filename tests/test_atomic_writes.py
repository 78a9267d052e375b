"""A simulated write takes effect only when its call completes (GUIDE: "a caller that dies or times out
first leaves no trace"): output registration, job submission, task creation and extension, each
checked while the database behind the call is down, and for callers that die during the call.
"""

from __future__ import annotations

from conftest import minimal
from twin.build import build_world
from twin.dirac.wms import job_status as js
from twin.scenario.schema import Fault
from twin.world import World


def world_with(*faults: Fault, **overrides) -> World:
    scenario = minimal(**overrides)
    scenario.faults = list(faults)
    world = build_world(scenario)
    world.wms.jobdb.retain_final = True  # these checks read final jobs' records (pilot, site), not only counts
    return world


def mc_outputs(world: World) -> list[str]:
    with world.services.unmetered():
        return world.catalog.find_files_by_metadata({"data_level": -1}, world.runtime(1).output_dir)


def test_outputs_appear_in_the_catalog_only_when_the_registration_call_returns():
    world = world_with(Fault(kind="db_down", target="FileCatalogDB", start=0.0, end=20000.0))
    world.sim.env.run(until=15000.0)
    waiting = [job for job in world.wms.jobdb.jobs.values() if job.status == js.COMPLETING]
    assert waiting, "MC jobs have transferred their outputs and wait for the catalog"
    assert mc_outputs(world) == [] and world.wms.outputs_registered == 0
    world.sim.env.run(until=30000.0)
    mc_done = [job for job in world.wms.jobdb.jobs.values() if job.job_group == 1 and job.status == js.DONE]
    assert len(mc_outputs(world)) == len(mc_done) == 60


def test_a_pilot_killed_while_its_registration_waits_leaves_no_output():
    """Issue 11 item 3: the catalog is down, the site goes down under the waiting pilots."""
    world = world_with(Fault(kind="db_down", target="FileCatalogDB", start=0.0, end=20000.0),
                       Fault(kind="site_down", target="LCG.PIC.es", start=10000.0, end=40000.0))
    world.sim.env.run(until=30000.0)
    done_tasks = {job.task_name for job in world.wms.jobdb.jobs.values() if job.status == js.DONE}
    registered = {lfn.rsplit("/", 1)[1].rsplit("_", 2)[0] for lfn in mc_outputs(world)}
    assert registered == {name for name in done_tasks if name.startswith("00000001_")}
    stalled = [job for job in world.wms.jobdb.jobs.values() if job.pilot is not None and job.pilot.site == "LCG.PIC.es"]
    assert stalled and all(job.status != js.DONE for job in stalled)


def test_jobs_exist_only_when_the_submission_call_returns():
    world = world_with(Fault(kind="db_down", target="JobDB", start=0.0, end=5000.0))
    world.sim.env.run(until=4000.0)
    assert len(world.wms.jobdb) == 0
    with world.services.unmetered():
        stats = world.tsdb.getTransformationTaskStats(1)["Value"]
    assert stats.get("Submitted", 0) == 0 and stats.get("Reserved", 0) > 0
    world.sim.env.run(until=8000.0)
    assert len(world.wms.jobdb) > 0


def test_tasks_exist_only_when_the_creation_call_returns():
    world = world_with(Fault(kind="db_down", target="TransformationDB", start=0.0, end=5000.0))
    world.sim.env.run(until=4000.0)
    with world.services.unmetered():
        assert world.tsdb.getTransformationTaskStats(1)["Value"]["TotalCreated"] == 0
    world.sim.env.run(until=8000.0)
    with world.services.unmetered():
        assert world.tsdb.getTransformationTaskStats(1)["Value"]["TotalCreated"] == 60
