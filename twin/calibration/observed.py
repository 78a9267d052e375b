"""Observed inputs: what the real system reported, read into calibration targets.

Three CSV formats (docs/calibration.md has the full description), recognised by their columns:

- **Transformation Monitor** (DIRAC web portal / `dirac-transformation-get-all`-style):
  TransformationID (or ID), Status, Type, Name, Files, ProcessedPct (or "Processed (%)"), Created,
  TotalCreated (or "Total Created"); optional AgentType, MaxNumberOfTasks and per-status file counts
  (Processed, Unused, Assigned, MaxReset, Problematic...). Rows are matched to the scenario's steps by
  `observed_names` (fnmatch patterns); a row no pattern names is an error.
- **Job accounting export** (DIRAC accounting, Job type, grouped by Site and FinalStatus):
  Site, FinalStatus, Jobs, CPUTime, WallTime, NormCPUTime, InputBytes, OutputBytes.
- **Running jobs** (a time series per site): Time (seconds or ISO date), Site, Running.

Each row becomes `Target`s: a twin quantity, its observed value and a tolerance (the error that counts
as one unit of loss). Columns compared:
  tasks_per_file = TotalCreated / Files        (data steps: retries show here)
  processed_pct  = Processed (%)               (data steps)
  created_per_max = TotalCreated / MaxNumberOfTasks (MC steps: > 1 only if failures were replaced)
  inputs_per_parent_task = Files / the parent MC row's TotalCreated (data steps fed by an MC step in the
                   table: < 1 when MC tasks failed and were not replaced, e.g. 39812 / 40000)
  <status>_pct   = files in MaxReset/Problematic over Files, when the table has those counts
  failed_fraction[site] = Failed / all final jobs at a site; jobs_share[site]; mean_running[site].
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from twin.errors import TwinError
from twin.scenario.schema import Scenario

MONITOR, ACCOUNTING, RUNNING = "transformation-monitor", "job-accounting", "running-jobs"
MONITOR_COLUMNS = ("TransformationID", "Status", "Type", "Name", "Files", "ProcessedPct", "Created", "TotalCreated")
ACCOUNTING_COLUMNS = ("Site", "FinalStatus", "Jobs", "CPUTime", "WallTime", "NormCPUTime", "InputBytes", "OutputBytes")
RUNNING_COLUMNS = ("Time", "Site", "Running")
ALIASES = {"ID": "TransformationID", "Processed (%)": "ProcessedPct", "Total Created": "TotalCreated",
           "Final Status": "FinalStatus", "CPU": "CPUTime", "Wall": "WallTime", "NormCPU": "NormCPUTime"}
FILE_STATUS_COLUMNS = ("Processed", "Unused", "Assigned", "MaxReset", "Problematic", "ProbInFC", "Removed")
REPORTED_STATUS_PCT = ("MaxReset", "Problematic")
#: default tolerances: the error counted as one unit of loss, per column
TOLERANCES = {"tasks_per_file": 0.05, "processed_pct": 0.25, "created_per_max": 0.01, "inputs_per_parent_task": 0.002,
              "MaxReset_pct": 0.25,
              "Problematic_pct": 0.25, "failed_fraction": 0.02, "jobs_share": 0.02, "mean_running": 0.1}
RELATIVE = {"tasks_per_file", "created_per_max", "inputs_per_parent_task", "mean_running"}


@dataclass(frozen=True)
class Target:
    """One observed number the twin should reproduce."""

    row: str          # the observed row (transformation name, or site)
    key: str          # the twin's name for it ("Production/Step", or the site)
    column: str
    observed: float
    tolerance: float
    source: str       # file it came from

    def error(self, twin: float) -> float:
        """Signed error in units of tolerance (relative for ratio columns)."""
        if twin is None or (isinstance(twin, float) and math.isnan(twin)):
            return math.inf
        diff = twin - self.observed
        if self.column in RELATIVE:
            diff /= abs(self.observed) or 1.0
        return diff / self.tolerance


@dataclass
class Observed:
    """Everything read from the observed files, plus rows kept aside (withheld or ignored)."""

    targets: list[Target]
    tables: dict[str, pd.DataFrame]
    ignored: list[str]

    @property
    def columns(self) -> list[str]:
        return sorted({t.column for t in self.targets})


# ---------------------------------------------------------------- reading
def read_observed(paths: Iterable[Path], scenario: Scenario, tolerances: dict[str, float] | None = None) -> Observed:
    tol = {**TOLERANCES, **(tolerances or {})}
    targets: list[Target] = []
    tables: dict[str, pd.DataFrame] = {}
    ignored: list[str] = []
    for path in paths:
        kind, frame = read_table(path)
        tables[str(path)] = frame
        if kind == MONITOR:
            found, skipped = monitor_targets(frame, path, scenario, tol)
            ignored += skipped
        elif kind == ACCOUNTING:
            found = accounting_targets(frame, path, scenario, tol)
        else:
            found = running_targets(frame, path, scenario, tol)
        targets += found
    if not targets:
        raise TwinError(f"{', '.join(map(str, paths))}: no observed row to calibrate on (every row ignored?)")
    return Observed(targets, tables, ignored)


def read_table(path: Path) -> tuple[str, pd.DataFrame]:
    """(kind, frame) with canonical column names; bad files are one-line errors."""
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except FileNotFoundError:
        raise TwinError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TwinError(f"{path}: not a CSV table ({str(exc).splitlines()[0]})") from None
    frame = frame.rename(columns={c: ALIASES.get(c.strip(), c.strip()) for c in frame.columns})
    columns = set(frame.columns)
    for kind, required, marker in ((MONITOR, MONITOR_COLUMNS, "TotalCreated"), (ACCOUNTING, ACCOUNTING_COLUMNS, "FinalStatus"),
                                   (RUNNING, RUNNING_COLUMNS, "Running")):
        if marker in columns or columns >= set(required):
            missing = [c for c in required if c not in columns]
            if missing:
                raise TwinError(f"{path}: missing column {missing[0]!r} for a {kind} table (expected columns {', '.join(required)})")
            return kind, frame
    raise TwinError(f"{path}: unknown table: expected the columns of a transformation monitor table ({', '.join(MONITOR_COLUMNS)}), "
                    f"a job accounting export ({', '.join(ACCOUNTING_COLUMNS)}) or a running-jobs series ({', '.join(RUNNING_COLUMNS)})")


def _counts(frame: pd.DataFrame, path: Path, columns: Iterable[str], label: str) -> None:
    """Every count column numeric and >= 0 (row numbers as in the file, header = line 1)."""
    for col in columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        for i, value in enumerate(values):
            row = frame.iloc[i]
            if pd.isna(value) or value < 0:
                raise TwinError(f"{path}:{i + 2}: {row[label]}: {col}: expected a count >= 0, got {frame[col].iloc[i]}")
        frame[col] = values


# ---------------------------------------------------------------- transformation monitor
def monitor_targets(frame: pd.DataFrame, path: Path, scenario: Scenario, tol: dict[str, float]) -> tuple[list[Target], list[str]]:
    statuses = [c for c in FILE_STATUS_COLUMNS if c in frame.columns]
    _counts(frame, path, ["Files", "Created", "TotalCreated", *statuses, *(["MaxNumberOfTasks"] if "MaxNumberOfTasks" in frame else [])], "Name")
    _counts(frame, path, ["ProcessedPct"], "Name")
    for i, pct in enumerate(frame["ProcessedPct"]):
        if pct > 100:
            raise TwinError(f"{path}:{i + 2}: {frame['Name'].iloc[i]}: ProcessedPct: expected 0..100, got {pct}")
    names = step_names(scenario)
    max_tasks = {key: step.max_tasks for key, step in names.items()}
    targets: list[Target] = []
    ignored: list[str] = []
    rows: dict[str, pd.Series] = {}
    for i, row in frame.iterrows():
        key = match_step(str(row["Name"]), scenario, path, int(i) + 2)
        if key is None:
            ignored.append(str(row["Name"]))
            continue
        rows[key] = row
        targets += _monitor_row(row, key, max_tasks.get(key), tol, str(path))
    targets += _parent_targets(rows, scenario, tol, str(path))
    return targets, ignored


def _parent_targets(rows: dict[str, pd.Series], scenario: Scenario, tol: dict[str, float], src: str) -> list[Target]:
    """Files of a data step over its MC parent's TotalCreated, for parents in the same table (MC tasks lost)."""
    out = []
    for key, parent in parent_steps(scenario).items():
        if key in rows and parent in rows and float(rows[key]["Files"]) > 0 and float(rows[parent]["Files"]) == 0:
            created = float(rows[parent]["TotalCreated"])
            if created > 0:
                out.append(Target(str(rows[key]["Name"]), key, "inputs_per_parent_task", float(rows[key]["Files"]) / created,
                                  tol["inputs_per_parent_task"], src))
    return out


