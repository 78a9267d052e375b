"""Failure, efficiency, file-size and MC supply models (issue 15 part 1) on the minimal scenario."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import minimal
from twin.dirac.wms.failures import PAYLOAD, REASON_BAD_INPUT, REASON_BLACK_HOLE, START, UPLOAD, JobFates, SiteState, unit_hash
from twin.engine.rng import RandomStreams
from twin.runner import simulate
from twin.scenario.schema import FailureModels, SiteFailureModel, StepFailureModel, SupplyModel

PROC = "test/Processing"


def _trans(summary: dict, name: str) -> dict:
    return next(t for t in summary["transformations"] if t["name"] == name)


def _fates(**models) -> JobFates:
    return JobFates(FailureModels(**models), RandomStreams(3))


# ---------------------------------------------------------------- unit level
def test_site_state_spends_the_stationary_share_of_time_bad():
    """Alternating renewal process: long-run bad share = mean_bad / (mean_good + mean_bad)."""
    state = SiteState(SiteFailureModel(good_failure_prob=0.0, bad_failure_prob=1.0, mean_good=3 * 3600, mean_bad=3600),
                      np.random.default_rng(1))
    times = np.arange(0.0, 4000 * 86400.0, 600.0)
    bad = np.mean([state.failure_prob(t) for t in times])
    assert bad == pytest.approx(0.25, abs=0.02)


def test_black_hole_nodes_fail_every_job_within_seconds_and_only_on_their_site():
    fates = _fates(sites=[SiteFailureModel(sites="LCG.PIC.*", black_hole_fraction=0.5, black_hole_after_s=20)])
    pic = [fates.fate("LCG.PIC.es", pid, "p/s", (), 0.0, 100.0, 3600.0, 0.0) for pid in range(400)]
    holes = [f for f in pic if f.reason == REASON_BLACK_HOLE]
    assert 150 < len(holes) < 250
    assert all(f.phase == START and f.after_s == 20 for f in holes)
    again = [fates.fate("LCG.PIC.es", pid, "p/s", (), 0.0, 100.0, 3600.0, 9e5).reason == REASON_BLACK_HOLE for pid in range(400)]
    assert again == [f.reason == REASON_BLACK_HOLE for f in pic]  # a black-hole node stays one
    assert not any(fates.fate("LCG.CNAF.it", pid, "p/s", (), 0.0, 100.0, 3600.0, 0.0).phase for pid in range(400))


def test_failure_phase_sets_when_the_attempt_dies():
    """Start: within the setup overhead; payload: inside the payload; upload: after all of it."""
    for phase in (START, PAYLOAD, UPLOAD):
        fates = _fates(steps=[StepFailureModel(failure_prob=1.0, phases={phase: 1.0})])
        fate = [fates.fate("S", 1, "p/s", (), 0.0, 300.0, 3600.0, 0.0) for _ in range(50)]
        assert {f.phase for f in fate} == {phase}
        lo, hi = {START: (0, 300), PAYLOAD: (300, 3900), UPLOAD: (3900, 3900)}[phase]
        assert all(lo <= f.after_s <= hi for f in fate)


def test_bad_input_fraction_marks_a_fixed_subset_of_files():
    fates = _fates(steps=[StepFailureModel(bad_input_fraction=0.1)])
    lfns = [f"/ctao/f{i}.dat" for i in range(5000)]
    bad = fates.bad_inputs("p/s", lfns)
    assert len(bad) == pytest.approx(500, rel=0.15)
    assert all(fates.fate("S", 1, "p/s", (lfn,), 0.0, 0.0, 60.0, 0.0).reason == REASON_BAD_INPUT for lfn in bad[:20])
    assert unit_hash(5, "x") == unit_hash(5, "x") != unit_hash(6, "x")


def test_cpu_efficiency_and_overhead_stretch_the_wall_time():
    fates = _fates(sites=[SiteFailureModel(cpu_efficiency=0.8, overhead_s=100)],
                   steps=[StepFailureModel(cpu_efficiency=0.5, overhead_s=20)])
    assert fates.wall_s("any", "p/s", 400.0) == (120.0, 1000.0)


def test_file_sizes_spread_around_the_job_model_size():
    fates = _fates(file_sizes={"evndisp": {"cv": 0.5}})
    sizes = np.array([fates.file_size("evndisp", 1e8) for _ in range(4000)])
    assert sizes.mean() == pytest.approx(1e8, rel=0.05)
    assert sizes.std() / sizes.mean() == pytest.approx(0.5, rel=0.15)
    assert fates.file_size("other", 1e8) == 1e8


def test_site_and_step_failure_models_must_be_well_formed():
    with pytest.raises(ValueError, match="mean_good and mean_bad"):
        SiteFailureModel(mean_good=3600)
    with pytest.raises(ValueError, match="positive total weight"):
        StepFailureModel(phases={"start": 0})


# ---------------------------------------------------------------- whole runs
def test_bad_inputs_end_maxreset_and_the_rest_is_processed():
    """Input-correlated failures: every attempt on a bad file fails, so exactly the bad files end MaxReset
    after FilesMaxResetCounter+1 attempts, while every good file is Processed (one file per task)."""
    scenario = minimal(**{"workload.productions[test].steps[Processing].group_size": 1, "dirac.files_max_reset_counter": 2,
                          "run.duration": "6d"})
    scenario.failure_models = FailureModels(steps=[StepFailureModel(steps=PROC, bad_input_fraction=0.1)])
    result = simulate(scenario)
    proc = _trans(result.summary, PROC)
    bad = proc["files"].get("MaxReset", 0)
    assert 1 <= bad <= 20
    assert proc["files"]["Processed"] == proc["files_total"] - bad
    failed = result.summary["jobs"]["failures_by_reason"][REASON_BAD_INPUT]
    assert failed == bad * 3  # ErrorCount 0, 1, 2 reset; the 3rd failure (counter 2 reached) sets MaxReset


def test_upload_phase_failures_waste_the_whole_payload_and_leave_inputs_problematic():
    scenario = minimal()
    scenario.failure_models = FailureModels(steps=[StepFailureModel(steps=PROC, failure_prob=1.0, phases={"upload": 1.0})])
    summary = simulate(scenario).summary
    proc = _trans(summary, PROC)
    assert proc["files"] == {"Problematic": proc["files_total"]}
    # every Processing job failed after its whole payload: wasted = their payload CPU (7200 HS06 s a job, cv 0.2)
    wasted_h = summary["jobs"]["cpu_wasted_hs06_hours"]
    assert wasted_h == pytest.approx(proc["tasks_created"] * 7200 / 3600, rel=0.2)


def test_fixed_supply_creates_max_tasks_once_and_extension_replaces_failures():
    models = FailureModels(steps=[StepFailureModel(steps="test/MCSimulation", failure_prob=0.2)])  # < MCExtension's 30 % stop
    fixed = minimal()
    fixed.failure_models, fixed.supply = models, [SupplyModel(steps="*/MCSimulation", mode="fixed")]
    replaced = minimal(**{"run.duration": "5d"})
    replaced.failure_models = models
    mc_fixed = _trans(simulate(fixed).summary, "test/MCSimulation")
    mc_repl = _trans(simulate(replaced).summary, "test/MCSimulation")
    assert mc_fixed["tasks_created"] == 60 and mc_fixed["tasks"]["Failed"] > 5
    assert mc_repl["tasks"]["Done"] == 60 and mc_repl["tasks_created"] == 60 + mc_repl["tasks"]["Failed"]


def test_operator_extension_adds_the_failed_tasks_once():
    scenario = minimal(**{"run.duration": "5d"})
    scenario.failure_models = FailureModels(steps=[StepFailureModel(steps="test/MCSimulation", failure_prob=0.3)])
    scenario = type(scenario).model_validate({**scenario.model_dump(), "supply": [
        {"steps": "test/MCSimulation", "mode": "fixed", "extensions": [{"at": "1d"}, {"at": "2d"}, {"at": "3d", "tasks": 5}]}]})
    result = simulate(scenario)
    mc = _trans(result.summary, "test/MCSimulation")
    ext = result.events[(result.events["kind"] == "operator.action") & (result.events["state"] == "extend")]
    added = ext["value"].tolist()
    assert len(added) == 3 and added[2] == 5
    assert mc["tasks_created"] == 60 + sum(added)
    assert added[0] + added[1] <= mc["tasks"]["Failed"]  # each Failed task is replaced at most once


def test_same_seed_same_events_with_every_model_on():
    def scenario():
        s = minimal()
        return type(s).model_validate({**s.model_dump(), "failure_models": {
            "sites": [{"sites": "LCG.PIC.es", "good_failure_prob": 0.05, "bad_failure_prob": 0.6, "mean_good": "12h",
                       "mean_bad": "3h", "black_hole_fraction": 0.1, "cpu_efficiency": 0.9, "overhead_s": 120}],
            "steps": [{"steps": "*", "failure_prob": 0.05, "phases": {"start": 1, "payload": 2, "upload": 1},
                       "bad_input_fraction": 0.05, "fail_prob_per_input_gb": 0.01, "hazard_per_cpu_hour": 0.01}],
            "file_sizes": {"simtel": {"cv": 0.4}}}})
    assert simulate(scenario()).event_digest == simulate(scenario()).event_digest
