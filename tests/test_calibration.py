"""Observed-input loaders and `twin calibrate` (issue 15 part 2): formats, bad files, loss, outputs,
parameter recovery and the correlated-vs-independent failure check."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import DATA
from twin.calibration.calibrate import FitParam, calibrate, models_document, parse_fit, score, Trial
from twin.calibration.observed import Target, read_observed, twin_values
from twin.calibration.runs import scaled
from twin.cli import main
from twin.errors import TwinError
from twin.runner import simulate
from twin.scenario.loader import load_scenario

SMALL = DATA / "calibration-small.yaml"
PROC_FP = "failure_models.steps[processing].failure_prob"
PROC_BAD = "failure_models.steps[processing].bad_input_fraction"
HEADER = "TransformationID,Status,Type,Name,Files,ProcessedPct,Created,TotalCreated"
GOOD_ROWS = ["1,Active,MCSimulation,00000001_Step1_MC_gamma,0,0,0,60",
             "2,Active,DataReprocessing,00000001_Step2_Processing_gamma,60,99.0,0,18",
             "3,Active,Replication,Move_Paranal_gamma,100,100,0,100"]


def _csv(tmp_path: Path, lines: list[str], name: str = "obs.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def observed_table(summary: dict, path: Path) -> Path:
    """A Transformation Monitor table written from a twin run (the 'observed' of recovery tests)."""
    names = {"test/MCSimulation": "00000001_Step1_MC_gamma", "test/Processing": "00000001_Step2_Processing_gamma"}
    rows = []
    for i, t in enumerate(summary["transformations"]):
        rows.append({"TransformationID": i + 1, "Status": "Active", "Type": t["type"], "Name": names[t["name"]],
                     "Files": t["files_total"], "ProcessedPct": round(t["processed_pct"] or 0.0, 2), "Created": 0,
                     "TotalCreated": t["tasks_created"], **({"MaxReset": t["files"].get("MaxReset", 0)} if t["files_total"] else {})})
    pd.DataFrame(rows).fillna(0).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- loaders
def test_monitor_rows_become_ratio_targets_and_ignored_rows_are_kept_aside(tmp_path):
    observed = read_observed([_csv(tmp_path, [HEADER, *GOOD_ROWS])], load_scenario(SMALL))
    by = {(t.key, t.column): t.observed for t in observed.targets}
    assert by[("test/Processing", "tasks_per_file")] == pytest.approx(0.3)
    assert by[("test/Processing", "processed_pct")] == 99.0
    assert by[("test/MCSimulation", "created_per_max")] == 1.0  # 60 created / the scenario's MaxNumberOfTasks 60
    assert observed.ignored == ["Move_Paranal_gamma"]


def test_lost_mc_tasks_show_as_inputs_per_parent_task_on_both_sides(tmp_path):
    rows = ["1,Active,MCSimulation,00000001_Step1_MC_gamma,0,0,0,60",
            "2,Active,DataReprocessing,00000001_Step2_Processing_gamma,57,99.0,0,18"]
    scenario = load_scenario(SMALL)
    by = {(t.key, t.column): t.observed for t in read_observed([_csv(tmp_path, [HEADER, *rows])], scenario).targets}
    assert by[("test/Processing", "inputs_per_parent_task")] == pytest.approx(57 / 60)
    summary = {"transformations": [{"name": "test/MCSimulation", "files_total": 0, "tasks_created": 60, "max_tasks": 60},
                                   {"name": "test/Processing", "files_total": 54, "tasks_created": 20}]}
    assert twin_values(summary, scenario=scenario)[("test/Processing", "inputs_per_parent_task")] == pytest.approx(0.9)
    assert ("test/Processing", "inputs_per_parent_task") not in twin_values(summary)  # no scenario: no parents known


def test_portal_column_names_and_accounting_and_running_files_are_read(tmp_path):
    scenario = load_scenario(SMALL)
    portal = _csv(tmp_path, ["ID,Status,Type,Name,Files,Processed (%),Created,Total Created",
                             "2,Active,DataReprocessing,00000001_Step2_Processing_gamma,60,99.0,0,18"], "portal.csv")
    accounting = _csv(tmp_path, ["Site,FinalStatus,Jobs,CPUTime,WallTime,NormCPUTime,InputBytes,OutputBytes",
                                 "LCG.IN2P3-CC.fr,Done,90,1,1,1,0,0", "LCG.IN2P3-CC.fr,Failed,10,1,1,1,0,0",
                                 "LCG.PIC.es,Done,100,1,1,1,0,0"], "acc.csv")
    running = _csv(tmp_path, ["Time,Site,Running", "0,LCG.PIC.es,10", "3600,LCG.PIC.es,20"], "run.csv")
    by = {(t.key, t.column): t.observed for t in read_observed([portal, accounting, running], scenario).targets}
    assert by[("LCG.IN2P3-CC.fr", "failed_fraction")] == pytest.approx(0.1)
    assert by[("LCG.PIC.es", "jobs_share")] == pytest.approx(0.5)
    assert by[("LCG.PIC.es", "mean_running")] == pytest.approx(15.0)
    assert by[("test/Processing", "tasks_per_file")] == pytest.approx(0.3)


@pytest.mark.parametrize("lines, expected", [
    (["TransformationID,Status,Type,Name,Files,Created,TotalCreated", "2,A,T,00000001_Step2_Processing_g,60,0,18"],
     "missing column 'ProcessedPct'"),
    ([HEADER, "2,Active,DataReprocessing,00000001_Step2_Processing_gamma,-60,99.0,0,18"],
     "obs.csv:2: 00000001_Step2_Processing_gamma: Files: expected a count >= 0, got -60"),
    ([HEADER, "2,Active,DataReprocessing,00000001_Step2_Processing_gamma,60,199.0,0,18"], "ProcessedPct: expected 0..100"),
    ([HEADER, "9,Active,DataReprocessing,Unknown_Transformation,60,99.0,0,18"],
     "obs.csv:2: unknown transformation name 'Unknown_Transformation'"),
    (["Site,FinalStatus,Jobs,CPUTime,WallTime,NormCPUTime,InputBytes,OutputBytes", "LCG.Nowhere.xx,Done,1,1,1,1,0,0"],
     "unknown site 'LCG.Nowhere.xx'"),
    (["a,b", "1,2"], "unknown table: expected the columns of a transformation monitor table"),
])
def test_bad_observed_files_exit_2_with_one_line(tmp_path, capsys, lines, expected):
    path = _csv(tmp_path, lines)
    code = main(["calibrate", str(path), "--scenario", str(SMALL), "--fit", f"{PROC_FP}=0:0.5", "--trials", "1", "--seeds", "1",
                 "--workers", "0", "--no-progress", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("item, expected", [
    ("a.b=1", "expected KEY.PATH"), ("a.b=2:1", "LOW < HIGH"), ("a.b=0:1:log", "LOW > 0"),
    ("failure_models.steps[0].failure_prob=0:1", "name list items"), ("a.b=0:1:lin", "expected KEY.PATH"),
    ("a.b=0.5:10:int", "whole LOW and HIGH"), ("a.b,a.b=0:1", "listed twice"), ("a.b,=0:1", "expected KEY.PATH"),
])
def test_bad_fit_options(item, expected):
    with pytest.raises(TwinError, match=expected):
        parse_fit(item)


def test_tied_and_integer_fit_parameters_set_every_key_and_whole_numbers():
    tied = parse_fit(f"{PROC_FP}, {PROC_BAD}=0:0.1")
    assert tied.keys == (PROC_FP, PROC_BAD) and tied.overrides(0.05) == {PROC_FP: 0.05, PROC_BAD: 0.05}
    counter = parse_fit("dirac.files_max_reset_counter=10:30:int")
    assert counter.integer and counter.overrides(12.6) == {"dirac.files_max_reset_counter": 13}
    result = type("R", (), {"fits": [tied, counter], "best": Trial(0, {tied.key: 0.02, counter.key: 17}, []),
                            "provenance": lambda self: "derived: x"})()
    doc = models_document(result)
    assert doc["failure_models"]["steps"] == [{"name": "processing", "failure_prob": 0.02, "bad_input_fraction": 0.02}]
    assert doc["dirac"]["files_max_reset_counter"] == 17 and set(doc["provenance"]) == {PROC_FP, PROC_BAD, counter.key}


def test_a_tied_integer_fit_runs_and_each_key_reaches_the_scenario(tmp_path, monkeypatch):
    import twin.calibration.calibrate as calibration

    ran: list[tuple[int, int]] = []
    real = calibration._trial_scenario

    def recorded(path, fit_values, scale):
        scenario = real(path, fit_values, scale)
        ran.append((scenario.dirac.files_max_reset_counter, scenario.dirac.failover_max_flush))
        return scenario

    monkeypatch.setattr(calibration, "_trial_scenario", recorded)
    obs = _csv(tmp_path, [HEADER, *GOOD_ROWS])
    tied = parse_fit("dirac.files_max_reset_counter,dirac.failover_max_flush=2:4:int")
    result = calibrate([obs], SMALL, [tied], trials=3, seeds=1, workers=0, progress=False)
    values = [t.params[tied.key] for t in result.trials]
    assert all(isinstance(v, int) and 2 <= v <= 4 for v in values)
    assert values[0] == 4  # trial 0: the scenario's 10, clipped into the bounds
    assert ran[-3:] == [(v, v) for v in values]  # the trials' scenarios carry each value on both keys


def test_a_key_fitted_by_two_fit_items_is_refused(tmp_path, capsys):
    obs = _csv(tmp_path, [HEADER, *GOOD_ROWS])
    code = main(["calibrate", str(obs), "--scenario", str(SMALL), "--fit", "dirac.files_max_reset_counter=10:30:int",
                 "--fit", f"{PROC_FP},dirac.files_max_reset_counter=5:8", "--trials", "1", "--seeds", "1", "--workers", "0",
                 "--no-progress", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "dirac.files_max_reset_counter is already fitted by --fit 'dirac.files_max_reset_counter'" in err


def test_a_study_is_rebuilt_from_its_trial_log_without_running(tmp_path, capsys):
    obs = _csv(tmp_path, [HEADER, *GOOD_ROWS])
    args = ["calibrate", str(obs), "--scenario", str(SMALL), "--fit", f"{PROC_FP}=0:0.5", "--trials", "2", "--seeds", "1",
            "--workers", "0", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "study")]) == 0
    log = tmp_path / "study" / "trials.jsonl"
    assert len(log.read_text().splitlines()) == 2
    first = yaml.safe_load((tmp_path / "study" / "models.yaml").read_text())
    log.write_text(log.read_text().splitlines()[0] + "\n")  # as if stopped after trial 0
    assert main([*args, "--out", str(tmp_path / "rebuilt"), "--from-log", str(log)]) == 0
    rebuilt = json.loads((tmp_path / "rebuilt" / "calibration.json").read_text())
    assert rebuilt["trials"] == 1 and rebuilt["best"]["trial"] == 0
    assert rebuilt["best"]["params"][PROC_FP] == 0.0  # trial 0 is the scenario as it stands
    assert first["provenance"][PROC_FP].startswith("derived: calibrated from obs.csv")
    log.write_text("not json\n")
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--from-log", str(log)]) == 2
    assert "--from-log" in capsys.readouterr().err


@pytest.mark.slow
def test_the_trials_of_a_study_depend_on_its_batch_not_on_its_workers(tmp_path):
    # TPE proposes a batch at a time (constant liar): what it proposes depends on which trials were told,
    # i.e. on the batch; runs are deterministic. So the same batch gives the same study in-process or on dask.
    from twin.calibration.runs import RunPool

    obs = _csv(tmp_path, [HEADER, *GOOD_ROWS])

    def study(workers: int, batch: int | None) -> list[tuple[dict, float]]:
        with RunPool(workers) as pool:
            result = calibrate([obs], SMALL, [parse_fit(f"{PROC_FP}=0:0.5")], trials=4, seeds=1, startup_trials=1,
                               pool=pool, batch=batch, progress=False)
        return [(t.params, t.loss) for t in result.trials]

    two = study(0, 2)
    assert study(1, 2) == two and study(1, None) == two  # the default batch does not follow the workers
    one = study(0, 1)
    assert one[0] == two[0] and one != two  # trial 0 is the scenario as it stands; the proposals after it differ


def test_batch_below_one_is_refused(tmp_path, capsys):
    obs = _csv(tmp_path, [HEADER, *GOOD_ROWS])
    assert main(["calibrate", str(obs), "--scenario", str(SMALL), "--fit", f"{PROC_FP}=0:0.5", "--batch", "0",
                 "--workers", "0", "--no-progress", "--out", str(tmp_path / "o")]) == 2
    assert "--batch 0: expected at least 1" in capsys.readouterr().err


def test_startup_trials_below_one_is_refused(tmp_path, capsys):
    code = main(["calibrate", str(_csv(tmp_path, [HEADER, *GOOD_ROWS])), "--scenario", str(SMALL), "--fit", f"{PROC_FP}=0:0.5",
                 "--startup-trials", "0", "--workers", "0", "--no-progress", "--out", str(tmp_path / "out")])
    assert code == 2 and "--startup-trials 0: expected at least 1" in capsys.readouterr().err


def test_a_fit_key_the_scenario_does_not_accept_is_refused_before_any_run(tmp_path):
    obs = _csv(tmp_path, [HEADER, *GOOD_ROWS])
    with pytest.raises(TwinError, match="failure_prob"):
        calibrate([obs], SMALL, [FitParam(PROC_FP, 0.0, 1.5)], trials=1, seeds=1, workers=0, progress=False)


# ---------------------------------------------------------------- loss, outputs
def test_loss_is_the_mean_squared_error_in_tolerances_over_seed_means():
    targets = [Target("r", "p/s", "tasks_per_file", 0.4, 0.05, "f"), Target("r", "p/s", "processed_pct", 99.0, 0.25, "f")]
    rows = [{"status": "ok", "values": {"p/s|tasks_per_file": 0.42, "p/s|processed_pct": 99.5}},
            {"status": "ok", "values": {"p/s|tasks_per_file": 0.46, "p/s|processed_pct": 99.0}}]
    trial = score(Trial(0, {}, rows), targets)
    # means 0.44 (relative error 0.1 = 2 tolerances) and 99.25 (1 tolerance)
    assert trial.loss == pytest.approx((2.0 ** 2 + 1.0 ** 2) / 2)
    assert trial.seed_losses == pytest.approx([((0.05 / 0.05) ** 2 + 2.0 ** 2) / 2, (3.0 ** 2 + 0.0) / 2])


def test_twin_values_are_the_monitor_columns_of_a_run():
    summary = simulate(load_scenario(SMALL)).summary
    values = twin_values(summary)
    proc = next(t for t in summary["transformations"] if t["name"] == "test/Processing")
    assert values[("test/Processing", "tasks_per_file")] == proc["tasks_created"] / proc["files_total"]
    assert values[("test/MCSimulation", "created_per_max")] == 1.0


def test_scaled_scenario_shrinks_work_and_slots_but_not_below_one():
    small = scaled(load_scenario(SMALL), 0.05)
    assert small.workload.productions[0].steps[0].max_tasks == 3
    assert [ce.slots for site in small.topology.sites for ce in site.ces] == [2, 1]


def test_a_scaled_scenario_says_so_in_its_provenance_and_description():
    scenario = load_scenario(DATA.parent.parent / "scenarios" / "ctao-operations-2021.yaml")
    key = "workload.initial_data[paranal-proton-north].count"
    small = scaled(scenario, 0.05)
    assert small.provenance[key].startswith("derived: 0.05 x the scenario's value (--scale); was source:")
    assert small.description.endswith("[run at 0.05 of its size]")
    assert scenario.provenance[key].startswith("source:")  # the loaded scenario is untouched


def test_twin_run_scale_runs_the_scaled_scenario(tmp_path):
    assert main(["run", str(SMALL), "--scale", "0.05", "--no-report", "-q", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["transformations"][0]["tasks_created"] == 3


def test_calibrate_cli_writes_a_models_file_with_provenance_that_merges_into_the_scenario(tmp_path, capsys):
    obs = _csv(tmp_path, [HEADER, *GOOD_ROWS])
    models = tmp_path / "models" / "calibrated.yaml"
    code = main(["calibrate", str(obs), "--scenario", str(SMALL), "--fit", f"{PROC_FP}=0:0.5", "--trials", "2", "--seeds", "1",
                 "--workers", "0", "--no-progress", "--out", str(tmp_path / "out"), "--models", str(models)])
    assert code == 0
    assert "fit per column" in capsys.readouterr().out
    doc = yaml.safe_load(models.read_text())
    value = doc["failure_models"]["steps"][0]["failure_prob"]
    assert doc["failure_models"]["steps"][0]["name"] == "processing" and 0 <= value <= 0.5
    assert doc["provenance"][PROC_FP].startswith("derived: calibrated from obs.csv, ")
    user = tmp_path / "calibrated-scenario.yaml"
    user.write_text(yaml.safe_dump({"name": "x", "extends": [str(SMALL), str(models)]}))
    assert load_scenario(user).failure_models.steps[0].failure_prob == pytest.approx(value)
    for name in ("calibration.json", "fit.csv", "trials.csv"):
        assert (tmp_path / "out" / name).is_file()


# ---------------------------------------------------------------- recovery and model adequacy
RECOVERY = {"workload.productions[test].steps[MCSimulation].max_tasks": 150}


@pytest.mark.slow
def test_parameter_recovery_within_0_06(tmp_path):
    """Observed table generated by the twin with failure_prob 0.35 (3 seeds); the fit recovers it within 0.06."""
    truth = 0.35
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"name": "recovery", "extends": str(SMALL), "overrides": RECOVERY}))
    summaries = [simulate(load_scenario(scenario, {PROC_FP: truth, "run.seed": 100 + s})).summary for s in range(3)]
    obs = observed_table(_pooled(summaries), tmp_path / "obs.csv")
    result = calibrate([obs], scenario, [FitParam(PROC_FP, 0.0, 0.7)], trials=14, seeds=3, workers=0, progress=False)
    assert result.best.params[PROC_FP] == pytest.approx(truth, abs=0.06)


@pytest.mark.slow
def test_independent_failures_cannot_fit_input_correlated_data_and_the_new_model_can(tmp_path):
    """One file per task, MaxReset after 3 failures: bad input files (5 %) give 95 % Processed with only ~1.1
    tasks per file; independent failures reaching 95 % Processed need ~1.45 tasks per file."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"name": "adequacy", "extends": str(SMALL), "overrides": {
        **RECOVERY, "workload.productions[test].steps[Processing].group_size": 1, "dirac.files_max_reset_counter": 2}}))
    truth = {PROC_BAD: 0.05, PROC_FP: 0.03}
    obs = observed_table(simulate(load_scenario(scenario, truth)).summary, tmp_path / "obs.csv")
    tolerances = {"processed_pct": 1.0, "MaxReset_pct": 1.0}  # one file of 150 is 0.67 points: do not fit seed noise
    independent = calibrate([obs], scenario, [FitParam(PROC_FP, 0.0, 0.6)], trials=10, seeds=2, workers=0,
                            tolerances=tolerances, progress=False)
    correlated = calibrate([obs], scenario, [FitParam(PROC_FP, 0.0, 0.3), FitParam(PROC_BAD, 0.0, 0.1)],
                           trials=24, seeds=2, workers=0, tolerances=tolerances, progress=False)
    lost, fitted = failure_loss(independent), failure_loss(correlated)
    print(f"independent loss {lost:.3g}, correlated loss {fitted:.3g} (failure columns)")
    assert lost > 4.0  # > 2 tolerances of error on average, whatever failure_prob
    assert fitted < lost / 4


