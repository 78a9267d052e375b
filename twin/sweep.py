"""`twin sweep`: the cartesian product of parameter values x seed replications, run on dask.

    twin sweep scenario.yaml --param 'topology.sites[LCG.PIC.es].ces[0].slots=0,500,1000' --seeds 5

Each `--param PATH=V1,V2,...` is one axis (values are YAML scalars, read as a YAML flow list,
so `[a,b],[c]` gives two list values); every combination runs with `--seeds` replications, seed
`run.seed + r` for r = 0..N-1, so replication r of every combination shares its random streams
(common random numbers: differences between combinations are not seed noise).

Runs go to dask.distributed: a LocalCluster of `--workers` single-threaded processes by default,
or an existing cluster with `--scheduler tcp://host:port` (its workers need `twin` installed; the
scenario is loaded and validated here and shipped to them, so they need no scenario files).
`--workers 0` runs everything in this process, without dask.

Outputs in `--out`: sweep.parquet and sweep.csv (one row per run: parameters, seed, key metrics),
summary.csv (per combination: mean, std, 95% confidence half-width and n of every numeric metric)
and report.html. Confidence intervals use Student's t (two-sided 95%) from a small table
(`t_975`), since scipy is not a dependency.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import itertools
import logging
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import yaml

from twin.errors import TwinError
from twin.results import STATUS_ERROR, STATUS_OK, SweepResult
from twin.report.format import format_ci, param_text as _fmt
from twin.scenario.schema import Scenario

RUN_COLUMNS = ("run", "seed")

# Two-sided 95% Student t quantiles t(0.975, df); between entries interpolate linearly in 1/df,
# which is accurate to ~1e-3 over this range (Abramowitz & Stegun, Table 26.10 note).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}
_Z975 = 1.960


# ---------------------------------------------------------------- expansion
@dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: its index, the parameter values (key path -> value) and its seed."""

    index: int
    params: dict[str, Any]
    seed: int
    replication: int = 0


