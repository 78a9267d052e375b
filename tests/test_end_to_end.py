"""End to end: MC -> processing on two sites, with and without faults.

Each test runs the whole twin (TS agents, plugins, WMS, pilots, storage, DB costs) and
checks outcomes that follow from DIRAC's rules, and the conservation invariants.
"""

from __future__ import annotations

import pandas as pd

import pytest

from conftest import minimal
from twin.build import build_world
from twin.runner import simulate
from twin.scenario.schema import Fault

FINAL_FILE_STATES = {"Processed", "Problematic", "MaxReset", "Unused"}


def assert_conserved(summary: dict) -> None:
    """Every `*_conserved` recount agrees (event log vs DBs vs catalog), and nothing is stuck for ever."""
    inv = summary["invariants"]
    flags = {k: v for k, v in inv.items() if k.endswith("_conserved")}
    assert len(flags) >= 5 and all(v is True for v in flags.values()), flags
    assert inv["jobs_stuck"] == 0 and inv["files_stuck_assigned"] == 0, inv


def test_nominal_run_creates_exactly_the_requested_tasks_and_processes_every_file():
    result = simulate(minimal())
    s = result.summary
    mc, proc = s["transformations"]
    assert mc["tasks_created"] == 60 and mc["tasks"] == {"Done": 60}
    # 60 MC outputs in groups of 5 (Standard plugin, GroupSize 5): exactly 12 full tasks, no leftovers.
    assert proc["files_total"] == 60 and proc["files"] == {"Processed": 60}
    assert proc["tasks_created"] == 12
    assert s["jobs"]["by_status"] == {"Done": 72}
    assert s["jobs"]["outputs_registered"] == 72
    assert s["invariants"]["all_transformations_finished"] and s["invariants"]["jobs_not_final"] == 0
    assert_conserved(s)


def test_processing_starts_only_after_mc_outputs_and_jobs_follow_dirac_state_order():
    events = simulate(minimal()).events
    jobs = events[events.kind == "job.status"]
    first = jobs.groupby("entity", observed=True)["state"].apply(list)
    for states in first:
        assert states[:2] == ["Received", "Checking"]
        assert states[-1] == "Done"
        assert states.index("Matched") < states.index("Running") < states.index("Done")
    processed = events[(events.kind == "file.status") & (events.state == "Processed")]
    created = events[(events.kind == "file.status") & (events.detail == "")]
    assert processed.time.min() > created.time.min()


def test_same_seed_gives_identical_event_log_and_other_seed_differs():
    a = simulate(minimal())
    b = simulate(minimal())
    c = simulate(minimal(**{"run.seed": 8}))
    assert a.event_digest == b.event_digest
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert a.event_digest != c.event_digest


def test_mc_failures_are_replaced_with_new_tasks_until_max_tasks_done():
    scenario = minimal(**{"workload.productions[test].steps[MCSimulation].job.failure_prob": 0.2})
    s = simulate(scenario).summary
    mc = s["transformations"][0]
    assert mc["tasks"]["Done"] == 60
    assert mc["tasks"].get("Failed", 0) > 0
    assert mc["tasks_created"] == 60 + mc["tasks"]["Failed"]
    assert s["jobs"]["failures_by_reason"]["Application Finished With Errors"] == mc["tasks"]["Failed"]
    assert_conserved(s)


def test_failed_processing_jobs_return_files_to_unused_and_retry():
    scenario = minimal(**{"workload.productions[test].steps[Processing].job.failure_prob": 0.3})
    s = simulate(scenario).summary
    proc = s["transformations"][1]
    assert proc["files"].get("Processed", 0) + proc["files"].get("MaxReset", 0) == 60
    assert proc["tasks"].get("Failed", 0) > 0
    assert proc["tasks_created"] > 12
    assert_conserved(s)


