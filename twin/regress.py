"""`twin regress`: test a new TransformationAgent plugin against a stored baseline before deploying it.

    twin regress scenario.yaml --plugin my_plugins.py:MyPlugin [--step PROD/STEP ...]
                 [--baseline FILE] [--update-baseline] [--tolerance 0.05]

The scenario runs with the user's class (`pkg.mod:Cls` or `path/file.py:Cls`, the DIRAC
PluginLocation form) as the `plugin_class` of the chosen steps. Which steps: `--step PROD/STEP`
(repeatable); by default every step whose `plugin` is a plugin the class defines or overrides
(its own `_Name` methods, e.g. `_ByRunChunk` -> ByRunChunk). The plugin name a substituted step
runs is `--plugin-name`, else the step's own when the class defines it, else the class's only
new plugin.

Key metrics (jobs Done/Failed, finish time, wasted CPU, completeness; per transformation: tasks
created, % of input files processed) are compared with a JSON baseline. A metric regresses when it
is worse than the baseline by more than `tolerance` x max(|baseline|, 1) in its bad direction;
metrics with no better direction (tasks created) must stay within the tolerance either way.
`--update-baseline` (re)writes the baseline from this run. Exit 0 ok, 1 regression, 2 bad input.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.errors import TwinError
from twin.scenario.schema import Scenario

FORMAT = 1
HIGHER, LOWER, SAME = "higher", "lower", "same"  # which way is better
OK, BETTER, REGRESSION, NEW = "ok", "better", "REGRESSION", "new"
_PLUGIN_METHOD = re.compile(r"_[A-Za-z]+")


# ---------------------------------------------------------------- metrics
def key_metrics(summary: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Flat {metric: (value, better direction)} of one run summary."""
    jobs, plan = summary["jobs"], summary["plan"]
    finish = plan.get("finished_at")
    out: dict[str, tuple[float, str]] = {
        "jobs_done": (jobs["by_status"].get("Done", 0), HIGHER),
        "jobs_failed": (jobs["by_status"].get("Failed", 0), LOWER),
        "finished_at_h": ((finish if finish is not None else summary["simulated_time"]) / 3600.0, LOWER),
        "cpu_wasted_hs06_h": (jobs["cpu_wasted_hs06_hours"], LOWER),
        "complete": (bool(plan.get("complete")), HIGHER),
    }
    for t in summary["transformations"]:
        out[f"transformations[{t['name']}].tasks_created"] = (t["tasks_created"], SAME)
        if t["processed_pct"] is not None:
            out[f"transformations[{t['name']}].processed_pct"] = (t["processed_pct"], HIGHER)
    return out


@dataclass
class MetricDiff:
    metric: str
    baseline: Any
    value: Any
    better: str
    limit: float
    status: str

    @property
    def change(self) -> float | None:
        if isinstance(self.baseline, (int, float)) and isinstance(self.value, (int, float)):
            return float(self.value) - float(self.baseline)
        return None


def compare_metric(metric: str, baseline: Any, value: Any, better: str, tolerance: float) -> MetricDiff:
    """Judge one metric: ok / better / REGRESSION (missing in this run counts as a regression)."""
    if baseline is None:
        return MetricDiff(metric, None, value, better, 0.0, NEW)
    if value is None:
        return MetricDiff(metric, baseline, None, better, 0.0, REGRESSION)
    limit = tolerance * max(abs(float(baseline)), 1.0)
    delta = float(value) - float(baseline)
    worse = {HIGHER: -delta, LOWER: delta, SAME: abs(delta)}[better]
    if worse > limit:
        status = REGRESSION
    elif better != SAME and -worse > limit:
        status = BETTER
    else:
        status = OK
    return MetricDiff(metric, baseline, value, better, limit, status)


