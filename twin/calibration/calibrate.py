"""`twin calibrate OBSERVED... --scenario S --fit KEY=LOW:HIGH ...`: fit scenario parameters to what
the real system reported.

Method (docs/calibration.md): optuna's TPE sampler (seeded, so a study is reproducible) proposes
`batch` trials at a time (ask/tell, constant liar; default DEFAULT_BATCH = 2, not the worker count: the
proposals depend on the batch, so a study is the same whatever the workers); every trial runs the scenario with `--seeds`
replications on dask (common random numbers: replication r of every trial uses seed run.seed + r);
the loss is the mean over observed targets of (error / tolerance)^2, the error taken on the
twin's mean over seeds. Afterwards, from the trials already run (no extra runs):
- fit per column: RMS error in tolerance units per observed column, observed vs twin per row;
- parameter uncertainty across seeds: the best trial under each seed's own loss, spread of its values;
- identifiability: the range of each parameter over near-optimal trials (loss <= best + max(1, 10 %))
  as a share of its bounds, and strongly correlated pairs among them (trade-offs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml

from twin.calibration.observed import Observed, Target, read_observed
from twin.calibration.runs import RunPool, scaled
from twin.errors import TwinError
from twin.scenario.paths import split_path
from twin.scenario.schema import Scenario
from twin.sweep import STATUS_OK, RunSpec

NEAR_OPTIMAL_ABS, NEAR_OPTIMAL_REL = 1.0, 0.10
IDENTIFIED_SHARE = 0.5   # near-optimal values spanning more than this share of the bounds: not identified
TRADE_OFF_R = 0.8
MIN_NEAR = 3        # fewer near-optimal trials than this: too few to tell whether a parameter is identified
DEFAULT_BATCH = 2   # trials asked at a time; fixed so that the worker count never changes a study's result


@dataclass(frozen=True)
class FitParam:
    """One fitted value: `key` is its label; a tied parameter ("k1,k2=...") sets every key in `keys`
    to the same value (e.g. one bad-input fraction shared by three productions' EvnDisp steps)."""

    key: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.key.split(","))

    def suggest(self, trial: Any) -> float:
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def overrides(self, value: float) -> dict[str, float]:
        """Scenario key path -> value for every key this parameter sets."""
        return {k: (int(round(value)) if self.integer else value) for k in self.keys}


FIT_SYNTAX = "KEY.PATH[,KEY.PATH...]=LOW:HIGH[:log|:int]"


def parse_fit(item: str) -> FitParam:
    """'KEY=LOW:HIGH', optionally ':log' (log-uniform) or ':int' (an integer such as a counter); several
    comma-separated keys share one value. Item names, not indexes, so the models file can merge."""
    key, sep, raw = item.partition("=")
    key = ",".join(k.strip() for k in key.split(","))
    parts = raw.split(":")
    kind = parts[2] if len(parts) == 3 else ""
    if not sep or not all(key.split(",")) or len(parts) not in (2, 3) or kind not in ("", "log", "int"):
        raise TwinError(f"--fit {item!r}: expected {FIT_SYNTAX}")
    try:
        low, high = float(parts[0]), float(parts[1])
        paths = [split_path(k) for k in key.split(",")]
    except ValueError as exc:
        raise TwinError(f"--fit {item!r}: {exc}") from None
    if not low < high:
        raise TwinError(f"--fit {item!r}: expected LOW < HIGH")
    if kind == "log" and low <= 0:
        raise TwinError(f"--fit {item!r}: a log range needs LOW > 0")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise TwinError(f"--fit {item!r}: an :int range needs whole LOW and HIGH")
    if any(isinstance(p, int) for path in paths for p in path):
        raise TwinError(f"--fit {item!r}: name list items (e.g. failure_models.steps[analysis]) rather than index them, "
                        "so that the calibrated models file merges into scenarios")
    if len(set(key.split(","))) != len(paths):
        raise TwinError(f"--fit {item!r}: a key is listed twice")
    return FitParam(key, low, high, kind == "log", kind == "int")


