"""Sweeps: expansion of --param axes x seeds, the t-based confidence interval, and tiny sweeps
in-process and on a one-worker dask LocalCluster."""

from __future__ import annotations

import argparse
import math

import pandas as pd
import pytest

from conftest import MINIMAL
from twin.errors import TwinError
from twin.sweep import add_sweep_arguments, aggregate, cmd_sweep, expand, mean_ci, parse_axis, run_sweep, t_975

SLOTS = "topology.sites[LCG.PIC.es].ces[0].slots"
FAIL = "workload.productions[test].steps[MCSimulation].job.failure_prob"


def test_axis_values_are_yaml_scalars_and_lists():
    assert parse_axis(f"{SLOTS}=0,20") == (SLOTS, [0, 20])
    assert parse_axis("run.duration=2d, 0.5 ,true") == ("run.duration", ["2d", 0.5, True])
    assert parse_axis("dirac.ses_for_failover=[A,B],[C]") == ("dirac.ses_for_failover", [["A", "B"], ["C"]])
    for bad in ("no-equals", "=1,2", "a.b="):
        with pytest.raises(TwinError, match="--param"):
            parse_axis(bad)


def test_cartesian_product_times_seeds():
    specs = expand([f"{SLOTS}=0,20", f"{FAIL}=0,0.1,0.2"], seeds=3, base_seed=7)
    assert len(specs) == 2 * 3 * 3
    assert [s.index for s in specs] == list(range(18))
    assert {s.seed for s in specs} == {7, 8, 9}
    assert specs[0].params == {SLOTS: 0, FAIL: 0} and specs[-1].params == {SLOTS: 20, FAIL: 0.2}
    assert len(expand([], seeds=2, base_seed=1)) == 2  # replications of the scenario as written
    with pytest.raises(TwinError, match="given twice"):
        expand([f"{SLOTS}=0", f"{SLOTS}=1"], 1, 1)
    with pytest.raises(TwinError, match="--seeds 0"):
        expand([], 0, 1)


def test_t_quantiles_and_interval_on_a_known_sample():
    assert t_975(1) == 12.706 and t_975(30) == 2.042
    assert t_975(35) == pytest.approx(2.030, abs=2e-3)  # table value 2.0301
    assert t_975(1000) == pytest.approx(1.962, abs=2e-3)
    mean, std, half, n = mean_ci([1, 2, 3, 4, 5])
    assert (mean, n) == (3.0, 5)
    assert std == pytest.approx(math.sqrt(2.5))
    assert half == pytest.approx(2.776 * math.sqrt(2.5) / math.sqrt(5))  # 1.963
    assert math.isnan(mean_ci([4.0])[2]) and mean_ci([float("nan"), 2.0])[0] == 2.0


def test_aggregate_groups_by_combination_and_counts_errors():
    runs = pd.DataFrame({"run": range(4), "p": [1, 1, 2, 2], "seed": [1, 2, 1, 2], "status": ["ok", "ok", "ok", "error"],
                         "jobs_done": [10, 12, 20, None], "complete": [True, False, True, None],
                         "bottleneck_kind": ["site slots"] * 3 + [None], "bottleneck_name": ["A", "A", "B", None]})
    out = aggregate(runs, ["p"]).set_index("p")
    assert out.loc[1, "jobs_done_mean"] == 11 and out.loc[1, "complete_mean"] == 0.5
    assert out.loc[1, "jobs_done_ci95"] == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2))
    assert out.loc[2, "errors"] == 1 and out.loc[2, "jobs_done_n"] == 1
    assert out.loc[2, "bottleneck_mode"] == "site slots: B"
    lists = runs.assign(p=[["A"], ["A"], ["A", "B"], ["A", "B"]])  # list-valued parameters group too
    assert aggregate(lists, ["p"])["runs"].tolist() == [2, 2]


