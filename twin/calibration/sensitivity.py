"""`twin sensitivity SCENARIO`: which `provenance: assumption` numbers does the verdict hang on?

1. Morris screening (SALib, `--trajectories` r: r x (k+1) runs) over every numeric scenario value whose
   provenance says "assumption: ..." (or the `--param KEY=LOW:HIGH` given), each varied over
   [value x (1 - spread), value x (1 + spread)] clipped to its schema bounds. Outputs: finish time (days),
   deadline met (0/1), wasted CPU (HS06 h) and "same bottleneck as the nominal run" (0/1). Parameters are
   ranked by Morris mu* normalised by the output's spread, summed over outputs.
2. Sobol (SALib Saltelli, `--sobol N`: N x (2k'+2) runs) for the top k' of the screening: first-order and
   total indices of the finish time.
3. For the top k', a one-at-a-time scan (`--levels` values over the range, others nominal): the nearest
   value at which the verdict (deadline met, bottleneck) differs from the nominal run, i.e. how far the
   assumption may move before the verdict flips.
All runs use the scenario's seed (common random numbers) and go through the calibration RunPool (dask).
Outputs: sensitivity.json and sensitivity.csv in --out; a run folder holding sensitivity.json shows
the section "What this verdict depends on" in its report.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from twin.calibration.calibrate import FitParam, parse_fit
from twin.calibration.runs import RunPool, scaled
from twin.errors import TwinError
from twin.scenario.paths import get_path
from twin.scenario.schema import Scenario
from twin.sweep import STATUS_OK, RunSpec

OUTPUTS = ("finished_at_d", "deadline_met", "cpu_wasted_hs06_h", "same_bottleneck")
PROBABILITY_HINTS = ("prob", "fraction", "efficiency", "share")


@dataclass(frozen=True)
class Assumption:
    key: str
    nominal: float
    low: float
    high: float
    note: str


def key_matches(key: str, pattern: str) -> bool:
    """fnmatch over key paths, with [ and ] literal: `failure_models.sites[grid].*` means the item named grid
    (a key path's brackets name list items; as fnmatch classes they would match nothing)."""
    return fnmatch.fnmatchcase(key, pattern.replace("[", "[[]"))


def assumptions(scenario: Scenario, spread: float, only: Sequence[str] = ()) -> tuple[list[Assumption], list[str]]:
    """Numeric values with 'assumption:' provenance (filtered by `only` patterns); and the skipped keys."""
    data = scenario.model_dump(mode="json")
    found, skipped = [], []
    for key, text in sorted(scenario.provenance.items()):
        if not text.startswith("assumption:") or (only and not any(key_matches(key, p) for p in only)):
            continue
        try:
            value = get_path(data, key)
        except (KeyError, ValueError, IndexError, TypeError):
            skipped.append(f"{key}: not a value of the resolved scenario")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
            skipped.append(f"{key}: not a non-zero number ({type(value).__name__})")
            continue
        low, high = value * (1 - spread), value * (1 + spread)
        if value <= 1 and any(h in key.rsplit(".", 1)[-1] for h in PROBABILITY_HINTS):
            high = min(high, 1.0)  # probabilities, fractions, efficiencies (not CPU shares, which are weights)
        found.append(Assumption(key, float(value), float(low), float(high), text))
    return found, skipped


def _run_points(pool: RunPool, path: Path, points: list[dict[str, float]], seed: int, scale: float, bar) -> list[dict[str, Any]]:
    from twin.scenario.loader import load_scenario

    jobs = []
    for i, values in enumerate(points):
        scenario = scaled(load_scenario(path, {k: _typed(v, k, path) for k, v in values.items()}), scale)
        scenario.run.seed = seed
        jobs.append((RunSpec(i, values, seed), scenario))
    return pool.run(jobs, bar.update)


_INT_KEYS: dict[tuple[str, str], bool] = {}


def _typed(value: float, key: str, path: Path) -> float | int:
    """Integer-typed values (slots, drives...) stay integers: round, and keep them >= 1."""
    if _INT_KEYS.get((str(path), key)):
        return max(1, int(round(value)))
    return float(value)


def _outputs(row: dict[str, Any], nominal_bottleneck: str) -> list[float]:
    if row["status"] != STATUS_OK:
        return [math.nan] * len(OUTPUTS)
    return [row["finished_at_d"], 1.0 if row["deadline_met"] else 0.0, row["cpu_wasted_hs06_h"],
            1.0 if row["bottleneck"] == nominal_bottleneck else 0.0]


def sensitivity(path: Path, params: Sequence[FitParam] = (), spread: float = 0.5, only: Sequence[str] = (),
                trajectories: int = 4, top: int = 3, sobol_n: int = 0, levels: int = 5, scale: float = 1.0,
                workers: int | None = None, scheduler: str | None = None, progress: bool = True) -> dict[str, Any]:
    from SALib.analyze import morris as morris_analyze
    from SALib.sample import morris as morris_sample
    from tqdm import tqdm

    from twin.scenario.loader import load_scenario

    base = load_scenario(path)
    if params:
        found = [Assumption(p.key, float(get_path(base.model_dump(mode="json"), p.key)), p.low, p.high, "--param") for p in params]
        skipped: list[str] = []
    else:
        found, skipped = assumptions(base, spread, only)
    if len(found) < 2:
        raise TwinError(f"{path}: expected at least 2 numeric 'assumption:' values to screen, found {len(found)} "
                        "(use --param KEY=LOW:HIGH or --only PATTERN)")
    data = base.model_dump(mode="json")
    for a in found:
        _INT_KEYS[(str(path), a.key)] = isinstance(get_path(data, a.key), int)
    problem = {"num_vars": len(found), "names": [a.key for a in found], "bounds": [[a.low, a.high] for a in found]}
    X = morris_sample.sample(problem, N=trajectories, num_levels=4, seed=base.run.seed)
    n_oat = min(top, len(found)) * levels
    total = 1 + len(X) + n_oat + (sobol_n * (2 * min(top, len(found)) + 2) if sobol_n else 0)
    bar = tqdm(total=total, unit="run", desc="sensitivity", disable=not progress, leave=False)
    with RunPool(workers, scheduler) as pool:
        nominal = _run_points(pool, path, [{}], base.run.seed, scale, bar)[0]
        if nominal["status"] != STATUS_OK:
            raise TwinError(f"{path}: the nominal run failed: {nominal['error']}")
        rows = _run_points(pool, path, [dict(zip(problem["names"], x)) for x in X], base.run.seed, scale, bar)
        Y = np.array([_outputs(r, nominal["bottleneck"]) for r in rows], dtype=float)
        screening = _morris(problem, X, Y, morris_analyze, base.run.seed)
        ranked = sorted(found, key=lambda a: -screening[a.key]["score"])
        chosen = ranked[:min(top, len(found))]
        flips = _flip_scan(pool, path, chosen, nominal, levels, base.run.seed, scale, bar)
        sobol = _sobol(pool, path, chosen, sobol_n, base.run.seed, scale, bar) if sobol_n else {}
        where = pool.where
    bar.close()
    return {"scenario": base.name, "scale": scale, "seed": base.run.seed, "executed_on": where, "runs": total,
            "nominal": {k: nominal.get(k) for k in ("finished_at_d", "deadline_met", "cpu_wasted_hs06_h", "bottleneck")},
            "parameters": [{"key": a.key, "nominal": a.nominal, "low": a.low, "high": a.high, "provenance": a.note,
                            **screening[a.key], **flips.get(a.key, {}), **sobol.get(a.key, {})} for a in ranked],
            "skipped": skipped, "errors": int(sum(r["status"] != STATUS_OK for r in rows))}


def _morris(problem: dict[str, Any], X: np.ndarray, Y: np.ndarray, analyze, seed: int) -> dict[str, dict[str, float]]:
    """mu* per output, and a score: the sum over outputs of mu* / (output range), so outputs of any unit count alike."""
    out: dict[str, dict[str, float]] = {name: {"score": 0.0} for name in problem["names"]}
    for j, name in enumerate(OUTPUTS):
        y = np.nan_to_num(Y[:, j], nan=np.nanmean(Y[:, j]) if np.isfinite(Y[:, j]).any() else 0.0)
        spread = float(np.ptp(y))
        if spread == 0:
            for p in problem["names"]:
                out[p][f"mu_star[{name}]"] = 0.0
            continue
        res = analyze.analyze(problem, X, y, num_levels=4, seed=seed)
        for p, mu in zip(problem["names"], res["mu_star"]):
            out[p][f"mu_star[{name}]"] = float(mu)
            out[p]["score"] += float(mu) / spread
    return out


def _flip_scan(pool: RunPool, path: Path, chosen: list[Assumption], nominal: dict[str, Any], levels: int, seed: int,
               scale: float, bar) -> dict[str, dict[str, Any]]:
    points, owners = [], []
    for a in chosen:
        for v in np.linspace(a.low, a.high, levels):
            points.append({a.key: float(v)})
            owners.append(a)
    rows = _run_points(pool, path, points, seed, scale, bar)
    verdict = (nominal["deadline_met"], nominal["bottleneck"])
    out: dict[str, dict[str, Any]] = {}
    for a in chosen:
        mine = [(p[a.key], r) for p, r, o in zip(points, rows, owners) if o is a and r["status"] == STATUS_OK]
        flips = [(v, r) for v, r in mine if (r["deadline_met"], r["bottleneck"]) != verdict]
        if not flips:
            out[a.key] = {"flip": None, "flip_note": f"no verdict change within {a.low:.4g}..{a.high:.4g}"}
            continue
        v, r = min(flips, key=lambda f: abs(f[0] - a.nominal))
        what = "deadline " + ("met" if r["deadline_met"] else "missed") if r["deadline_met"] != verdict[0] else f"bottleneck {r['bottleneck']}"
        out[a.key] = {"flip": v, "flip_change": (v - a.nominal) / a.nominal,
                      "flip_note": f"{what} at {v:.4g} ({(v - a.nominal) / a.nominal:+.0%} from {a.nominal:.4g})"}
    return out


def _sobol(pool: RunPool, path: Path, chosen: list[Assumption], n: int, seed: int, scale: float, bar) -> dict[str, dict[str, float]]:
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    problem = {"num_vars": len(chosen), "names": [a.key for a in chosen], "bounds": [[a.low, a.high] for a in chosen]}
    X = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
    rows = _run_points(pool, path, [dict(zip(problem["names"], x)) for x in X], seed, scale, bar)
    y = np.array([r.get("finished_at_d", math.nan) if r["status"] == STATUS_OK else math.nan for r in rows], dtype=float)
    y = np.nan_to_num(y, nan=np.nanmax(y) if np.isfinite(y).any() else 0.0)
    if np.ptp(y) == 0:
        return {a.key: {"sobol_S1[finished_at_d]": 0.0, "sobol_ST[finished_at_d]": 0.0} for a in chosen}
    res = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=seed)
    return {a.key: {"sobol_S1[finished_at_d]": float(s1), "sobol_ST[finished_at_d]": float(st)}
            for a, s1, st in zip(chosen, res["S1"], res["ST"])}