def distinct_keys(fits: Sequence[FitParam]) -> None:
    """Refuse a key fitted by two --fit items: only one of the two sampled values could reach the scenario."""
    seen: dict[str, str] = {}
    for fit in fits:
        for key in fit.keys:
            if key in seen:
                raise TwinError(f"--fit {fit.key!r}: {key} is already fitted by --fit {seen[key]!r}; fit each key once")
            seen[key] = fit.key


@dataclass
class Trial:
    number: int
    params: dict[str, float]
    rows: list[dict[str, Any]]
    loss: float = math.inf
    seed_losses: list[float] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)


@dataclass
class CalibrationResult:
    scenario: str
    observed: Observed
    observed_files: list[str]
    fits: list[FitParam]
    trials: list[Trial]
    seeds: list[int]
    scale: float
    wall_s: float
    where: str
    withheld: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> Trial:
        return min(self.trials, key=lambda t: (t.loss, t.number))

    def per_row(self) -> list[dict[str, Any]]:
        best = self.best
        out = []
        for t in self.observed.targets:
            label = f"{t.key}|{t.column}"
            twin = best.means.get(label, math.nan)
            out.append({"row": t.row, "step": t.key, "column": t.column, "observed": t.observed, "twin": twin,
                        "twin_sd": best.stds.get(label, math.nan), "error_tol": t.error(twin), "tolerance": t.tolerance})
        return out

    def predictions(self, scenario: Scenario) -> list[dict[str, Any]]:
        """Twin values (best trial, mean ± sd over seeds) of steps `observed_names` maps but the table does
        not have: rows withheld from the fit, to check against later (a prediction, not a fit)."""
        observed = {t.key for t in self.observed.targets}
        withheld = [key for key in scenario.observed_names.transformations if key not in observed]
        ok = [r for r in self.best.rows if r["status"] == STATUS_OK]
        out = []
        for key in withheld:
            for column in ("tasks_per_file", "processed_pct"):
                values = [r["values"].get(f"{key}|{column}", math.nan) for r in ok]
                if values:
                    out.append({"step": key, "pattern": scenario.observed_names.transformations[key], "column": column,
                                "twin": float(np.mean(values)), "twin_sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan})
        return out

    def per_column(self) -> dict[str, float]:
        rows = pd.DataFrame(self.per_row())
        return {col: float(np.sqrt(np.mean(np.square(part["error_tol"])))) for col, part in rows.groupby("column")}

    def seed_uncertainty(self) -> dict[str, dict[str, float]]:
        """Best parameters under each seed's own loss, and their spread: how much seed noise moves the fit."""
        out = {}
        ok = [t for t in self.trials if len(t.seed_losses) == len(self.seeds)]
        for fit in self.fits:
            values = [min(ok, key=lambda t, i=i: t.seed_losses[i]).params[fit.key] for i in range(len(self.seeds))] if ok else []
            out[fit.key] = {"per_seed": values, "mean": float(np.mean(values)) if values else math.nan,
                            "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan}
        return out

    def identifiability(self) -> dict[str, Any]:
        best = self.best.loss
        cut = best + max(NEAR_OPTIMAL_ABS, NEAR_OPTIMAL_REL * best)
        near = [t for t in self.trials if t.loss <= cut]
        params: dict[str, Any] = {}
        for fit in self.fits:
            values = [t.params[fit.key] for t in near]
            span = (max(values) - min(values)) / (fit.high - fit.low) if values else 1.0
            params[fit.key] = {"near_optimal_min": min(values), "near_optimal_max": max(values), "share_of_bounds": span,
                               "identified": (span <= IDENTIFIED_SHARE) if len(near) >= MIN_NEAR else None}
        pairs = []
        if len(near) >= 4:
            frame = pd.DataFrame([t.params for t in near])
            corr = frame.corr()
            keys = [f.key for f in self.fits]
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    r = corr.loc[a, b]
                    if not math.isnan(r) and abs(r) >= TRADE_OFF_R:
                        pairs.append({"a": a, "b": b, "r": float(r)})
        return {"loss_cut": cut, "near_optimal_trials": len(near), "params": params, "trade_offs": pairs}

    def provenance(self) -> str:
        files = ", ".join(Path(f).name for f in self.observed_files)
        return f"derived: calibrated from {files}, {dt.date.today().isoformat()}, loss {self.best.loss:.3g}"


# ---------------------------------------------------------------- the study
def calibrate(observed_files: Sequence[Path], scenario_path: Path, fits: Sequence[FitParam], trials: int = 20,
              seeds: int = 2, workers: int | None = None, scheduler: str | None = None, scale: float = 1.0,
              sampler_seed: int = 0, tolerances: dict[str, float] | None = None, progress: bool = True,
              batch: int | None = None, pool: RunPool | None = None, trial_log: Path | None = None,
              startup_trials: int | None = None) -> CalibrationResult:
    """The study. `pool`: an open RunPool to use (and leave open: a benchmark starts its cluster before
    timing); else one is opened for the study. `trial_log`: a JSON line per trial as it ends, so a long
    study that is stopped leaves what it found. `startup_trials`: random trials before TPE models the
    loss (default min(10, trials)); fewer when trial 0 is already a good, analytically derived start."""
    import contextlib
    import time

    import optuna

    from twin.scenario.loader import load_scenario

    if not fits:
        raise TwinError("--fit: expected at least one KEY=LOW:HIGH to fit")
    distinct_keys(fits)
    if trials < 1 or seeds < 1:
        raise TwinError(f"--trials {trials} --seeds {seeds}: expected at least 1 of each")
    if startup_trials is not None and startup_trials < 1:
        raise TwinError(f"--startup-trials {startup_trials}: expected at least 1")
    if batch is not None and batch < 1:
        raise TwinError(f"--batch {batch}: expected at least 1")
    base = load_scenario(scenario_path)
    for fit in fits:  # every key path must exist and accept the bounds before any run starts
        for value in (fit.low, fit.high):
            _trial_scenario(scenario_path, fit.overrides(value), scale=scale)
    observed = read_observed(observed_files, base, tolerances)
    seed_list = [base.run.seed + r for r in range(seeds)]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=sampler_seed, constant_liar=True,
                                                                       n_startup_trials=startup_trials or min(10, trials)))
    study.enqueue_trial(_start_values(base, fits))  # trial 0: the scenario as it is, so the fit never ends worse
    done: list[Trial] = []
    bar = _bar(trials * seeds, progress)
    started = time.perf_counter()
    with (contextlib.nullcontext(pool) if pool is not None else RunPool(workers, scheduler)) as pool:
        size = batch or DEFAULT_BATCH
        while len(done) < trials:
            asked = [study.ask() for _ in range(min(size, trials - len(done)))]
            params = [{f.key: f.suggest(t) for f in fits} for t in asked]
            jobs = []
            for i, values in enumerate(params):
                scenario = _trial_scenario(scenario_path, expand(fits, values), scale)
                for seed in seed_list:
                    run = scenario.model_copy(deep=True)
                    run.run.seed = seed
                    jobs.append((RunSpec(len(jobs), {"trial": i}, seed), run))
            rows = pool.run(jobs, bar.update)
            for i, (otrial, values) in enumerate(zip(asked, params)):
                mine = [r for r, (spec, _) in zip(rows, jobs) if spec.params["trial"] == i]
                trial = score(Trial(otrial.number, values, mine), observed.targets)
                study.tell(otrial, trial.loss if math.isfinite(trial.loss) else 1e12)
                done.append(trial)
                if trial_log is not None:
                    with trial_log.open("a", encoding="utf-8") as log:
                        log.write(json.dumps({"trial": trial.number, "params": values, "loss": trial.loss, "means": trial.means,
                                              "stds": trial.stds, "seed_losses": trial.seed_losses,
                                              "rows": [{"status": r["status"], "values": r.get("values", {})} for r in trial.rows]},
                                             default=_json) + "\n")
        where = pool.where
    bar.close()
    result = CalibrationResult(base.name, observed, [str(f) for f in observed_files], list(fits), done, seed_list, scale,
                               time.perf_counter() - started, where)
    result.withheld = result.predictions(base)
    return result


def expand(fits: Sequence[FitParam], values: dict[str, float]) -> dict[str, float]:
    """Fitted values (by label) -> scenario overrides (every tied key, integers rounded)."""
    out: dict[str, float] = {}
    for fit in fits:
        out.update(fit.overrides(values[fit.key]))
    return out


def result_from_log(trial_log: Path, observed_files: Sequence[Path], scenario_path: Path, fits: Sequence[FitParam],
                    seeds: int, scale: float, tolerances: dict[str, float] | None = None) -> CalibrationResult:
    """The result of a study from its trial log (`calibrate(trial_log=...)`), e.g. one stopped before its last
    trial: no run is repeated; losses are recomputed from the logged means with today's targets."""
    from twin.scenario.loader import load_scenario

    base = load_scenario(scenario_path)
    observed = read_observed(observed_files, base, tolerances)
    trials = []
    try:
        lines = [json.loads(line) for line in trial_log.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise TwinError(f"--from-log {trial_log}: not a readable trial log ({exc})") from None
    for item in lines:
        missing = [f.key for f in fits if f.key not in item.get("params", {})]
        if missing:
            raise TwinError(f"--from-log {trial_log}: trial {item.get('trial')} has no value for --fit {missing[0]}")
        trial = Trial(int(item["trial"]), item["params"], item.get("rows", []), means=item["means"], stds=item["stds"],
                      seed_losses=item.get("seed_losses", []))
        trial.loss = _loss(observed.targets, trial.means) if trial.means else math.inf
        trials.append(trial)
    if not trials:
        raise TwinError(f"--from-log {trial_log}: no trial in the log")
    result = CalibrationResult(base.name, observed, [str(f) for f in observed_files], list(fits), trials,
                               [base.run.seed + r for r in range(seeds)], scale, math.nan, f"trial log {trial_log.name}")
    result.withheld = result.predictions(base)
    return result


def _start_values(scenario: Scenario, fits: Sequence[FitParam]) -> dict[str, float]:
    """The scenario's current value of each fitted parameter (its first key), clipped into its bounds."""
    from twin.scenario.paths import get_path

    data = scenario.model_dump(mode="json")
    return {f.key: min(max(float(get_path(data, f.keys[0])), f.low), f.high) for f in fits}


def _trial_scenario(path: Path, fit_values: dict[str, float], scale: float) -> Scenario:
    from twin.scenario.loader import load_scenario

    return scaled(load_scenario(path, dict(fit_values)), scale)


def score(trial: Trial, targets: Sequence[Target]) -> Trial:
    """Loss on the mean over seeds, and each seed's own loss (for the across-seed uncertainty)."""
    ok = [r for r in trial.rows if r["status"] == STATUS_OK]
    if not ok:
        return trial
    labels = [f"{t.key}|{t.column}" for t in targets]
    for label in labels:
        values = [r["values"].get(label, math.nan) for r in ok]
        trial.means[label] = float(np.mean(values))
        trial.stds[label] = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    trial.loss = _loss(targets, trial.means)
    trial.seed_losses = [_loss(targets, r["values"]) for r in ok]
    return trial


def _loss(targets: Sequence[Target], values: dict[str, float]) -> float:
    errors = [t.error(values.get(f"{t.key}|{t.column}", math.nan)) for t in targets]
    return float(np.mean(np.square(errors)))


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="run", desc="calibrate", disable=not enabled, leave=False)


# ---------------------------------------------------------------- outputs
def write_outputs(result: CalibrationResult, out: Path, models_path: Path | None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {"calibration": out / "calibration.json", "trials": out / "trials.csv", "fit": out / "fit.csv"}
    files["models"] = models_path or out / "models.yaml"
    pd.DataFrame(result.per_row()).to_csv(files["fit"], index=False)
    pd.DataFrame([{"trial": t.number, **t.params, "loss": t.loss} for t in result.trials]).to_csv(files["trials"], index=False)
    files["calibration"].write_text(json.dumps(summary_dict(result), indent=2, default=_json), encoding="utf-8")
    files["models"].parent.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `twin calibrate` ({result.provenance()[9:]}); see {files['calibration']}\n"
    files["models"].write_text(header + yaml.safe_dump(models_document(result), sort_keys=False, width=200), encoding="utf-8")
    return files


def models_document(result: CalibrationResult) -> dict[str, Any]:
    """The calibrated values as scenario data (named list items merge by name), each with its provenance."""
    data: dict[str, Any] = {}
    for key, value in expand(result.fits, result.best.params).items():
        _put_path(data, key, value if isinstance(value, int) else round(value, 6))
    data["provenance"] = {key: result.provenance() for fit in result.fits for key in fit.keys}
    return data


def _put_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` (a.b[name].c) in nested data; a bracketed name is a list item merged by name."""
    node: Any = data
    tokens = re.findall(r"\[([^\]]+)\]|([^.\[\]]+)", key)
    for i, (bracket, plain) in enumerate(tokens):
        last = i == len(tokens) - 1
        nxt_is_bracket = not last and tokens[i + 1][0] != ""
        if bracket:
            item = next((x for x in node if x.get("name") == bracket), None)
            if item is None:
                item = {"name": bracket}
                node.append(item)
            node = item
            continue
        if last:
            node[plain] = value
        else:
            node = node.setdefault(plain, [] if nxt_is_bracket else {})


def summary_dict(result: CalibrationResult) -> dict[str, Any]:
    best = result.best
    return {
        "scenario": result.scenario, "observed": result.observed_files, "seeds": result.seeds, "scale": result.scale,
        "trials": len(result.trials), "wall_s": result.wall_s, "executed_on": result.where,
        "best": {"trial": best.number, "loss": best.loss, "params": best.params},
        "fit_per_column": result.per_column(), "rows": result.per_row(), "ignored_rows": result.observed.ignored,
        "seed_uncertainty": result.seed_uncertainty(), "identifiability": result.identifiability(),
        "provenance": result.provenance(), "predicted_withheld_rows": result.withheld,
    }


def _json(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


IDENTIFIED_LABEL = {True: "identified", False: "NOT identified", None: "too few near-optimal trials to tell"}


def format_result(result: CalibrationResult) -> str:
    best = result.best
    lines = [f"best trial {best.number}: loss {best.loss:.3g} ({len(result.trials)} trials x {len(result.seeds)} seeds, "
             f"scale {result.scale:g}, {result.wall_s:.1f} s on {result.where})"]
    ident = result.identifiability()
    unc = result.seed_uncertainty()
    for fit in result.fits:
        p = ident["params"][fit.key]
        lines.append(f"  {fit.key} = {best.params[fit.key]:.4g}  (across seeds sd {unc[fit.key]['std']:.2g}; near-optimal "
                     f"{p['near_optimal_min']:.3g}..{p['near_optimal_max']:.3g}: {IDENTIFIED_LABEL[p['identified']]})")
    for pair in ident["trade_offs"]:
        lines.append(f"  trade-off: {pair['a']} ~ {pair['b']} (r = {pair['r']:+.2f} among near-optimal trials)")
    lines.append("fit per column (RMS error in tolerances): " + ", ".join(f"{c} {v:.2f}" for c, v in result.per_column().items()))
    for row in result.per_row():
        lines.append(f"  {row['row'][:60]:60s} {row['column']:16s} observed {row['observed']:9.4g}  twin {row['twin']:9.4g}"
                     f" ± {row['twin_sd']:.2g}")
    for row in result.withheld:
        lines.append(f"  predicted (not in the table) {row['step']:40s} {row['column']:16s} twin {row['twin']:9.4g} ± {row['twin_sd']:.2g}")
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI
def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("observed", type=Path, nargs="+",
                        help="observed CSV files: Transformation Monitor table, job accounting export, running jobs (docs/calibration.md)")
    parser.add_argument("--scenario", type=Path, required=True, help="scenario YAML to calibrate (it names the observed rows in observed_names)")
    parser.add_argument("--fit", action="append", default=[], metavar=FIT_SYNTAX,
                        help="a scenario value to fit within bounds, e.g. failure_models.steps[analysis].failure_prob=0:0.6 (repeatable); "
                             "comma-separated keys share one value; :log samples log-uniformly, :int whole numbers")
    parser.add_argument("--trials", type=int, default=20, help="optimiser trials (default 20)")
    parser.add_argument("--seeds", type=int, default=2, help="replications per trial, seeds run.seed+0..N-1 (default 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="run the scenario at this fraction of its size (MC tasks, slots; default 1)")
    parser.add_argument("--tolerance", action="append", default=[], metavar="COLUMN=VALUE",
                        help="error counted as one unit of loss for an observed column, e.g. processed_pct=0.5 (repeatable)")
    parser.add_argument("--sampler-seed", type=int, default=0, help="seed of the optimiser's sampler (default 0)")
    parser.add_argument("--startup-trials", type=int, help="random trials before the sampler models the loss (default min(10, trials))")
    parser.add_argument("--batch", type=int, help="trials asked of the sampler at a time (default 2, whatever the workers; raise it to keep a large cluster busy); the trials a "
                                                  "study tries depend on it, not on the workers: the same --batch gives the same study on any cluster")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<scenario name>-calibration)")
    parser.add_argument("--models", type=Path, help="calibrated parameter file to write (default: <out>/models.yaml)")
    parser.add_argument("--workers", type=int, help="LocalCluster worker processes (default: cores; 0 = in this process)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use a running dask scheduler")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    parser.add_argument("--from-log", type=Path, metavar="TRIALS.jsonl",
                        help="run nothing: rebuild the outputs from a study's trial log (<out>/trials.jsonl), e.g. of a study stopped early")


def parse_tolerances(items: Sequence[str]) -> dict[str, float]:
    from twin.calibration.observed import TOLERANCES

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not sep or key not in TOLERANCES or value <= 0:
            raise TwinError(f"--tolerance {item!r}: expected COLUMN=VALUE > 0 with COLUMN one of {', '.join(TOLERANCES)}")
        out[key] = value
    return out


def cmd_calibrate(args: argparse.Namespace) -> int:
    fits = [parse_fit(item) for item in args.fit]
    distinct_keys(fits)
    tolerances = parse_tolerances(args.tolerance)
    if args.from_log is not None:
        result = result_from_log(args.from_log, args.observed, args.scenario, fits, args.seeds, args.scale, tolerances)
        out = args.out or Path("runs") / f"{result.scenario}-calibration"
    else:
        from twin.scenario.loader import load_scenario

        out = args.out or Path("runs") / f"{load_scenario(args.scenario).name}-calibration"
        out.mkdir(parents=True, exist_ok=True)
        log = out / "trials.jsonl"  # a JSON line per trial as it ends: a study stopped early keeps what it found
        log.unlink(missing_ok=True)
        result = calibrate(args.observed, args.scenario, fits, trials=args.trials, seeds=args.seeds, workers=args.workers,
                           scheduler=args.scheduler, scale=args.scale, sampler_seed=args.sampler_seed, tolerances=tolerances,
                           progress=not args.no_progress, startup_trials=args.startup_trials, trial_log=log, batch=args.batch)
    files = write_outputs(result, out, args.models)
    print(format_result(result))
    print(f"calibrated parameters: {files['models']}; details in {out}")
    return 0