def parent_steps(scenario: Scenario) -> dict[str, str]:
    """"Production/Step" -> "Production/Parent" for steps with exactly one parent."""
    return {f"{p.name}/{s.name}": f"{p.name}/{s.parents[0]}" for p in scenario.workload.productions for s in p.steps
            if len(s.parents) == 1}


def _monitor_row(row: pd.Series, key: str, max_tasks: int | None, tol: dict[str, float], src: str) -> list[Target]:
    name, files, total = str(row["Name"]), float(row["Files"]), float(row["TotalCreated"])
    out = []
    if files > 0:
        out.append(Target(name, key, "tasks_per_file", total / files, tol["tasks_per_file"], src))
        out.append(Target(name, key, "processed_pct", float(row["ProcessedPct"]), tol["processed_pct"], src))
        for status in REPORTED_STATUS_PCT:
            if status in row.index:
                out.append(Target(name, key, f"{status}_pct", 100.0 * float(row[status]) / files, tol[f"{status}_pct"], src))
        return out
    denominator = float(row["MaxNumberOfTasks"]) if "MaxNumberOfTasks" in row.index else float(max_tasks or 0)
    if denominator > 0:
        out.append(Target(name, key, "created_per_max", total / denominator, tol["created_per_max"], src))
    return out


def step_names(scenario: Scenario) -> dict[str, Any]:
    return {f"{p.name}/{s.name}": s for p in scenario.workload.productions for s in p.steps}