def test_in_process_sweep_writes_tables_and_report(tmp_path):
    result = run_sweep(MINIMAL, [f"{SLOTS}=0,20", f"{FAIL}=0,0.2"], 2, tmp_path, workers=0, progress=False)
    runs = pd.read_parquet(tmp_path / "sweep.parquet")
    assert len(runs) == 8 and set(runs["status"]) == {"ok"}
    assert list(runs.columns[:4]) == ["run", SLOTS, FAIL, "seed"]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 4 and (summary["runs"] == 2).all()
    no_failures = summary[summary[FAIL] == 0]
    assert (no_failures["jobs_failed_mean"] == 0).all() and (no_failures["jobs_done_mean"] == 72).all()
    assert (summary[summary[FAIL] == 0.2]["jobs_failed_mean"] > 0).all()
    html = (tmp_path / "report.html").read_text()
    assert "Mean ± 95% CI per combination" in html and "slots (LCG.PIC.es)" in html
    assert result.errors == 0


def test_bad_key_path_fails_before_any_run(tmp_path):
    with pytest.raises(TwinError, match=r"--param.*no item named 'Nowhere'"):
        run_sweep(MINIMAL, ["topology.sites[Nowhere].ces[0].slots=1,2"], 1, tmp_path, workers=0, progress=False)