@dataclass
class Comparison:
    """The diff of a run against its baseline; `ok` when nothing regressed."""

    rows: list[MetricDiff]
    baseline_path: Path | None
    updated: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def regressions(self) -> list[MetricDiff]:
        return [r for r in self.rows if r.status == REGRESSION]

    @property
    def ok(self) -> bool:
        return not self.regressions

    def table(self) -> str:
        head = ("metric", "baseline", "this run", "change", "allowed", "status")
        lines = [head] + [(r.metric, _fmt(r.baseline), _fmt(r.value), _fmt(r.change, signed=True),
                           f"{'±' if r.better == SAME else ''}{_fmt(r.limit)}" if r.status != NEW else "", r.status)
                          for r in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


def compare(current: dict[str, tuple[float, str]], baseline: dict[str, Any], tolerance: float) -> list[MetricDiff]:
    names = list(baseline) + [m for m in current if m not in baseline]
    return [compare_metric(m, baseline.get(m), current[m][0] if m in current else None,
                           current[m][1] if m in current else _direction(m), tolerance) for m in names]


def _direction(metric: str) -> str:
    return {"jobs_done": HIGHER, "complete": HIGHER}.get(metric, HIGHER if metric.endswith("processed_pct") else
                                                           SAME if metric.endswith("tasks_created") else LOWER)


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not value.is_integer():
        return f"{value:+,.2f}" if signed else f"{value:,.2f}"
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


# ---------------------------------------------------------------- plugin substitution
def plugin_names(cls: type) -> list[str]:
    """The plugin names (`_Name` methods) a class defines or overrides below the twin's native classes."""
    from twin.dirac.transformation import plugins

    native = {plugins.PluginBase, plugins.TransformationPlugin, plugins.CTATransformationPlugin, object}
    names: list[str] = []
    for klass in cls.__mro__:
        if klass in native:
            continue
        for attr, value in vars(klass).items():
            if _PLUGIN_METHOD.fullmatch(attr) and callable(value) and attr[1:] not in names:
                names.append(attr[1:])
    return names


def absolute_spec(spec: str, base: Path) -> str:
    """'rel/file.py:Cls' -> '/abs/rel/file.py:Cls' so the spec works from any folder (dask workers too)."""
    location, sep, cls = spec.rpartition(":")
    if sep and location.endswith(".py") and not Path(location).is_absolute():
        return f"{(base / location).resolve()}:{cls}"
    return spec


def load_user_class(spec: str) -> type:
    from twin.dirac.transformation.plugins import load_plugin_class

    if ":" not in spec:
        raise TwinError(f"--plugin {spec!r}: expected pkg.module:ClassName or path/to/file.py:ClassName")
    try:
        cls = load_plugin_class(spec)
    except (ImportError, TypeError, SyntaxError) as exc:
        raise TwinError(f"--plugin {spec!r}: cannot load the class ({exc})") from None
    if not inspect.isclass(cls):
        raise TwinError(f"--plugin {spec!r}: expected a class")
    return cls


def substitution(scenario: Scenario, spec: str, steps: list[str] | None,
                 plugin_name: str | None) -> tuple[dict[str, Any], list[str]]:
    """Key-path overrides that put the user's class (and plugin name) on the chosen steps, and those steps."""
    cls = load_user_class(spec)
    names = plugin_names(cls)
    if plugin_name and plugin_name not in names and not callable(getattr(cls, f"_{plugin_name}", None)):
        raise TwinError(f"--plugin-name {plugin_name!r}: {cls.__name__} has no method _{plugin_name}")
    all_steps = {f"{p.name}/{s.name}": s for p in scenario.workload.productions for s in p.steps}
    if steps:
        unknown = [s for s in steps if s not in all_steps]
        if unknown:
            raise TwinError(f"--step {unknown[0]!r}: no such step in {scenario.name} (expected one of {sorted(all_steps)})")
        chosen = list(steps)
    else:
        chosen = [key for key, s in all_steps.items() if s.plugin in names]
        if not chosen:
            raise TwinError(f"--plugin {spec}: no step of {scenario.name} uses a plugin of {cls.__name__} "
                            f"(it defines {names or 'none'}); choose steps with --step PROD/STEP")
    overrides: dict[str, Any] = {}
    for key in chosen:
        prod, step = key.split("/", 1)
        name = plugin_name or (all_steps[key].plugin if all_steps[key].plugin in names else _only(names, cls, key))
        path = f"workload.productions[{prod}].steps[{step}]"
        overrides.update({f"{path}.plugin_class": spec, f"{path}.plugin_source": "native", f"{path}.plugin": name})
    return overrides, chosen


def _only(names: list[str], cls: type, step: str) -> str:
    if len(names) == 1:
        return names[0]
    raise TwinError(f"--step {step}: {cls.__name__} defines {names or 'no plugin'}, not exactly one; name it with --plugin-name")


# ---------------------------------------------------------------- the regression run
def run_regression(scenario_path: Path, plugin: str, steps: list[str] | None = None, baseline: Path | None = None,
                   update: bool = False, tolerance: float = 0.05, overrides: dict[str, Any] | None = None,
                   plugin_name: str | None = None, base: Path | None = None) -> Comparison:
    """Run `scenario_path` with `plugin` substituted and compare with (or write) the baseline.

    A relative `file.py:Class` plugin is found from `base` (default: the current folder); the
    baseline records the spec as given, so it stays valid on other machines."""
    from twin.runner import simulate
    from twin.scenario.loader import load_scenario

    if not tolerance >= 0 or tolerance == float("inf"):  # NaN compares False: it would turn every check off
        raise TwinError(f"--tolerance {tolerance}: expected a finite fraction >= 0, e.g. 0.05")
    spec = absolute_spec(plugin, base or Path.cwd())
    scenario = load_scenario(scenario_path, overrides)
    swap, chosen = substitution(scenario, spec, steps, plugin_name)
    path = Path(baseline) if baseline else default_baseline(scenario.name, spec)
    if update:
        check_baseline_path(path)
    elif not path.is_file():
        read_baseline(path)  # names the problem before the simulation
    result = simulate(load_scenario(scenario_path, {**(overrides or {}), **swap}), keep_events=False)
    current = key_metrics(result.summary)
    info = {"scenario": scenario.name, "plugin": plugin, "steps": chosen,
            "seed": scenario.run.seed, "tolerance": tolerance}
    if update:
        write_baseline(path, current, info)
        return Comparison(compare(current, {m: v for m, (v, _) in current.items()}, tolerance), path, True, info)
    return Comparison(compare(current, read_baseline(path), tolerance), path, False, info)


def default_baseline(scenario_name: str, spec: str) -> Path:
    return Path("baselines") / f"{scenario_name}.{spec.rpartition(':')[2]}.json"


def check_baseline_path(path: Path) -> None:
    """--update-baseline replaces a FILE: refuse a folder or an unwritable place before simulating."""
    from twin.outputs import check_parent

    if path.is_dir():
        raise TwinError(f"--baseline {path}: expected a JSON file to write, but it is a folder")
    check_parent(path, "--baseline")


def write_baseline(path: Path, metrics: dict[str, tuple[float, str]], info: dict[str, Any]) -> None:
    """Written to a temporary file then renamed: the old baseline stays whole if this fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, **{k: v for k, v in info.items() if k != "tolerance"},
            "metrics": {m: v for m, (v, _) in metrics.items()}}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TwinError(f"{path}: baseline not found; create it with --update-baseline")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TwinError(f"{path}: not a readable baseline JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("metrics"), dict):
        raise TwinError(f"{path}: metrics: expected a twin regress baseline (format {FORMAT}) with a 'metrics' mapping")
    return data["metrics"]


# ---------------------------------------------------------------- CLI
def add_regress_arguments(parser: argparse.ArgumentParser) -> None:
    from twin import options as opt

    opt.add_scenario(parser)
    parser.add_argument("--plugin", required=True, metavar="MODULE:CLASS",
                        help="the plugin class to test: pkg.module:Class or path/to/file.py:Class")
    parser.add_argument("--step", action="append", default=[], metavar="PROD/STEP",
                        help="step to run the class on (repeatable; default: every step using one of its plugins)")
    parser.add_argument("--plugin-name", help="plugin name the substituted steps run (default: see twin regress docs)")
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="baseline JSON (default: baselines/<scenario>.<Class>.json)")
    parser.add_argument("--update-baseline", action="store_true", help="write (replace) the baseline from this run")
    parser.add_argument("--tolerance", type=opt.fraction, default=0.05,
                        help="allowed relative change in the bad direction, a finite number >= 0 (default 0.05)")
    opt.add_quiet(parser, progress=False)


def cmd_regress(args: argparse.Namespace) -> int:
    """`twin regress`: 0 no regression (or baseline written), 1 regression; bad input raises TwinError."""
    from twin.scenario.paths import parse_params

    overrides = parse_params(args.param)
    if args.seed is not None:
        overrides["run.seed"] = args.seed
    result = run_regression(args.scenario, args.plugin, args.step or None, args.baseline, args.update_baseline,
                            args.tolerance, overrides, args.plugin_name)
    from twin.options import say

    say(args, f"{result.info['plugin']} on {', '.join(result.info['steps'])} of {result.info['scenario']} (seed {result.info['seed']})")
    if result.updated:
        say(args, f"baseline written: {result.baseline_path}")
        return 0
    say(args, result.table(), f"{len(result.regressions)} regressions against {result.baseline_path}" if result.regressions else
        f"no regression against {result.baseline_path} (tolerance {args.tolerance:g})")
    return 1 if result.regressions else 0
