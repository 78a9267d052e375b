"""`twin run --seeds N`: seed replications of one scenario, so that every headline number has an interval.

    twin run scenarios/whatif-site-outage.yaml --seeds 10 --out runs/outage

Replication r runs with seed run.seed + r (as a sweep's replications do, so two scenarios replicated
from the same run.seed share their random streams: `twin compare` then pairs them seed by seed).
Each replication is a complete run folder `seed-<seed>/` (events, metrics, summary, report.html);
the folder also gets replicas.json (the list of run folders, what `twin compare` reads), replicas.csv
(one row of key metrics per seed) and report.html (the uncertainty report). Runs execute on the sweep's
dask machinery: a LocalCluster by default, `--workers 0` in this process, `--scheduler` a running
cluster (whose workers must share this file system, since they write the run folders).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd

from twin.errors import TwinError
from twin.scenario.schema import Scenario
from twin.sweep import STATUS_ERROR, STATUS_OK, RunSpec, SweepInterrupted, execute, metrics_row

MANIFEST = "replicas.json"


def add_replica_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `twin run` for seed replications (registered by twin.cli)."""
    from twin import options as opt

    parser.add_argument("--seeds", type=opt.count(1), metavar="N",
                        help="run N seed replications (seeds run.seed+0..N-1), report every number with a 95%% interval")
    parser.add_argument("--workers", type=opt.count(0),
                        help="with --seeds: LocalCluster worker processes (default: cores; 0 = in this process)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="with --seeds: a running dask scheduler")


def run_replica(spec: RunSpec, scenario: Scenario, root: str, force: bool = False) -> dict[str, Any]:
    """One replication into <root>/seed-<seed>/ (a full run folder); reduced to one row (errors too)."""
    from twin.runner import run_scenario

    folder = f"seed-{spec.seed}"
    started = time.perf_counter()
    try:
        result = run_scenario(scenario, Path(root) / folder, progress=False, report=True, force=force)
        row = {"status": STATUS_OK, "error": "", **metrics_row(result.summary)}
    except Exception as exc:  # noqa: BLE001 - reported in replicas.csv and by the command's exit code
        row = {"status": STATUS_ERROR, "error": f"{type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc()[-2000:]}
    return {"run": spec.index, "seed": spec.seed, "folder": folder, **row, "wall_s": time.perf_counter() - started}


def run_replicas(scenario: Scenario, seeds: int, out: Path, workers: int | None = None, scheduler: str | None = None,
                 progress: bool = True, force: bool = False) -> pd.DataFrame:
    """Run `seeds` replications of `scenario` into `out` (staged: it appears complete, with run.json of kind
    "replicas"); write replicas.json, replicas.csv and report.html."""
    from twin.outputs import INCOMPLETE, Staging, check_out

    if seeds < 1:
        raise TwinError(f"--seeds {seeds}: expected at least 1 replication")
    if workers is not None and workers < 0:
        raise TwinError(f"--workers {workers}: expected 0 (in-process) or a positive number of workers")
    check_out(out, force)
    with Staging(out, "replicas", force, {"scenario": scenario.name, "base_seed": scenario.run.seed,
                                          "seeds_planned": seeds}) as staging:
        try:
            rows = _replicate(scenario, seeds, staging.path, workers, scheduler, progress)
        except SweepInterrupted as stop:  # keep the replications that finished, marked incomplete
            if stop.rows:
                _tabulate(stop.rows, scenario, staging.path)
                stop.where = staging.commit(INCOMPLETE)
            raise
        table = _tabulate(rows, scenario, staging.path)
        staging.commit()
    return table


def _replicate(scenario: Scenario, seeds: int, out: Path, workers: int | None, scheduler: str | None,
               progress: bool) -> list[dict[str, Any]]:
    """One row per replication, seeds run.seed + 0..N-1, each run folder written under `out`."""
    jobs = []
    for r in range(seeds):
        copy = scenario.model_copy(deep=True)
        copy.run.seed = scenario.run.seed + r
        jobs.append((RunSpec(r, {}, copy.run.seed), copy))
    return execute(jobs, workers, scheduler, progress, task=functools.partial(run_replica, root=str(out.resolve())))


def _tabulate(rows: list[dict[str, Any]], scenario: Scenario, out: Path) -> pd.DataFrame:
    """replicas.csv, the replicas manifest and report.html of the replications in `rows`."""
    table = pd.DataFrame(sorted(rows, key=lambda row: row["run"]))
    table.drop(columns=["traceback"], errors="ignore").to_csv(out / "replicas.csv", index=False)
    ok = table[table["status"] == STATUS_OK]
    (out / MANIFEST).write_text(json.dumps({"scenario": scenario.name, "base_seed": scenario.run.seed,
                                            "seeds": [int(s) for s in ok["seed"]], "runs": list(ok["folder"])}, indent=2))
    if len(ok):
        write_report(out, list(ok["folder"]), scenario.name)
    return table


def write_report(out: Path, folders: list[str], name: str) -> Path:
    from twin.report.html import load_run
    from twin.report.uncertainty import write_replicas_report

    return write_replicas_report([load_run(out / f) for f in folders], folders, name, out / "report.html")


def cmd_run_seeds(args: argparse.Namespace, scenario: Scenario, out: Path) -> int:
    """`twin run --seeds N`: 0 when every replication worked (and, with --fail-on-deadline, met it), else 1."""
    from twin import options as opt
    from twin.report.html import load_run
    from twin.report.uncertainty import deadline_sentence

    table = run_replicas(scenario, args.seeds, out, workers=args.workers, scheduler=args.scheduler,
                         progress=opt.show_progress(args), force=args.force)
    errors = table[table["status"] == STATUS_ERROR]
    ok = table[table["status"] == STATUS_OK]
    lines = [f"{scenario.name}: {len(ok)}/{len(table)} seeds ran"]
    if len(ok):
        lines.append(deadline_sentence([load_run(out / f) for f in ok["folder"]])[1])
    lines += [f"seed {row.seed}: {row.error}" for row in errors.itertuples(index=False)]
    opt.say(args, *lines, f"outputs in {out}")
    missed = args.fail_on_deadline and (ok["deadline_met"] == False).any()  # noqa: E712 - None is not a miss
    return 1 if len(errors) or missed else 0
