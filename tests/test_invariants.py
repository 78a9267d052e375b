"""Nothing is lost, whatever the faults: hypothesis draws fault schedules over the whole twin.

Every job ends in a final state, every transformation file and task is counted once, every request is
accounted for, every MC output is in the catalog, and the run is reproducible from its seed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hs

from twin.build import build_world
from twin.dirac.transformation import status as st
from twin.dirac.wms.job_status import JOB_FINAL_STATES
from twin.scenario.loader import load_scenario
from twin.scenario.schema import Fault
from twin.summary import summarize
from twin.invariants import _sharing_codes, event_chunks, logged_states

WITH_TAPE = Path(__file__).parent / "data" / "with_tape.yaml"
ACCOUNTED_FILE_STATES = {st.PROCESSED, st.UNUSED, st.PROBLEMATIC, st.MAX_RESET, st.ASSIGNED, st.MISSING_IN_FC}

SITES = ["LCG.IN2P3-CC.fr", "LCG.PIC.es"]
SES = ["CC-IN2P3-Disk", "PIC-Disk", "CC-IN2P3-Tape"]


@hs.composite
def faults(draw) -> list[Fault]:
    out = []
    for _ in range(draw(hs.integers(0, 4))):
        kind = draw(hs.sampled_from(["site_down", "failure_spike", "se_banned", "tape_drive_lost", "db_slow", "db_down",
                                     "server_down", "link_cut"]))
        start = draw(hs.floats(0, 20 * 3600))
        end = start + draw(hs.floats(600, 30 * 3600))
        target, params = {
            "site_down": (draw(hs.sampled_from(SITES)), {}),
            "failure_spike": (draw(hs.sampled_from(SITES)), {"job_failure_prob": draw(hs.floats(0.1, 1.0))}),
            "se_banned": (draw(hs.sampled_from(SES)), {"access": draw(hs.sampled_from(["read", "write", "all"]))}),
            "tape_drive_lost": ("CC-IN2P3-Tape", {"drives": 1}),
            "db_slow": (draw(hs.sampled_from(["JobDB", "TransformationDB", "FileCatalogDB"])), {"factor": draw(hs.floats(2, 50))}),
            "db_down": (draw(hs.sampled_from(["JobDB", "TransformationDB", "FileCatalogDB"])), {}),
            "server_down": (draw(hs.sampled_from(["dirac-wms", "dirac-ts"])), {}),
            "link_cut": ("LCG.PIC.es->LCG.IN2P3-CC.fr", {}),
        }[kind]
        out.append(Fault(kind=kind, target=target, start=start, end=end, params=params))
    return out


def run(schedule: list[Fault], seed: int, retain_final: bool = False, replication_mode: str = "direct"):
    scenario = load_scenario(WITH_TAPE, {"run.seed": seed, "run.duration": "6d",
                                         "workload.productions[test].steps[MCSimulation].max_tasks": 40,
                                         "dirac.replication_mode": replication_mode})
    scenario.faults = schedule
    world = build_world(scenario)
    world.wms.jobdb.retain_final = retain_final
    world.run()
    return world, summarize(world)


#: Issue 11 item 3: outputs registered while the catalog was down, by pilots that died waiting.
CATALOG_DOWN_THEN_SITE_DOWN = [Fault(kind="db_down", target="FileCatalogDB", start=0.0, end=58276.0),
                               Fault(kind="site_down", target="LCG.IN2P3-CC.fr", start=27680.0, end=126849.0)]
#: Issue 11 item 7: pilots killed in the middle of their upload.
SITE_DOWN_DURING_UPLOADS = [Fault(kind="site_down", target="LCG.IN2P3-CC.fr", start=2720.0, end=6320.0)]
#: Fault schedules that broke conservation once (issue 11 items 3 and 7), run by every random-fault property.
PINNED_FAULT_EXAMPLES = [(CATALOG_DOWN_THEN_SITE_DOWN, 6), (SITE_DOWN_DURING_UPLOADS, 0)]


def pinned_fault_examples(test):
    """Apply PINNED_FAULT_EXAMPLES as hypothesis @example()s, so CI cannot pass by luck."""
    for schedule, seed in reversed(PINNED_FAULT_EXAMPLES):
        test = example(schedule=schedule, seed=seed)(test)
    return test


def mc_outputs(world) -> list[str]:
    with world.services.unmetered():
        return world.catalog.find_files_by_metadata({"data_level": -1}, world.runtime(1).output_dir)


def test_a_pilot_that_dies_mid_upload_registers_no_output():
    world, s = run(SITE_DOWN_DURING_UPLOADS, seed=0)
    keys = world.wms.jobdb.finished_done_tasks()  # final jobs leave the JobDB's records; their Done tasks stay
    done = {f"{1:08d}_{key & 0xFFFFFFFF:08d}" for key in keys[(keys >> 32) == 1].tolist()}
    registered = [lfn.rsplit("/", 1)[1].rsplit("_", 2)[0] for lfn in mc_outputs(world)]
    assert sorted(registered) == sorted(done)
    assert s["transformations"][0]["tasks"].get("Done", 0) == len(done)


def check_nothing_is_lost(schedule: list[Fault], seed: int, replication_mode: str = "direct") -> None:
    world, s = run(schedule, seed, replication_mode=replication_mode)
    inv = s["invariants"]
    flags = {k: v for k, v in inv.items() if k.endswith("_conserved")}
    assert all(v is True for v in flags.values()), flags
    # Whether the work finished, stopped short or was cut by the horizon: nothing is stuck for ever.
    assert inv["jobs_stuck"] == 0 and inv["files_stuck_assigned"] == 0, inv
    if inv["all_transformations_finished"]:
        assert inv["jobs_not_final"] == 0
        assert set(world.wms.jobdb.counters()) <= JOB_FINAL_STATES
        for t in s["transformations"]:
            assert set(t["tasks"]) <= set(st.TASK_FINAL_STATES) and not t["files"].get(st.ASSIGNED), t
    for t in s["transformations"]:
        assert set(t["files"]) <= ACCOUNTED_FILE_STATES, t
    # CPU accounting: used = the work of the Done jobs, nothing counted twice.
    jobdb = world.wms.jobdb  # final jobs leave the JobDB's records; their status and work per status stay
    done_work = jobdb.finished_cpu_work("Done") + sum(j.cpu_work for j in jobdb.jobs.values() if j.status == "Done")
    assert len(jobdb.finished()["job_id"]) + len(jobdb.jobs) == s["jobs"]["total"]
    assert world.wms.cpu_used_hs06s == pytest.approx(done_work)
    # Every successful MC job registered its output exactly once.
    mc_done = s["transformations"][0]["tasks"].get("Done", 0)
    assert len(mc_outputs(world)) == mc_done
    # A processing input is Processed only if its job succeeded: Processed files <= 5 x Done tasks.
    processing = s["transformations"][1]
    assert processing["files"].get(st.PROCESSED, 0) <= 5 * processing["tasks"].get("Done", 0)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=faults(), seed=hs.integers(0, 2**16))
@pinned_fault_examples
def test_nothing_is_lost_under_random_faults(schedule, seed):
    check_nothing_is_lost(schedule, seed)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=faults(), seed=hs.integers(0, 2**16))
@pinned_fault_examples
def test_nothing_is_lost_under_random_faults_in_fts3_mode(schedule, seed):
    """The same property with moves through FTS3 (bulk jobs, FTS3Agent retries, callback, RegisterReplica)."""
    check_nothing_is_lost(schedule, seed, "fts3")


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=faults(), seed=hs.integers(0, 2**16))
@pinned_fault_examples
def test_nothing_is_lost_under_200_random_fault_schedules(schedule, seed):
    check_nothing_is_lost(schedule, seed)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=faults(), seed=hs.integers(0, 2**16))
@pinned_fault_examples
def test_nothing_is_lost_under_100_random_fault_schedules_in_fts3_mode(schedule, seed):
    check_nothing_is_lost(schedule, seed, "fts3")


def _drop_jobs(world) -> None:
    jobdb = world.wms.jobdb  # the run kept final jobs' records (retain_final) so that they can be removed
    for job in list(jobdb.jobs.values())[:10]:
        jobdb.remove(job)


def _drop_tasks(world) -> None:
    table = world.tsdb._trans[1].tasks  # noqa: SLF001 - the mutation a buggy DB layer could make
    for task in table.all()[-3:]:
        table._leave(task.status, task.task_id)  # noqa: SLF001
    for column in (table.status, table.external_id, table.target_se, table.creation_time, table.last_update_time,
                   table.inputs_end):
        del column[-3:]


def _drop_request(world) -> None:
    db = world.rms.db
    request_id = db.ids()[0]
    db.counters[db.status(request_id)] -= 1
    del db._rows[request_id]  # noqa: SLF001


def _orphan_output(world) -> None:
    with world.services.unmetered():
        world.catalog.add_file(f"{world.runtime(1).output_dir}/000xxx/00000001_00000999_0_0.dat", 1, "PIC-Disk")


def _lose_output(world) -> None:
    """A Done job's output vanishes from the catalog record without a counted removal."""
    with world.services.unmetered():
        lfn = next(iter(world.catalog.find_files_by_metadata({}, world.runtime(1).output_dir)))
        world.catalog.remove_files([lfn])