def parse_axis(item: str) -> tuple[str, list[Any]]:
    """'a.b[X].c=1,2,3' -> ('a.b[X].c', [1, 2, 3]); values are a YAML flow list."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise TwinError(f"--param {item!r}: expected KEY.PATH=V1,V2,...")
    try:
        values = yaml.safe_load(f"[{raw}]")
    except yaml.YAMLError:
        raise TwinError(f"--param {item!r}: the values are not a valid YAML list (quote values containing commas)") from None
    if not values:
        raise TwinError(f"--param {item!r}: expected at least one value")
    return key, values


def expand(params: Sequence[str], seeds: int, base_seed: int) -> list[RunSpec]:
    """Cartesian product of the axes x `seeds` replications (seed = base_seed + r)."""
    if seeds < 1:
        raise TwinError(f"--seeds {seeds}: expected at least 1 replication")
    axes = [parse_axis(p) for p in params]
    keys = [k for k, _ in axes]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise TwinError(f"--param {duplicated[0]!r} given twice: put all its values in one --param")
    combos = itertools.product(*(values for _, values in axes))
    specs = []
    for combo in combos:
        for r in range(seeds):
            specs.append(RunSpec(len(specs), dict(zip(keys, combo)), base_seed + r, r))
    return specs


def load_specs(scenario_path: Path, specs: Iterable[RunSpec]) -> list[tuple[RunSpec, Scenario]]:
    """Load and validate every run's scenario here, so bad input fails before any run starts.

    Replication r of a combination runs with that combination's run.seed + r, so a `run.seed`
    axis sets the base seed of its rows (and is validated like any other value)."""
    from dataclasses import replace

    from twin.scenario.loader import load_scenario

    loaded: dict[tuple[tuple[str, str], ...], Scenario] = {}
    out = []
    for spec in specs:
        combo = tuple((k, repr(v)) for k, v in spec.params.items())
        if combo not in loaded:
            loaded[combo] = load_scenario(scenario_path, dict(spec.params))
        scenario = loaded[combo].model_copy(deep=True)
        scenario.run.seed = loaded[combo].run.seed + spec.replication
        out.append((replace(spec, seed=scenario.run.seed), scenario))
    return out


def run_key(scenario: Scenario) -> str:
    """The dask key of a run: a hash of everything it depends on (the resolved scenario, seed
    included, the twin's sources and every plugin_class file it names), so two sweeps on one
    scheduler never swap results and an identical run may be reused, but never across code edits."""
    from twin import __version__
    from twin.outputs import scenario_hash

    depends = {"twin": __version__, "twin_sources": twin_sources_hash(), "plugins": plugin_hashes(scenario),
               "scenario": scenario.model_dump(mode="json")}
    return f"twin-run-{scenario_hash(depends)[:32]}"


@functools.lru_cache(maxsize=1)
def twin_sources_hash() -> str:
    """sha256 over the twin package's .py files (names and contents), once per process:
    a version string does not change when the code under it does."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def plugin_hashes(scenario: Scenario) -> dict[str, str]:
    """plugin_class location -> sha256 of its source file (a missing file hashes as "missing"; the run reports it)."""
    from twin.outputs import sha256_of

    out = {}
    for prod in scenario.workload.productions:
        for step in prod.steps:
            if step.plugin_class and step.plugin_class not in out:
                path = _plugin_file(step.plugin_class)
                out[step.plugin_class] = sha256_of(path) if path is not None and path.is_file() else "missing"
    return out


def _plugin_file(plugin_class: str) -> Path | None:
    location, sep, name = plugin_class.rpartition(":")
    if not sep or not name.isidentifier():
        location = plugin_class
    if location.endswith(".py"):
        return Path(location).expanduser().resolve()
    try:
        spec = importlib.util.find_spec(location)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


# ---------------------------------------------------------------- one run -> one row
def run_one(spec: RunSpec, scenario: Scenario) -> dict[str, Any]:
    """Simulate one run (in a dask worker or in-process) and reduce it to one table row.

    Errors become a row with status "error" so one bad combination does not lose the sweep.
    """
    from twin.runner import simulate

    started = time.perf_counter()
    try:
        summary = simulate(scenario, keep_events=False).summary
        row = {"status": STATUS_OK, "error": "", **metrics_row(summary)}
    except Exception as exc:  # noqa: BLE001 - reported in the table and the report
        row = {"status": STATUS_ERROR, "error": f"{type(exc).__name__}: {exc}"[:500]}
        logging.getLogger(__name__).debug("run %d failed:\n%s", spec.index, traceback.format_exc())
    return {"run": spec.index, **spec.params, "seed": spec.seed, **row, "wall_s": time.perf_counter() - started}


def metrics_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The key metrics of one run summary, flat (per-database and per-tape columns by name)."""
    plan, jobs, bottleneck = summary.get("plan", {}), summary.get("jobs", {}), summary.get("bottleneck", {})
    by_status = jobs.get("by_status", {})
    row: dict[str, Any] = {
        "finished_at_d": _days(plan.get("finished_at")),
        "complete": bool(plan.get("complete")),
        "deadline_met": plan.get("deadline_met"),
        "deadline_d": _days(plan.get("deadline")),
        "jobs_total": jobs.get("total", 0),
        "jobs_done": by_status.get("Done", 0),
        "jobs_failed": by_status.get("Failed", 0),
        "cpu_used_hs06_h": jobs.get("cpu_used_hs06_hours", 0.0),
        "cpu_wasted_hs06_h": jobs.get("cpu_wasted_hs06_hours", 0.0),
        "bottleneck_kind": bottleneck.get("kind", ""),
        "bottleneck_name": bottleneck.get("name", ""),
        "tape_archived_tb": sum(t.get("archived_tb", 0.0) for t in summary.get("tape", {}).values()),
        "events": summary.get("events", 0),
        "simulated_d": _days(summary.get("simulated_time")),
    }
    for name, db in sorted(summary.get("databases", {}).items()):
        row[f"db_p95_ms[{name}]"] = db.get("p95_latency_ms", 0.0)
    for name, tape in sorted(summary.get("tape", {}).items()):
        row[f"tape_archived_tb[{name}]"] = tape.get("archived_tb", 0.0)
    return row


def _days(seconds: float | None) -> float:
    return math.nan if seconds is None else float(seconds) / 86400.0


# ---------------------------------------------------------------- execution


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: `rows` holds the runs that finished, `where` their outputs (marked incomplete)."""

    def __init__(self, rows: list[dict[str, Any]], planned: int) -> None:
        super().__init__()
        self.rows, self.planned = rows, planned
        self.where: Path | None = None

    def message(self) -> str:
        """The tail of the CLI's one-line 'interrupted' message."""
        where = f"; their outputs (marked incomplete) in {self.where}" if self.where else ""
        return f" after {len(self.rows)} of {self.planned} runs{where}"


def execute(jobs: list[tuple[RunSpec, Scenario]], workers: int | None, scheduler: str | None,
            progress: bool, worker_timeout: float = 60.0,
            task: Callable[[RunSpec, Scenario], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run every job: in-process when workers == 0 (and no scheduler), else on dask.
    `task` (default run_one) turns one job into one row; it must be picklable for dask.
    Ctrl-C raises SweepInterrupted with the rows finished so far (a finished run is never lost)."""
    task = task or run_one
    bar = _bar(len(jobs), progress)
    rows: list[dict[str, Any]] = []

    def collect(row: dict[str, Any]) -> None:
        rows.append(row)
        bar.update()

    try:
        if scheduler is None and workers == 0:
            for spec, scenario in jobs:
                collect(task(spec, scenario))
        else:
            _execute_dask(jobs, workers, scheduler, collect, worker_timeout, task)
        return rows
    except KeyboardInterrupt:
        raise SweepInterrupted(list(rows), len(jobs)) from None
    finally:
        bar.close()


def _execute_dask(jobs: list[tuple[RunSpec, Scenario]], workers: int | None, scheduler: str | None,
                  collect: Callable[[dict[str, Any]], None], worker_timeout: float = 60.0,
                  task: Callable[[RunSpec, Scenario], dict[str, Any]] = run_one) -> None:
    """Submit every job and hand each row to `collect` as its run completes."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        n = workers or min(os.cpu_count() or 1, len(jobs))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    try:
        client = Client(cluster if cluster is not None else scheduler, timeout="10s")
    except (OSError, ValueError, TypeError) as exc:
        if cluster is not None:
            cluster.close()
        raise TwinError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    try:
        _wait_for_workers(client, scheduler, worker_timeout)
        futures = {}
        for spec, scenario in jobs:
            key = run_key(scenario) if task is run_one else f"{run_key(scenario)}-{abs(hash(repr(task)))}"  # another task: other key
            future = client.submit(task, spec, scenario, pure=False, key=key)
            futures.setdefault(future.key, (future, []))[1].append(spec)
        for future in as_completed([f for f, _ in futures.values()]):
            for spec in futures[future.key][1]:
                collect(_collected(future, spec))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _wait_for_workers(client, scheduler: str | None, timeout: float) -> None:
    """A scheduler without workers would keep the sweep waiting for ever: say so instead."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as exc:
        where = scheduler or "the local cluster"
        raise TwinError(f"--scheduler {where}: no worker connected within {timeout:.0f} s "
                        f"(start one with `dask worker {scheduler or 'ADDRESS'}`; {type(exc).__name__})") from None


def _collected(future, spec: RunSpec) -> dict[str, Any]:
    """The run's row, labelled with THIS sweep's run index and parameters (an identical run reused
    from another sweep carries its own); a run whose worker died is a failed row, not a crash."""
    try:
        row = dict(future.result())
    except Exception as exc:  # noqa: BLE001 - KilledWorker, CancelledError, a lost scheduler...
        hint = " (the worker died: memory limit?)" if type(exc).__name__ == "KilledWorker" else ""
        row = {"status": STATUS_ERROR, "error": f"{type(exc).__name__}{hint}: {exc}"[:500], "wall_s": math.nan}
    return {**row, "run": spec.index, **spec.params, "seed": spec.seed}


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="run", desc="sweep", disable=not enabled, leave=False)


# ---------------------------------------------------------------- statistics
def t_975(df: int) -> float:
    """Two-sided 95% Student t quantile for `df` degrees of freedom (table + 1/df interpolation)."""
    if df < 1:
        return math.nan
    if df in _T975:
        return _T975[df]
    keys = sorted(_T975)
    if df > keys[-1]:
        lo, hi, t_lo, t_hi = keys[-1], math.inf, _T975[keys[-1]], _Z975
    else:
        hi = next(k for k in keys if k > df)
        lo = max(k for k in keys if k < df)
        t_lo, t_hi = _T975[lo], _T975[hi]
    w = (1 / lo - 1 / df) / (1 / lo - (0 if hi == math.inf else 1 / hi))
    return t_lo + w * (t_hi - t_lo)


def mean_ci(values: Sequence[float]) -> tuple[float, float, float, int]:
    """(mean, sample std, 95% CI half-width, n) ignoring NaN; half-width NaN below 2 values."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    std = float(x.std(ddof=1))
    return mean, std, t_975(n - 1) * std / math.sqrt(n), n


def aggregate(runs: pd.DataFrame, param_cols: Sequence[str]) -> pd.DataFrame:
    """One row per parameter combination: mean/std/ci95/n of every numeric or boolean metric,
    plus the most frequent bottleneck and the number of failed runs (status error)."""
    ok = runs[runs["status"] == STATUS_OK] if "status" in runs else runs
    metrics = [c for c in ok.columns if c not in (*param_cols, *RUN_COLUMNS, "wall_s") and _numeric(ok[c])]
    rows = []
    for combo in combinations(runs, param_cols):
        mine = _select(ok, combo)
        row: dict[str, Any] = {**combo, "runs": int(len(_select(runs, combo))), "errors": int(len(_select(runs, combo)) - len(mine))}
        for col in metrics:
            mean, std, ci, n = mean_ci(mine[col].astype(float).tolist())
            row.update({f"{col}_mean": mean, f"{col}_std": std, f"{col}_ci95": ci, f"{col}_n": n})
        if "bottleneck_name" in mine and len(mine):
            label = (mine["bottleneck_kind"] + ": " + mine["bottleneck_name"]).value_counts()
            row["bottleneck_mode"], row["bottleneck_share"] = label.index[0], float(label.iloc[0] / len(mine))
        rows.append(row)
    return pd.DataFrame(rows)


def combinations(runs: pd.DataFrame, param_cols: Sequence[str]) -> list[dict[str, Any]]:
    """Distinct parameter combinations in run order (values may be lists, so not drop_duplicates)."""
    seen: dict[str, dict[str, Any]] = {}
    for record in runs[list(param_cols)].to_dict("records"):
        seen.setdefault(repr(sorted(record.items())), record)
    return list(seen.values()) or [{}]


def _numeric(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) > 0 and all(isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)) for v in values)


def _select(frame: pd.DataFrame, combo: dict[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for key, value in combo.items():
        mask &= frame[key].map(lambda v, value=value: _same(v, value))
    return frame[mask]


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


# ---------------------------------------------------------------- the sweep
def run_sweep(scenario_path: Path, params: list[str], seeds: int, out: Path, workers: int | None = None,
              scheduler: str | None = None, progress: bool = True, report: bool = True,
              force: bool = False, worker_timeout: float = 60.0) -> SweepResult:
    """Expand, load (validating every combination), run, tabulate and write the outputs.

    `out` is checked before any run; outputs are staged and renamed into place (twin.outputs)."""
    from twin.outputs import COMPLETE, INCOMPLETE, Staging, check_out, scenario_hash
    from twin.scenario.loader import load_scenario

    if workers is not None and workers < 0:
        raise TwinError(f"--workers {workers}: expected 0 (in-process) or a positive number of workers")
    base = load_scenario(scenario_path)
    specs = expand(params, seeds, base.run.seed)
    jobs = load_specs(scenario_path, specs)
    check_out(out, force)
    started = time.perf_counter()
    where = scheduler or ("in-process" if workers == 0 else f"LocalCluster x{workers or min(os.cpu_count() or 1, len(jobs))}")
    info = {"scenario": base.name, "scenario_sha256": scenario_hash(base.model_dump(mode="json")),
            "seed": base.run.seed, "params": list(params), "seeds": seeds, "runs_planned": len(jobs)}
    param_cols = list(specs[0].params) if specs else []

    def written(rows: list[dict[str, Any]], status: str = COMPLETE) -> SweepResult:
        runs = tidy(rows, param_cols)
        result = SweepResult(runs, aggregate(runs, param_cols), param_cols, out, time.perf_counter() - started, where)
        with Staging(out, "sweep", force, info) as staging:
            write_outputs(result, base.name, report, staging.path)
            result.out = staging.commit(status, runs=len(runs), failed_runs=result.errors)
        result.files = {key: result.out / path.name for key, path in result.files.items()}
        return result

    try:
        rows = execute(jobs, workers, scheduler, progress, worker_timeout)
    except SweepInterrupted as stop:
        if stop.rows:
            stop.where = written(stop.rows, INCOMPLETE).out
        raise
    return written(rows)


def tidy(rows: list[dict[str, Any]], param_cols: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by run index; parameter columns first, then seed, status and metrics."""
    runs = pd.DataFrame(sorted(rows, key=lambda r: r["run"]))
    first = ["run", *param_cols, "seed", "status", "error"]
    return runs[[c for c in first if c in runs] + [c for c in runs.columns if c not in first]]


def write_outputs(result: SweepResult, name: str, report: bool, out: Path | None = None) -> None:
    """The tables (and report.html) into `out` (default: result.out)."""
    out = Path(out or result.out)
    out.mkdir(parents=True, exist_ok=True)
    files = result.files
    files["runs_parquet"], files["runs_csv"], files["summary_csv"] = out / "sweep.parquet", out / "sweep.csv", out / "summary.csv"
    _parquet_safe(result.runs).to_parquet(files["runs_parquet"], index=False)
    result.runs.to_csv(files["runs_csv"], index=False)
    result.summary.to_csv(files["summary_csv"], index=False)
    if report:
        from twin.report.sweep import write_sweep_report

        files["report"] = write_sweep_report(result, name, out / "report.html")


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Parameter values of mixed types (e.g. 0 and '2d') become strings so parquet can store them."""
    frame = frame.copy()
    for col in frame.columns:
        kinds = {type(v) for v in frame[col].dropna()}
        if len(kinds) > 1 and not kinds <= {int, float, bool} or any(k in (list, dict) for k in kinds):
            frame[col] = frame[col].map(lambda v: None if v is None else _fmt(v))
    return frame


# ---------------------------------------------------------------- CLI
def scheduler_address(text: str) -> str:
    """argparse type: a dask scheduler address, tcp://HOST:PORT (or another dask protocol)."""
    if not _ADDRESS.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a dask scheduler address such as tcp://HOST:8786, got {text!r}")
    return text.strip()


_ADDRESS = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss|inproc)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    from twin import options as opt

    parser.add_argument("scenario", type=Path, help="scenario YAML file")
    parser.add_argument("--param", action="append", default=[], metavar="PATH=V1,V2",
                        help="one axis of the sweep: a key path and its values, e.g. "
                             "'topology.sites[LCG.PIC.es].ces[0].slots=0,500' (repeatable; values are YAML; "
                             "a run.seed axis sets each combination's base seed)")
    parser.add_argument("--seeds", type=opt.count(1), default=1, help="replications per combination, seeds run.seed+0..N-1 (default 1)")
    opt.add_out(parser, "runs/<scenario name>-sweep")
    parser.add_argument("--workers", type=opt.count(0), help="LocalCluster worker processes (default: cores; 0 = run in this process)")
    parser.add_argument("--scheduler", type=scheduler_address, metavar="tcp://HOST:PORT",
                        help="use a running dask scheduler instead of a LocalCluster")
    parser.add_argument("--worker-timeout", type=opt.seconds, default=60.0, metavar="SECONDS",
                        help="give up when no dask worker has connected after this long (default 60)")
    opt.add_quiet(parser)
    parser.add_argument("--no-report", action="store_true", help="skip report.html")


def cmd_sweep(args: argparse.Namespace) -> int:
    """`twin sweep`: 0 when every run worked, 1 when some run failed (the others are written; see the error column)."""
    from twin import options as opt

    out = args.out
    if out is None:
        from twin.scenario.loader import load_scenario

        out = Path("runs") / f"{load_scenario(args.scenario).name}-sweep"
    result = run_sweep(args.scenario, args.param, args.seeds, out, workers=args.workers, scheduler=args.scheduler,
                       progress=opt.show_progress(args), report=not args.no_report, force=args.force,
                       worker_timeout=args.worker_timeout)
    opt.say(args, f"{len(result.runs)} runs ({len(result.summary)} combinations x {args.seeds} seeds) in {result.wall_s:.1f} s "
                  f"on {result.workers}; {result.errors} failed", headline_table(result), f"outputs in {result.out}")
    if result.errors:
        failed = result.runs[result.runs["status"] == STATUS_ERROR]
        for _, row in failed.head(5).iterrows():
            print(f"twin: run {row['run']} (seed {row['seed']}) failed: {row['error']}", file=sys.stderr)
        print(f"twin: {result.errors} of {len(result.runs)} runs failed; the others are in {result.out}", file=sys.stderr)
    return 1 if result.errors else 0


HEADLINE = ("finished_at_d", "complete", "jobs_done", "jobs_failed", "cpu_wasted_hs06_h")


def headline_table(result: SweepResult) -> str:
    """Plain-text table of a few key metrics per combination: mean ± 95% CI."""
    cols = [c for c in HEADLINE if f"{c}_mean" in result.summary]
    header = [*result.params, "runs", *cols]
    lines = [header]
    for _, row in result.summary.iterrows():
        lines.append([_fmt(row[p]) for p in result.params] + [str(row["runs"])] +
                     [format_ci(row[f"{c}_mean"], row[f"{c}_ci95"]) for c in cols])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)