def failure_loss(result) -> float:
    """The best trial's loss over the columns a failure model acts on: tasks per file, Processed %, MaxReset %.
    Files / parent MC TotalCreated depends on the MC supply only (both models fit it exactly) and would
    dilute the mean."""
    from twin.calibration.calibrate import _loss

    targets = [t for t in result.observed.targets if t.column != "inputs_per_parent_task"]
    return _loss(targets, result.best.means)


def _pooled(summaries: list[dict]) -> dict:
    """Sum the transformation counts of several runs (one observed table from several seeds)."""
    first = summaries[0]
    rows = []
    for i, t in enumerate(first["transformations"]):
        files = sum(s["transformations"][i]["files_total"] for s in summaries)
        processed = sum(s["transformations"][i]["files"].get("Processed", 0) for s in summaries)
        rows.append({**t, "files_total": files, "tasks_created": sum(s["transformations"][i]["tasks_created"] for s in summaries),
                     "processed_pct": 100.0 * processed / files if files else None,
                     "files": {"MaxReset": sum(s["transformations"][i]["files"].get("MaxReset", 0) for s in summaries)},
                     "max_tasks": t.get("max_tasks")})
    return {"transformations": rows}


def test_run_report_shows_observed_vs_twin_per_row():
    from twin.report.html import run_from_result, run_report_html

    html = run_report_html(run_from_result(simulate(load_scenario(SMALL))))
    assert "Observed vs twin" in html and "00000001_Step2_Processing_gamma" in html
    assert "Total Created / Files" in html and "Ignored rows: Move_Paranal_gamma" in html


def test_rows_the_table_withholds_are_predicted_not_fitted(tmp_path):
    obs = _csv(tmp_path, [HEADER, GOOD_ROWS[0]])  # only the MC row: Processing is withheld
    result = calibrate([obs], SMALL, [FitParam(PROC_FP, 0.0, 0.5)], trials=1, seeds=1, workers=0, progress=False)
    assert {(r["step"], r["column"]) for r in result.withheld} == {("test/Processing", "tasks_per_file"), ("test/Processing", "processed_pct")}
    assert all(t.key != "test/Processing" for t in result.observed.targets)
    assert next(r for r in result.withheld if r["column"] == "processed_pct")["twin"] == pytest.approx(100.0)