def test_site_down_stalls_running_jobs_then_fails_them_and_work_completes_elsewhere():
    scenario = minimal(**{"run.duration": "4d", "workload.productions[test].steps[MCSimulation].max_tasks": 100})
    scenario.faults = [Fault(kind="site_down", target="LCG.PIC.es", start=1800, end=40000)]
    result = simulate(scenario)
    s, events = result.summary, result.events
    assert s["jobs"]["failures_by_reason"].get("Job stalled: pilot not running", 0) > 0
    stalled = events[(events.kind == "job.status") & (events.state == "Stalled")]
    failed = events[(events.kind == "job.status") & (events.state == "Failed")]
    # DIRAC's thresholds: Stalled only after 4500 s without heartbeat, Failed at a later agent cycle.
    assert stalled.time.min() >= 1800 + 4500
    assert failed.time.min() > stalled.time.min()
    assert s["transformations"][0]["tasks"]["Done"] == 100
    assert s["transformations"][1]["files"] == {"Processed": 100}
    assert s["plan"]["complete"]
    site_rows = events[events.kind == "site.status"]
    assert list(site_rows.state)[0] == "Down"
    assert_conserved(s)


def test_mc_extension_stops_above_30_percent_failures_and_the_plan_says_so():
    scenario = minimal(**{"run.duration": "4d"})  # 20 of 60 MC jobs run at PIC when it goes down: 33% > 30%
    scenario.faults = [Fault(kind="site_down", target="LCG.PIC.es", start=1800, end=40000)]
    s = simulate(scenario).summary
    mc = s["transformations"][0]
    assert mc["tasks"] == {"Done": 40, "Failed": 20} and mc["tasks_created"] == 60
    assert not mc["complete"] and "MCExtensionAgent stopped" in mc["shortfall"]
    assert not s["plan"]["complete"] and s["plan"]["verdict"].startswith("Stopped short")
    assert_conserved(s)


def test_all_upload_targets_banned_makes_inputs_problematic():
    scenario = minimal(**{"run.duration": "1d"})
    scenario.faults = [Fault(kind="se_banned", target=se, start=5000, params={"access": "write"})
                       for se in ("CC-IN2P3-Disk", "PIC-Disk")]
    s = simulate(scenario).summary
    assert s["jobs"]["failures_by_reason"].get("Failed to upload output data", 0) > 0
    files = s["transformations"][1]["files"]
    assert files.get("Problematic", 0) > 0
    assert set(files) <= FINAL_FILE_STATES | {"Assigned"}
    assert_conserved(s)


def test_three_chained_steps_carry_files_from_step_1_to_step_3():
    """MC -> Processing (GroupSize 5) -> Merge (GroupSize 4): data-driven links through the catalog only."""
    scenario = minimal()
    production = scenario.workload.productions[0]
    merge = production.steps[1].model_copy(update={
        "name": "Merge", "type": "Merging", "parent": "Processing", "group_size": 4,
        "input_query": {"MCCampaign": "Test", "particle": "gamma", "data_level": 1},
        "output_metadata": {"MCCampaign": "Test", "particle": "gamma", "data_level": 2, "outputType": "Data"},
    })
    production.steps.append(merge)
    s = simulate(scenario).summary
    mc, proc, merged = s["transformations"]
    assert mc["tasks"] == {"Done": 60}
    assert proc["files"] == {"Processed": 60} and proc["tasks"] == {"Done": 12}
    # 12 processing outputs in groups of 4: exactly 3 merge tasks, every DL1 file merged.
    assert merged["files"] == {"Processed": 12} and merged["tasks"] == {"Done": 3}
    assert merged["started_at"] == 0.0 and merged["finished_at"] >= proc["finished_at"]


def run_until_finished(world, horizon: float, step: float = 600.0) -> float:
    """Advance in slices, as Simulation.run does, until World.all_finished says the work is over."""
    t = world.sim.now
    while t < horizon:
        t = min(horizon, t + step)
        world.sim.env.run(until=t)
        if world.all_finished():
            break
    return world.sim.now