@pytest.fixture(scope="module")
def calm_run():
    return run([], seed=3)


def test_the_recount_reads_the_event_log_chunk_by_chunk(calm_run):
    world, s = calm_run
    whole = logged_states([world.sim.log.to_frame()], world)
    chunks = list(event_chunks(world, ["job.status", "task.status"]))
    split = [part for chunk in chunks for part in (chunk.iloc[: len(chunk) // 3], chunk.iloc[len(chunk) // 3:])]
    assert logged_states(split, world, _sharing_codes(whole)).same(whole, "job.status")
    assert sum(whole.recount("job.status").values()) == s["jobs"]["total"] > 0
    assert whole.recount("task.status") == {k: v for k, v in world.tsdb.getTransformationTaskStats()["Value"].items()
                                            if k != "TotalCreated"}


def _task_moved_without_a_trail(world) -> None:
    """A task changes status in the DB, counters and all, but no event row says so."""
    table = world.tsdb._trans[1].tasks  # noqa: SLF001
    table.notify = None
    task = next(t for t in table.all() if t.status == "Done")
    table.set_status(task, "Failed", world.sim.now)


def _file_moved_without_a_trail(world) -> None:
    tsdb = world.tsdb
    tsdb.on_file_status = None
    lfn = next(f["LFN"] for f in tsdb.getTransformationFiles({"Status": st.PROCESSED})["Value"])
    trans_id = next(f["TransformationID"] for f in tsdb.getTransformationFiles({"LFN": lfn})["Value"])
    tsdb.setFileStatusForTransformation(trans_id, {lfn: st.UNUSED}, force=True)


@pytest.mark.parametrize("mutate, broken", [(_drop_jobs, "jobs_conserved"), (_drop_tasks, "tasks_conserved"),
                                            (_drop_request, "requests_conserved"), (_orphan_output, "outputs_conserved"),
                                            (_lose_output, "outputs_conserved"),
                                            (_task_moved_without_a_trail, "tasks_conserved"),
                                            (_file_moved_without_a_trail, "transformation_files_conserved")])
def test_records_deleted_or_moved_after_a_run_break_conservation(mutate, broken):
    """Issue 11 item 10: deleting 10 jobs and 3 tasks after a run used to leave every flag true; a task or
    file whose state the log never saw breaks it too, though the counters agree."""
    world, before = run([], seed=3, retain_final=True)
    assert before["invariants"][broken] is True
    mutate(world)
    assert summarize(world)["invariants"][broken] is False


@settings(max_examples=3, deadline=None)
@given(schedule=faults(), seed=hs.integers(0, 2**16))
def test_faulted_runs_are_reproducible(schedule, seed):
    first, _ = run(schedule, seed)
    second, _ = run(schedule, seed)
    assert first.sim.log.digest() == second.sim.log.digest()