def match_step(name: str, scenario: Scenario, path: Path, line: int) -> str | None:
    """The scenario step an observed transformation name stands for (None: ignored on purpose)."""
    mapping = scenario.observed_names
    hits = [key for key, pattern in mapping.transformations.items() if fnmatch.fnmatchcase(name, pattern)]
    if len(hits) > 1:
        raise TwinError(f"{path}:{line}: transformation name {name!r} matches several steps ({', '.join(hits)}) in observed_names")
    if hits:
        if hits[0] not in step_names(scenario):
            raise TwinError(f"scenario {scenario.name}: observed_names.transformations: {hits[0]!r} is not a Production/Step of the scenario")
        return hits[0]
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in mapping.ignore):
        return None
    raise TwinError(f"{path}:{line}: unknown transformation name {name!r}: expected a name matched by the scenario's "
                    f"observed_names (transformations or ignore)")


# ---------------------------------------------------------------- accounting and running jobs
def accounting_targets(frame: pd.DataFrame, path: Path, scenario: Scenario, tol: dict[str, float]) -> list[Target]:
    _counts(frame, path, ["Jobs", "CPUTime", "WallTime", "NormCPUTime", "InputBytes", "OutputBytes"], "Site")
    _known_sites(frame, path, scenario)
    jobs = frame.groupby("Site")["Jobs"].sum()
    failed = frame[frame["FinalStatus"] == "Failed"].groupby("Site")["Jobs"].sum()
    total = float(jobs.sum()) or 1.0
    out = []
    for site, n in jobs.items():
        out.append(Target(site, site, "jobs_share", float(n) / total, tol["jobs_share"], str(path)))
        if n:
            out.append(Target(site, site, "failed_fraction", float(failed.get(site, 0)) / float(n), tol["failed_fraction"], str(path)))
    return out


def running_targets(frame: pd.DataFrame, path: Path, scenario: Scenario, tol: dict[str, float]) -> list[Target]:
    _counts(frame, path, ["Running"], "Site")
    _known_sites(frame, path, scenario)
    means = frame.groupby("Site")["Running"].mean()
    return [Target(site, site, "mean_running", float(v), tol["mean_running"], str(path)) for site, v in means.items() if v > 0]


def _known_sites(frame: pd.DataFrame, path: Path, scenario: Scenario) -> None:
    sites = {s.name for s in scenario.topology.sites}
    for i, site in enumerate(frame["Site"]):
        if site not in sites:
            raise TwinError(f"{path}:{i + 2}: unknown site {site!r}: expected one of the scenario's sites ({', '.join(sorted(sites))})")


# ---------------------------------------------------------------- the twin's side
def twin_values(summary: dict[str, Any], metrics: pd.DataFrame | None = None,
                scenario: Scenario | None = None) -> dict[tuple[str, str], float]:
    """The twin's value of every column, keyed (key, column), from a run summary (and its metrics; the
    scenario names each step's parent for inputs_per_parent_task)."""
    out: dict[tuple[str, str], float] = {}
    created_by = {t["name"]: t.get("tasks_created", 0) for t in summary.get("transformations", [])}
    parents = parent_steps(scenario) if scenario is not None else {}
    for t in summary.get("transformations", []):
        parent = parents.get(t["name"])
        if parent is not None and t.get("files_total") and created_by.get(parent):
            out[(t["name"], "inputs_per_parent_task")] = t["files_total"] / created_by[parent]
        key, files, created = t["name"], t.get("files_total", 0), t.get("tasks_created", 0)
        if files:
            out[(key, "tasks_per_file")] = created / files
            out[(key, "processed_pct")] = float(t.get("processed_pct") or 0.0)
            for status in REPORTED_STATUS_PCT:
                out[(key, f"{status}_pct")] = 100.0 * t.get("files", {}).get(status, 0) / files
        if t.get("max_tasks"):
            out[(key, "created_per_max")] = created / t["max_tasks"]
    by_site = summary.get("jobs", {}).get("by_site", {})
    total = sum(sum(v for s, v in statuses.items() if s in ("Done", "Failed")) for statuses in by_site.values()) or 1
    for site, statuses in by_site.items():
        final = statuses.get("Done", 0) + statuses.get("Failed", 0)
        out[(site, "jobs_share")] = final / total
        if final:
            out[(site, "failed_fraction")] = statuses.get("Failed", 0) / final
    if metrics is not None and len(metrics):
        for col in metrics.columns:
            if str(col).startswith("wms.running[") and str(col).endswith("]"):
                out[(str(col)[12:-1], "mean_running")] = float(metrics[col].mean())
    return out