# ---------------------------------------------------------------- CLI
def add_sensitivity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, help="scenario YAML file")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=LOW:HIGH",
                        help="screen these values instead of the scenario's 'assumption:' values (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="screen only the assumptions whose key path matches this pattern (* and ?; brackets are literal, "
                             "e.g. 'failure_models.sites[grid].*'; repeatable)")
    parser.add_argument("--spread", type=float, default=0.5, help="vary each assumption by ±this fraction (default 0.5)")
    parser.add_argument("--trajectories", type=int, default=4, help="Morris trajectories r: r x (k+1) runs (default 4)")
    parser.add_argument("--top", type=int, default=3, help="assumptions kept for the flip scan and Sobol (default 3)")
    parser.add_argument("--sobol", type=int, default=0, metavar="N", help="Sobol base samples for the top ones (default 0: skip)")
    parser.add_argument("--levels", type=int, default=5, help="values per assumption in the flip scan (default 5)")
    parser.add_argument("--scale", type=float, default=1.0, help="run the scenario at this fraction of its size (default 1)")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<scenario name>-sensitivity); a run folder works")
    parser.add_argument("--workers", type=int, help="LocalCluster worker processes (default: cores; 0 = in this process)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use a running dask scheduler")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def parse_param(item: str) -> FitParam:
    """--param KEY=LOW:HIGH: one key per range (tied keys, :log and :int are `twin calibrate`'s; an integer
    key is already sampled on whole numbers here)."""
    try:
        param = parse_fit(item)
    except TwinError as exc:  # the same syntax errors, named after this command's option
        raise TwinError(str(exc).replace("--fit", "--param", 1)) from None
    if len(param.keys) > 1 or param.log or param.integer:
        raise TwinError(f"--param {item!r}: expected KEY=LOW:HIGH, one key per range (tied keys, ':log' and ':int' "
                        "are for twin calibrate --fit)")
    return param


