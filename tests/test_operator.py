"""Manual interventions as scenario data: stop, start, flush, complete, clean; and the cleaning agent."""

from __future__ import annotations

import pytest

from conftest import minimal
from twin.build import build_world
from twin.errors import ScenarioErrors
from twin.scenario.schema import OperatorAction
from twin.summary import summarize


def run(actions: list[OperatorAction], **overrides):
    scenario = minimal(**overrides)
    scenario.workload.operator_actions = actions
    world = build_world(scenario)
    world.run()
    return world, summarize(world)


def test_stopped_step_submits_nothing_until_restarted():
    world, s = run([OperatorAction(at=0, action="stop", target="test/Processing"),
                    OperatorAction(at=86400, action="start", target="test/Processing")], **{"run.duration": "3d"})
    events = world.sim.log.to_frame()
    jobs = events[(events.kind == "job.status") & (events.state == "Received") & (events.value == 2.0)]
    assert jobs.time.min() >= 86400
    assert s["transformations"][1]["files"] == {"Processed": 60}


def test_operator_flush_emits_the_partial_group():
    # 60 MC outputs, GroupSize 7: 8 full groups, 4 files held until the operator flushes at 1 day.
    world, s = run([OperatorAction(at=86400, action="flush", target="test/Processing")],
                   **{"workload.productions[test].steps[Processing].group_size": 7, "run.duration": "3d"})
    proc = s["transformations"][1]
    assert proc["files"] == {"Processed": 60} and proc["tasks"] == {"Done": 9}
    assert proc["finished_at"] > 86400


@pytest.mark.parametrize("reflush, files", [(False, {"Processed": 49, "Unused": 11}), (True, {"Processed": 60})])
def test_files_failed_after_the_flush_wait_for_the_operator_to_flush_again(reflush, files):
    # Half the processing tasks fail; GroupSize 7 over two SEs. DIRAC's Flush is one-shot: the files of a task
    # failed after it stay Unused in partial groups (per SE) unless the operator flushes again.
    from twin.scenario.schema import FailureModels

    scenario = minimal(**{"run.seed": 1, "run.duration": "6d", "workload.productions[test].operator_flush": True,
                          "workload.productions[test].operator_reflush": reflush,
                          "workload.productions[test].steps[Processing].group_size": 7})
    scenario.failure_models = FailureModels.model_validate({"steps": [{"name": "p", "steps": "test/Processing", "failure_prob": 0.5}]})
    world = build_world(scenario)
    world.run()
    s = summarize(world)
    flushes = world.sim.log.to_frame().query("kind == 'transformation.status' and state == 'Flush' and detail == 'test/Processing'")
    assert s["transformations"][1]["files"] == files and s["plan"]["complete"] is reflush
    assert (len(flushes) > 1) is reflush and s["invariants"]["transformation_files_conserved"]


def test_reflush_waits_for_a_reopened_parent_to_finish_again():
    # The MC parent is extended at 9000 s (reopened): flushing its child while it still produces files would
    # cut full groups into partial tasks; the operator (as CTADIRAC's agent) waits for the parent to finish.
    from twin.scenario.schema import FailureModels, SupplyModel

    scenario = minimal(**{"run.seed": 1, "run.duration": "6d", "workload.productions[test].operator_flush": True,
                          "workload.productions[test].operator_reflush": True,
                          "workload.productions[test].steps[Processing].group_size": 7})
    scenario.failure_models = FailureModels.model_validate({"steps": [{"name": "p", "steps": "test/Processing", "failure_prob": 0.5}]})
    scenario.supply = [SupplyModel.model_validate({"steps": "test/MCSimulation", "mode": "fixed", "extensions": [{"at": 9000, "tasks": 40}]})]
    world = build_world(scenario)
    world.run()
    log = world.sim.log.to_frame()
    flushes = log.query("kind == 'transformation.status' and state == 'Flush' and detail == 'test/Processing'").time
    parent = log.query("kind in ('transformation.finished', 'transformation.reopened') and detail == 'test/MCSimulation'")
    reopened, refinished = parent.query("kind == 'transformation.reopened'").time.min(), parent.time.max()
    assert reopened < refinished and len(flushes) >= 2
    assert not flushes.between(reopened, refinished).any()  # no flush while the parent runs again
    assert summarize(world)["invariants"]["transformation_files_conserved"]


def test_reflush_without_a_flush_is_a_scenario_error():
    with pytest.raises(ScenarioErrors, match="operator_reflush: .* no step of this production has operator_flush"):
        minimal(**{"workload.productions[test].operator_reflush": True})


def test_clean_kills_jobs_and_removes_outputs():
    world, s = run([OperatorAction(at=5000, action="clean", target="test/MCSimulation")],
                   **{"workload.productions[test].steps[MCSimulation].max_tasks": 200, "run.duration": "2d"})
    mc = s["transformations"][0]
    assert mc["status"] == "Cleaned"
    assert "Killed" in s["jobs"]["by_status"]
    assert len(world.runtime(1).outputs) == 0 and world.cleaning.files_removed > 0
    assert not world.catalog.find_files_by_metadata({"data_level": -1}, world.runtime(1).output_dir)
    assert all(job.status in ("Done", "Failed", "Killed") for job in world.wms.jobs_of(1))
    assert s["invariants"]["jobs_conserved"] and s["invariants"]["tasks_conserved"]


def test_action_on_unknown_step_is_a_scenario_error(tmp_path):
    from twin.scenario.loader import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {minimal.__globals__['MINIMAL']}\nworkload:\n  operator_actions:\n"
                    "    - {at: 1h, action: flush, target: test/Nope}\n")
    with pytest.raises(ScenarioErrors, match=r"workload.operator_actions\[0\].target: expected 'Production/Step'"):
        load_scenario(path)


def test_completed_step_counts_as_finished_at_once():
    world, s = run([OperatorAction(at=2 * 3600, action="complete", target="test/Processing")], **{"run.duration": "10d"})
    proc = s["transformations"][1]
    assert proc["status"] == "Completed"
    assert proc["finished_at"] <= 2 * 3600 + 600  # the next FinishMonitor look, not the 7-day archive
    assert world.sim.now < 86400


def test_step_waiting_for_a_failed_production_is_given_up_and_reported():
    # Processing's Input query asks for a key (nsb) the MC Output query lacks: ProdValidator refuses the start
    # of the first production; a later step waiting for Processing can then never be submitted.
    scenario = minimal(**{"workload.productions[test].steps[Processing].input_query.nsb": 1, "run.duration": "3d"})
    production = scenario.workload.productions[0]
    production.steps.append(production.steps[1].model_copy(update={"name": "Later", "start_after": ["Processing"]}))
    world = build_world(scenario)
    world.run()
    s = summarize(world)
    assert any("checkMatchQuery" in f or "InputMetaQuery" in f or "not" in f for f in s["production_failures"])
    assert any("Later: not submitted" in f for f in s["production_failures"])
    assert world.operator.unsubmitted == 0 and world.sim.now < 3 * 86400  # the run ends instead of idling