def test_cli_on_a_one_worker_local_cluster(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    args = parser.parse_args([str(MINIMAL), "--param", f"{SLOTS}=0,20", "--seeds", "2", "--workers", "1",
                              "--out", str(tmp_path), "--no-progress"])
    assert cmd_sweep(args) == 0
    out = capsys.readouterr().out
    assert "4 runs (2 combinations x 2 seeds)" in out and "LocalCluster x1" in out
    assert len(pd.read_csv(tmp_path / "sweep.csv")) == 4


# ---------------------------------------------------------------- sweeps on a shared cluster (issue 12)
def test_a_seed_axis_sets_each_combinations_base_seed():
    from twin.sweep import load_specs

    jobs = load_specs(MINIMAL, expand(["run.seed=3,5"], 2, 7))
    assert [(spec.seed, scenario.run.seed) for spec, scenario in jobs] == [(3, 3), (4, 4), (5, 5), (6, 6)]


def test_run_keys_are_unique_per_resolved_run_and_equal_for_identical_runs():
    from twin.sweep import load_specs, run_key

    jobs = load_specs(MINIMAL, expand([f"{SLOTS}=0,20"], 2, 7))
    keys = [run_key(scenario) for _, scenario in jobs]
    assert len(set(keys)) == 4 and all(k.startswith("twin-run-") for k in keys)
    again = load_specs(MINIMAL, expand([f"{SLOTS}=20"], 1, 7))
    assert run_key(again[0][1]) == keys[2]  # same scenario, params and seed: dask may reuse it


def test_a_killed_worker_is_a_failed_row_labelled_with_this_sweeps_run():
    from twin.sweep import RunSpec, _collected

    class KilledWorker(Exception):
        pass

    class _Future:
        def result(self):
            raise KilledWorker("Attempted to run task twin-run-x on 3 different workers, all died")

    row = _collected(_Future(), RunSpec(5, {SLOTS: 20}, 8, 1))
    assert (row["run"], row[SLOTS], row["seed"], row["status"]) == (5, 20, 8, "error")
    assert row["error"].startswith("KilledWorker (the worker died: memory limit?)")


def test_failed_runs_are_written_with_the_others_and_exit_1_with_a_summary(tmp_path, monkeypatch, capsys):
    import twin.runner

    real = twin.runner.simulate

    def dies_on_seed_8(scenario, **kwargs):
        if scenario.run.seed == 8:
            raise MemoryError("worker memory limit")
        return real(scenario, **kwargs)

    monkeypatch.setattr(twin.runner, "simulate", dies_on_seed_8)
    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    args = parser.parse_args([str(MINIMAL), "--seeds", "2", "--workers", "0", "--out", str(tmp_path / "s"), "--no-report"])
    assert cmd_sweep(args) == 1
    err = capsys.readouterr().err
    assert "run 1 (seed 8) failed: MemoryError: worker memory limit" in err and "1 of 2 runs failed" in err
    rows = pd.read_csv(tmp_path / "s/sweep.csv")
    assert list(rows["status"]) == ["ok", "error"] and rows["jobs_done"][0] > 0


@pytest.mark.slow
def test_a_scheduler_without_workers_times_out_with_a_message(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=0, dashboard_address=":0", processes=False) as cluster:
        with pytest.raises(TwinError, match=r"no worker connected within 2 s"):
            run_sweep(MINIMAL, [], 1, tmp_path / "s", scheduler=cluster.scheduler_address, progress=False, worker_timeout=2)
    assert not (tmp_path / "s").exists()


def _poisoned_row() -> dict:
    return {"run": 0, "seed": 7, "status": "ok", "error": "", "jobs_done": -1}


@pytest.mark.slow
def test_another_sweeps_task_on_the_scheduler_cannot_stand_in_for_a_run(tmp_path):
    """Another client holds a result under the key a run once had (twin-run-0): the sweep must not take it."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster.scheduler_address) as other:
            held = other.submit(_poisoned_row, key="twin-run-0", pure=False)
            held.result()
            result = run_sweep(MINIMAL, [f"{SLOTS}=20"], 1, tmp_path / "s", scheduler=cluster.scheduler_address,
                               progress=False, report=False)
    assert list(result.runs["status"]) == ["ok"] and result.runs["jobs_done"][0] > 0


def test_run_keys_change_with_the_plugin_file_and_the_twin_sources(tmp_path, monkeypatch):
    """Issue 12 review: keys hashed the scenario and the version string only, so an edited plugin
    (or twin) could be served a stale result by a long-lived dask scheduler."""
    import twin.sweep
    from twin.sweep import load_specs, run_key

    plugin = tmp_path / "plugin.py"
    plugin.write_text((MINIMAL.parents[2] / "examples/plugins/by_run_chunk.py").read_text())
    param = f"workload.productions[test].steps[Processing].plugin_class={plugin}:RunChunkPlugin"
    scenario = load_specs(MINIMAL, expand([param], 1, 7))[0][1]
    before = run_key(scenario)
    assert run_key(scenario) == before  # deterministic
    plugin.write_text(plugin.read_text() + "\n# edited\n")
    edited = run_key(scenario)
    monkeypatch.setattr(twin.sweep, "twin_sources_hash", lambda: "0" * 64)
    assert len({before, edited, run_key(scenario)}) == 3


def _ctrl_c_on_seed(monkeypatch, seed: int) -> None:
    """Make the simulation of `seed` raise KeyboardInterrupt (as Ctrl-C would), the others run."""
    import twin.runner

    real = twin.runner.simulate

    def interrupted_on(scenario, **kwargs):
        if scenario.run.seed == seed:
            raise KeyboardInterrupt
        return real(scenario, **kwargs)

    monkeypatch.setattr(twin.runner, "simulate", interrupted_on)


def test_ctrl_c_during_a_sweep_keeps_the_finished_runs_marked_incomplete(tmp_path, monkeypatch, capsys):
    from twin.cli import main
    from twin.outputs import read_manifest

    _ctrl_c_on_seed(monkeypatch, 9)  # seeds 7, 8, 9: the third run is interrupted
    out = tmp_path / "s"
    assert main(["sweep", str(MINIMAL), "--seeds", "3", "--workers", "0", "--out", str(out), "-q", "--no-report"]) == 130
    assert "interrupted after 2 of 3 runs; their outputs (marked incomplete) in" in capsys.readouterr().err
    manifest = read_manifest(out)
    assert (manifest["status"], manifest["runs"], manifest["runs_planned"]) == ("incomplete", 2, 3)
    assert list(pd.read_csv(out / "sweep.csv")["seed"]) == [7, 8]


def test_ctrl_c_before_any_run_finished_writes_nothing(tmp_path, monkeypatch, capsys):
    from twin.cli import main

    _ctrl_c_on_seed(monkeypatch, 7)
    out = tmp_path / "s"
    assert main(["sweep", str(MINIMAL), "--seeds", "2", "--workers", "0", "--out", str(out), "-q"]) == 130
    assert "interrupted after 0 of 2 runs" in capsys.readouterr().err and not out.exists()


def test_ctrl_c_during_seed_replications_keeps_the_finished_seeds(tmp_path, monkeypatch):
    import json

    from twin.cli import main
    from twin.outputs import read_manifest

    _ctrl_c_on_seed(monkeypatch, 8)
    out = tmp_path / "r"
    assert main(["run", str(MINIMAL), "--seeds", "2", "--workers", "0", "--out", str(out), "-q"]) == 130
    assert read_manifest(out)["status"] == "incomplete"
    assert json.loads((out / "replicas.json").read_text())["seeds"] == [7]