def cmd_sensitivity(args: argparse.Namespace) -> int:
    import pandas as pd

    if not 0 < args.spread < 1:
        raise TwinError(f"--spread {args.spread}: expected 0 < spread < 1")
    if args.trajectories < 2 or args.levels < 2 or args.top < 1:
        raise TwinError("--trajectories and --levels: expected at least 2; --top: at least 1")
    result = sensitivity(args.scenario, [parse_param(p) for p in args.param], args.spread, args.only, args.trajectories,
                         args.top, args.sobol, args.levels, args.scale, args.workers, args.scheduler, not args.no_progress)
    out = args.out or Path("runs") / f"{result['scenario']}-sensitivity"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sensitivity.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    pd.DataFrame(result["parameters"]).to_csv(out / "sensitivity.csv", index=False)
    print(format_sensitivity(result))
    print(f"outputs in {out} (sensitivity.json: `twin report` of a run folder holding it shows 'What this verdict depends on')")
    return 0


def format_sensitivity(result: dict[str, Any]) -> str:
    nominal = result["nominal"]
    lines = [f"{result['scenario']}: {result['runs']} runs on {result['executed_on']} (scale {result['scale']:g}); nominal: finished "
             f"{nominal['finished_at_d']:.2f} d, deadline met {nominal['deadline_met']}, bottleneck {nominal['bottleneck']}"]
    for i, p in enumerate(result["parameters"], 1):
        lines.append(f"{i:2d}. {p['key']}  score {p['score']:.3g}  {p.get('flip_note', '')}")
    if result["skipped"]:
        lines.append(f"skipped {len(result['skipped'])} non-numeric assumptions (see sensitivity.json)")
    return "\n".join(lines)
