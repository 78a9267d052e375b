"""Calibration wall time, 1 vs 2 dask workers, side by side in the same invocation.

    python benchmarks/calibration_wall.py                                   # the issue's configuration:
        # 50 trials x 3 seeds of the 1/20-scale Prod5b baseline (measured: 34 min with 2 workers, 53 min with 1)
    python benchmarks/calibration_wall.py --scenario tests/data/calibration-small.yaml --scale 1 \\
        --trials 12 --seeds 3 --fit "failure_models.steps[processing].failure_prob=0:0.6"

Each configuration runs `twin.calibration.calibrate.calibrate` (the code behind `twin calibrate`) once
per worker count, on the same observed table and sampler seed, and records the wall time, the number
of runs and the mean wall time per run as the workers saw it (`wall_s` of each run). Every study asks the
optimiser for the same batch of trials at a time (the largest worker count), so the studies try the same
trials and differ only in wall time. Appends a row to benchmarks/results/calibration.json and rewrites
calibration.md from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import checkout

checkout.use()

from twin.calibration.calibrate import calibrate, format_result, parse_fit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PROD5B_FITS = [  # the Prod5b calibration's parameters (docs/calibration.md)
    "failure_models.steps[evndisp-gamma-diffuse].failure_prob=0.48:0.6",
    "failure_models.steps[evndisp-electron].failure_prob=0.05:0.25",
    "failure_models.steps[evndisp-proton].failure_prob=0.65:0.72",
    "failure_models.steps[evndisp-gamma-diffuse].bad_input_fraction,failure_models.steps[evndisp-electron].bad_input_fraction,"
    "failure_models.steps[evndisp-proton].bad_input_fraction=0.0003:0.002:log",
    "dirac.files_max_reset_counter=12:30:int",
    "failure_models.steps[mc].failure_prob=0.0001:0.003:log"]
PROD5B_TOLERANCES = {"processed_pct": 0.5}  # at 1/20 scale one electron file is 1 point, one gamma-diffuse file 0.2


def measure(args: argparse.Namespace, workers: int) -> dict:
    """One study with `workers` dask workers; the cluster is started (and idle) before the clock starts."""
    from twin.calibration.calibrate import write_outputs
    from twin.calibration.runs import RunPool

    fits = [parse_fit(f) for f in (args.fit or PROD5B_FITS)]
    tolerances = PROD5B_TOLERANCES if not args.fit else {}
    out = Path(args.out) / f"workers-{workers}" if args.out else None
    if out is not None:
        out.mkdir(parents=True)
    with RunPool(workers) as pool:
        load0 = os.getloadavg()[0]
        started, cpu0 = time.perf_counter(), os.times()
        result = calibrate([Path(o) for o in args.observed], Path(args.scenario), fits, trials=args.trials, seeds=args.seeds,
                           scale=args.scale, progress=not args.no_progress, tolerances=tolerances, pool=pool, batch=args.batch,
                           trial_log=out / "trials.jsonl" if out else None, startup_trials=args.startup_trials)
        wall = time.perf_counter() - started
    if out is not None:
        write_outputs(result, out, Path(args.models) if args.models else None)
        (out / "result.txt").write_text(format_result(result) + "\n", encoding="utf-8")
    runs = [r for t in result.trials for r in t.rows]
    return {"scenario": args.scenario, "scale": args.scale, "trials": args.trials, "seeds": args.seeds, "params": len(fits),
            "workers": workers, "batch": args.batch, "runs": len(runs), "wall_s": round(wall, 1),
            "mean_run_s": round(sum(r["wall_s"] for r in runs) / max(1, len(runs)), 2),
            "parent_cpu_s": round(os.times().user - cpu0.user, 1), "best_loss": round(result.best.loss, 4),
            "load_avg_1m_start": round(load0, 2), "load_avg_1m": round(os.getloadavg()[0], 2), "host": platform.node(),
            "cores": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def write_md(rows: list[dict]) -> None:
    lines = ["# Calibration wall time, 1 vs 2 dask workers", "",
             "Written by `benchmarks/calibration_wall.py` (see its docstring for the commands). Each pair of rows was",
             "measured in the same invocation (dask cluster started before the clock). *mean run* is the wall time of one twin run as its",
             "worker saw it; *load* is the 1-minute load average at the start -> end (the machine is shared: compare rows of",
             "one invocation, not across invocations).", "",
             "| when | scenario | scale | trials x seeds | params | workers | runs | wall s | mean run s | speed-up | best loss | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    speedups = _speedups(rows)
    for i, r in enumerate(rows):
        speed = f"{speedups[i]:.2f}x" if i in speedups else "–"
        lines.append(f"| {r['when']} | {Path(r['scenario']).name} | {r['scale']} | {r['trials']} x {r['seeds']} | {r['params']} | "
                     f"{r['workers']} | {r['runs']} | {r['wall_s']} | {r['mean_run_s']} | {speed} | {r['best_loss']} | {_load(r)} |")
    notes = RESULTS / "calibration-notes.md"
    if notes.is_file():
        lines += ["", notes.read_text(encoding="utf-8").strip()]
    (RESULTS / "calibration.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _speedups(rows: list[dict]) -> dict[int, float]:
    """Row index -> 1-worker wall / this row's wall, against the 1-worker row of the same invocation: the
    row next to it (either order, `--workers 2 1` or `1 2`) with the same scenario, scale, trials and seeds."""
    def config(r: dict) -> tuple:
        return r["scenario"], r["scale"], r["trials"], r["seeds"]

    out = {}
    for i, r in enumerate(rows):
        pair = [rows[j] for j in (i - 1, i + 1) if 0 <= j < len(rows) and rows[j]["workers"] == 1 and config(rows[j]) == config(r)]
        if r["workers"] != 1 and pair:
            out[i] = pair[0]["wall_s"] / r["wall_s"]
    return out


def _load(row: dict) -> str:
    start = row.get("load_avg_1m_start")
    return f"{start} -> {row['load_avg_1m']}" if start is not None else str(row["load_avg_1m"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="scenarios/prod5b-baseline.yaml")
    parser.add_argument("--observed", nargs="+", default=None)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fit", action="append", default=[])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", help="also write each study's calibration outputs to OUT/workers-N (trials.jsonl as it runs)")
    parser.add_argument("--models", help="write the calibrated models file here (with --out)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--startup-trials", type=int, help="random trials before TPE models the loss (default min(10, trials))")
    args = parser.parse_args()
    args.batch = max(args.workers)  # the same trials for every worker count: proposals depend on the batch, not the workers
    if args.models and not args.out:
        parser.error("--models: needs --out (the models file is written with the study's outputs)")
    if args.out and Path(args.out).is_dir() and any(Path(args.out).iterdir()):
        parser.error(f"--out {args.out}: exists and is not empty (trials.jsonl would mix two studies); choose another")
    if args.observed is None:
        from twin.scenario.loader import load_scenario

        args.observed = [load_scenario(args.scenario).observed_names.file]
    path = RESULTS / "calibration.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    for workers in args.workers:
        row = measure(args, workers)
        print(json.dumps(row))
        rows.append(row)
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    write_md(rows)


if __name__ == "__main__":
    main()