def test_a_finished_transformation_that_gets_new_input_is_no_longer_finished():
    world = build_world(minimal())
    first = run_until_finished(world, 2 * 86400)
    assert world.all_finished() and set(world.finished_at) == {1, 2}
    with world.services.unmetered():  # five late MC outputs appear (e.g. a recovered upload)
        world.make_directory("/ctao/MC/test/late", {"MCCampaign": "Test", "particle": "gamma", "data_level": -1})
        for i in range(5):
            world.catalog.add_file(f"/ctao/MC/test/late/late_{i}.dat", 500_000_000, "CC-IN2P3-Disk", {"runNumber": 1000 + i})
    world.sim.env.run(until=first + 1200)  # InputDataAgent adds them; the monitor looks again
    assert not world.transformation_finished(2) and 2 not in world.finished_at and not world.all_finished()
    run_until_finished(world, 4 * 86400)
    with world.services.unmetered():
        files = world.tsdb.getTransformationStats(2)["Value"]
    assert files.get("Processed") == 65 and files.get("Assigned", 0) == 0
    assert world.all_finished() and world.finished_at[2] > first
    assert world.wms.jobdb.counters() == {"Done": 72 + 1}  # 60 MC + 13 processing jobs, all final


def test_a_stalled_job_agent_that_never_fails_jobs_breaks_conservation(monkeypatch):
    """Issue 11 item 10: jobs Stalled for ever used to pass every invariant."""
    monkeypatch.setattr("twin.dirac.wms.stalled._stalled_failure", lambda *args, **kwargs: None)
    scenario = minimal(**{"run.duration": "4d", "workload.productions[test].steps[MCSimulation].max_tasks": 100})
    scenario.faults = [Fault(kind="site_down", target="LCG.PIC.es", start=1800, end=40000)]
    s = simulate(scenario).summary
    assert s["jobs"]["by_status"].get("Stalled", 0) > 0
    assert s["invariants"]["jobs_stuck"] == s["jobs"]["by_status"]["Stalled"]
    with pytest.raises(AssertionError):
        assert_conserved(s)


def test_inputs_removed_from_the_catalog_become_missing_in_fc_not_unused_for_ever():
    """Issue 11 item 11: TransformationAgent._getDataReplicasDM sets MissingInFC for LFNs the catalog does not know."""
    world = build_world(minimal())
    doomed = {f"00000001_{task:08d}" for task in range(7, 12)}

    def remove_soon(lfn: str) -> None:  # an operator deletes five MC outputs just after their upload
        if lfn.rsplit("/", 1)[1].rsplit("_", 2)[0] in doomed:
            def remove(_event, lfn=lfn):
                with world.services.unmetered():
                    world.datamanager.remove_file(lfn)
            world.sim.env.timeout(1.0).callbacks.append(remove)

    world.catalog.on_file_registered.append(remove_soon)
    world.run()
    with world.services.unmetered():
        files = world.tsdb.getTransformationStats(2)["Value"]
        tasks = world.tsdb.getTransformationTaskStats(2)["Value"]
    assert files["MissingInFC"] == 5 and files.get("Processed", 0) + files.get("Unused", 0) == 55
    assert "Assigned" not in files and set(tasks) == {"Done", "TotalCreated"}
    assert world.all_finished()


@pytest.mark.parametrize("monitor_files", [True, False])
def test_finished_jobs_wait_for_monitor_files_only_while_it_runs(monitor_files):
    """MonitorFiles' queue of finished jobs is drained by MonitorFiles: with the agent off nothing may
    pile up there (one entry per finished job for the whole run), with it on only the last ~10 min stay."""
    world = build_world(minimal(**{"dirac.monitor_files": monitor_files}))
    world.run()
    left = sum(len(queue) for queue in world.ts.finished_jobs.values())
    done = sum(world.wms.jobdb.count(status) for status in ("Done", "Failed"))
    assert done > 20
    if monitor_files:
        assert left < done
    else:
        assert left == 0
