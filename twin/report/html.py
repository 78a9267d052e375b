"""The HTML reports: one run (`write_run_report`) and baseline vs what-if (`write_compare_report`).

Readers are operators and managers asking "can these sites finish the production by
the deadline?", "when does this tape fill?", "what if the JobDB server is halved?".
So every report opens with the plan verdict in a coloured box, then the bottleneck,
then the evidence (figures and tables) section by section. A report is one HTML file
with everything inline: it can be mailed, attached to a ticket or archived with the run.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import pandas as pd
import yaml

from twin.engine.eventlog import read_events
from twin.errors import TwinError
from twin.report import figures as F
from twin.report import services as services_report
from twin.report.calibration import calibration_section, sensitivity_section
from twin.report.render import (Html, box, details, duration, figure_html, join, key_values, note, num, page, pct, pre,
                                table, tag, verdict_kind)

if TYPE_CHECKING:
    from twin.results import RunResult

RUN_FILES = ("summary.json", "metrics.parquet", "events.parquet")
SATURATION_PCT = 95.0


@dataclass
class Run:
    """What a report needs from one run, whether in memory (RunResult) or read back from its folder."""

    label: str
    summary: dict[str, Any]
    metrics: pd.DataFrame
    events: pd.DataFrame
    scenario: dict[str, Any]
    folder: Path | None = None

    @cached_property
    def t_end(self) -> float:
        return F.end_time(self.metrics, self.summary)

    @cached_property
    def spans(self) -> list[F.FaultSpan]:
        return F.fault_spans(self.events, self.summary)


def run_from_result(result: "RunResult") -> Run:
    scenario = result.scenario.model_dump(mode="json")
    summary = dict(result.summary)
    summary.setdefault("event_log_sha256", result.event_digest)
    return Run(result.scenario.name, summary, result.metrics, _events(result), scenario, result.out)


#: The event rows the report draws (progress, failures, fault spans): it reads these, never the whole log.
REPORT_EVENTS = {"job.status": ("Done", "Failed"), "file.status": ("Processed",), "fault.start": None, "fault.end": None}


def _events(source: "RunResult | Path") -> pd.DataFrame:
    """The one place the report reads the event log: a run in memory or its streamed events.parquet."""
    if isinstance(source, Path):
        return read_events(source, REPORT_EVENTS)
    return source.log.frame(REPORT_EVENTS)


def load_run(folder: Path) -> Run:
    """Read a run folder written by twin.runner.write_outputs; TwinError names what is missing or broken."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TwinError(f"{folder}: run folder not found (expected a folder with {', '.join(RUN_FILES)})")
    for name in RUN_FILES:
        if not (folder / name).is_file():
            raise TwinError(f"{folder}: {name} is missing (is this the --out folder of `twin run`?)")
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TwinError(f"{folder / 'summary.json'}: not a readable JSON summary ({exc})") from None
    if not isinstance(summary, dict) or "jobs" not in summary or "plan" not in summary:
        raise TwinError(f"{folder / 'summary.json'}: expected a twin run summary (keys 'jobs', 'plan'...)")
    tables = {}
    for name in ("metrics.parquet", "events.parquet"):
        try:
            tables[name] = _events(folder / name) if name == "events.parquet" else pd.read_parquet(folder / name)
        except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
            raise TwinError(f"{folder / name}: not a readable parquet table ({exc})") from None
    scenario = summary.get("scenario") or {}
    label = str(summary.get("scenario_name") or scenario.get("name") or folder.name)
    return Run(label, summary, tables["metrics.parquet"], tables["events.parquet"], scenario, folder)


# ================================================================ run report
def write_run_report(result: "RunResult", path: Path) -> Path:
    """Write the self-contained HTML report of one run; returns `path`."""
    return _write(Path(path), run_report_html(run_from_result(result)))


def write_folder_report(folder: Path, path: Path | None = None) -> Path:
    """Re-render the report of a run from its output folder (default: <folder>/report.html)."""
    run = load_run(folder)
    return _write(Path(path) if path else Path(folder) / "report.html", run_report_html(run))


def run_report_html(run: Run) -> str:
    s = run.summary
    colors = _colors(run)
    sections = [
        ("summary", "Summary", _summary_section(run)),
        ("bottleneck", "Bottleneck", _bottleneck_section(s)),
        ("jobs", "Jobs by site", _jobs_section(run, colors)),
        ("transformations", "Transformation progress", _transformations_section(run)),
        ("data", "Data: storage, transfers, tape", _data_section(run, colors)),
        ("services", "Core services", _services_section(run)),
        ("failures", "Failures and retries", _failures_section(run)),
        ("faults", "Faults", _faults_section(run)),
        ("invariants", "Invariants", _invariants_section(s)),
        ("scenario", "Scenario", _scenario_section(run)),
    ]
    sections[-1:-1] = [extra for extra in (calibration_section(run.scenario, s), sensitivity_section(run.folder)) if extra]  # issue 15
    subtitle = f"seed {s.get('seed')} · simulated {duration(s.get('simulated_time'))} · {num(s.get('events'))} events"
    return page(f"twin run report: {run.label}", subtitle, sections)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _colors(run: Run) -> dict[str, str]:
    """Site colours, and each SE in its site's colour (so CC-IN2P3's disk and tape match its jobs)."""
    colors = F.palette(F.site_names(run.metrics, run.summary))
    for se in run.scenario.get("topology", {}).get("storage", []):
        if se.get("site") in colors:
            colors.setdefault(se["name"], colors[se["site"]])
    other = F.palette(n for n in list(run.summary.get("storage", {})) + list(run.summary.get("tape", {})) if n not in colors)
    return {**other, **colors}


# ---------------------------------------------------------------- summary and bottleneck
def _plan_box(plan: Mapping[str, Any]) -> Html:
    kind, title = verdict_kind(plan)
    return box(kind, title, plan.get("verdict", "no plan verdict in the summary"))


def _summary_section(run: Run) -> Html:
    s, plan, jobs = run.summary, run.summary.get("plan", {}), run.summary.get("jobs", {})
    by_status = jobs.get("by_status", {})
    trans = s.get("transformations", [])
    used, wasted = float(jobs.get("cpu_used_hs06_hours") or 0.0), float(jobs.get("cpu_wasted_hs06_hours") or 0.0)
    cards = [
        ("finished after" if plan.get("finished_at") is not None else "still running at",
         duration(plan.get("finished_at") if plan.get("finished_at") is not None else s.get("simulated_time"))),
        ("deadline", duration(plan.get("deadline")) if plan.get("deadline") is not None else "none"),
        ("jobs", num(jobs.get("total", 0))),
        ("jobs Done", num(by_status.get("Done", 0))),
        ("jobs Failed", num(by_status.get("Failed", 0))),
        ("transformations complete", f"{sum(1 for t in trans if t.get('complete'))} / {len(trans)}"),
        ("CPU used [HS06·h]", num(used)),
        ("CPU wasted", pct(_wasted_fraction(jobs), 1)),
        ("TB uploaded", num(jobs.get("tb_uploaded"), 2)),
    ]
    parts: list[Any] = [_plan_box(plan), key_values(cards)]
    if wasted:
        parts.append(note(f"CPU wasted by failed jobs: {num(wasted)} HS06·h."))
    if plan.get("shortfalls"):
        parts.append(tag("h3", "Shortfalls"))
        parts.append(tag("ul", join(tag("li", x) for x in plan["shortfalls"])))
    if run.scenario.get("description"):
        parts.append(note(run.scenario["description"]))
    return join(parts)


def _wasted_fraction(jobs: Mapping[str, Any]) -> float | None:
    used, wasted = float(jobs.get("cpu_used_hs06_hours") or 0.0), float(jobs.get("cpu_wasted_hs06_hours") or 0.0)
    return wasted / (used + wasted) if used + wasted else None


def sorted_resources(resources: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Saturated resources first, in order of first saturation; then the rest by mean utilization."""
    return sorted(resources, key=lambda r: (r.get("first_saturated_at") is None, r.get("first_saturated_at") or 0.0,
                                            -float(r.get("mean_utilization") or 0.0)))


def _bottleneck_section(s: Mapping[str, Any], shown: int = 12) -> Html:
    """The verdict, then the resources table: saturated and busiest first, the idle tail folded away."""
    neck = s.get("bottleneck", {})
    rows = sorted_resources(s.get("resources", []))
    classes = [("bad" if r.get("name") == neck.get("name") and r.get("kind") == neck.get("kind") else "warn")
               if r.get("first_saturated_at") is not None else None for r in rows]
    cells = [[r.get("kind"), r.get("name"), pct(r.get("mean_utilization")), pct(r.get("peak_utilization")),
              duration(r.get("first_saturated_at"))] for r in rows]
    headers = ["resource", "name", "mean utilization", "peak utilization", "first saturated (≥95%) after"]
    cut = max(shown, sum(1 for r in rows if r.get("first_saturated_at") is not None))
    parts = [box("info", "Bottleneck:", neck.get("verdict", "no verdict in the summary")),
             note("Every capacity-bound resource, saturated ones first (in order of first saturation)."),
             table(headers, cells[:cut], classes[:cut])]
    if len(rows) > cut:
        parts.append(details(f"{len(rows) - cut} more resources, less busy", table(headers, cells[cut:], classes[cut:])))
    return join(parts)


# ---------------------------------------------------------------- jobs and transformations
def _jobs_section(run: Run, colors: Mapping[str, str]) -> Html:
    by_site = run.summary.get("jobs", {}).get("by_site", {})
    statuses = sorted({st for counts in by_site.values() for st in counts}, key=lambda x: (x not in ("Done", "Failed"), x))
    rows = [[site] + [num(counts.get(st, 0)) for st in statuses] + [num(sum(counts.values())),
            pct(counts.get("Failed", 0) / sum(counts.values()) if sum(counts.values()) else None, 1)]
            for site, counts in by_site.items()]
    spans, t_end = run.spans, run.t_end
    return join([
        figure_html(F.jobs_by_site(run.metrics, colors, spans, t_end), "running and waiting jobs by site"),
        table(["site", *statuses, "total", "failed %"], rows) if rows else note("No job reached a site."),
        figure_html(F.pilots(run.metrics, colors, spans, t_end), "pilots per site")
        or note("No pilot gauges in this run."),
    ])


def _transformations_section(run: Run) -> Html:
    trans = run.summary.get("transformations", [])
    if not trans:
        return note("No transformations in this run.")
    file_statuses = sorted({st for t in trans for st in t.get("files", {})}, key=lambda x: (x != "Processed", x))
    rows, classes = [], []
    for t in trans:
        tasks = t.get("tasks", {})
        rows.append([t.get("id"), t.get("name"), t.get("type"), t.get("plugin"), t.get("status"), num(t.get("files_total")),
                     *[num(t.get("files", {}).get(st, 0)) for st in file_statuses],
                     F.progress_text(F.progress_pct(t)), num(t.get("tasks_created")),
                     num(tasks.get("Done", 0)), num(tasks.get("Failed", 0)), duration(t.get("started_at")),
                     duration(t.get("finished_at")), "yes" if t.get("complete") else f"no: {t.get('shortfall', '')}"])
        classes.append(None if t.get("complete") else "bad")
    headers = ["ID", "name", "type", "plugin", "status", "files", *[f"files {st}" for st in file_statuses], "progress",
               "tasks created", "tasks Done", "tasks Failed", "started", "finished", "complete"]
    return join([
        table(headers, rows, classes),
        figure_html(F.transformation_bars(run.summary), "transformation progress"),
        figure_html(F.progress_over_time(run.events, run.summary, run.spans, run.t_end), "progress per transformation")
        or note("No job.status events in the event log (run.event_log off?)."),
    ])


# ---------------------------------------------------------------- data
def first_reaching(data: F.Curves, level: float) -> dict[str, float | None]:
    """Per series, the first time (s) its value reaches `level`, None if never."""
    out: dict[str, float | None] = {}
    for name, (x, y) in data.items():
        hit = [xi for xi, yi in zip(x, y) if yi >= level]
        out[name] = hit[0] * F.DAY if hit else None
    return out


def _data_section(run: Run, colors: Mapping[str, str]) -> Html:
    s, spans, t_end = run.summary, run.spans, run.t_end
    fill = F.fill_curves(run.metrics, s)
    full_at = first_reaching(fill, SATURATION_PCT)
    storage = s.get("storage", {})
    rows, classes = [], []
    for name, se in storage.items():
        peak = max(fill[name][1].max() / 100.0, float(se.get("fill") or 0.0)) if name in fill and len(fill[name][1]) else se.get("fill")
        rows.append([name, se.get("kind"), num(se.get("capacity_tb")), num(se.get("used_tb"), 2), pct(se.get("fill"), 1),
                     pct(peak, 1), duration(full_at.get(name)), num(se.get("reads")), num(se.get("writes")),
                     num(se.get("refused_writes"))])
        classes.append("bad" if se.get("refused_writes") else "warn" if full_at.get(name) is not None else None)
    parts: list[Any] = [tag("h3", "Storage")]
    parts.append(table(["storage element", "kind", "capacity [TB]", "used [TB]", "fill at end", "peak fill",
                        f"≥{SATURATION_PCT:.0f}% full after", "reads", "writes", "refused writes"], rows, classes)
                 if rows else note("No storage elements."))
    parts.append(figure_html(F.storage_fill(run.metrics, s, colors, spans, t_end), "storage fill"))
    parts.append(tag("h3", "Transfers"))
    parts.append(figure_html(F.transfers(run.metrics, spans, t_end), "transfers per link")
                 or note("No transfer was active or queued on any link at the sample times."))
    parts.append(tag("h3", "Tape"))
    tape = s.get("tape", {})
    if tape:
        parts.append(table(["tape SE", "drives", "drive utilization", "archived [TB]", "recalled [TB]", "mounts", "recalls"],
                           [[n, num(t.get("drives")), pct(t.get("drive_utilization"), 1), num(t.get("archived_tb"), 2),
                             num(t.get("recalled_tb"), 2), num(t.get("mounts")), num(t.get("recalls"))] for n, t in tape.items()]))
    parts.append(figure_html(F.tape(run.metrics, s, colors, spans, t_end), "tape queues, drives, buffer and throughput")
                 or note("No tape system in this scenario."))
    return join(parts)


# ---------------------------------------------------------------- core services
def _services_section(run: Run) -> Html:
    s, spans, t_end = run.summary, run.spans, run.t_end
    servers = s.get("servers", {})
    dbs = s.get("databases", {})
    agents = s.get("agents", {})
    return join([
        tag("h3", "Core servers"),
        table(["server", "cores", "utilization", "CPU [h]", "calls", "services"],
              [[n, num(v.get("cores")), pct(v.get("utilization"), 1), num(v.get("cpu_hours"), 2), num(v.get("calls")),
                ", ".join(v.get("services", []))] for n, v in servers.items()]) if servers else note("No core servers."),
        figure_html(F.server_cpu(run.metrics, s, spans, t_end), "core server CPU"),
        tag("h3", "Databases"),
        table(["database", "queries", "mean latency [ms]", "p95 latency [ms]", "connection utilization", "top queries"],
              [[n, num(v.get("queries")), num(v.get("mean_latency_ms"), 2), num(v.get("p95_latency_ms"), 2),
                pct(v.get("utilization"), 1), ", ".join(f"{k} {c:,}" for k, c in v.get("top_queries", {}).items())]
               for n, v in dbs.items()]) if dbs else note("No databases."),
        figure_html(F.databases(run.metrics, spans, t_end), "database latency, queue and rate"),
        services_report.section(run.metrics, s, spans, t_end),
        tag("h3", "Agents"),
        table(["agent", "cycles", "busy fraction", "overruns"],
              [[n, num(v.get("cycles")), pct(v.get("busy_fraction"), 2), num(v.get("overruns"))] for n, v in agents.items()],
              ["warn" if v.get("overruns") else None for v in agents.values()]) if agents else note("No agents."),
        figure_html(F.agents(s), "agents busy fraction"),
    ])


# ---------------------------------------------------------------- failures, faults, invariants, scenario
def _failures_section(run: Run) -> Html:
    s = run.summary
    jobs = s.get("jobs", {})
    reasons = jobs.get("failures_by_reason", {})
    requests = s.get("requests", {})
    total_failed = sum(reasons.values())
    parts: list[Any] = [key_values([
        ("jobs Failed (final)", num(jobs.get("by_status", {}).get("Failed", 0))),
        ("job failures (incl. retried)", num(total_failed)),
        ("CPU wasted [HS06·h]", num(jobs.get("cpu_wasted_hs06_hours"))),
        ("requests Failed", num(requests.get("by_status", {}).get("Failed", 0))),
        ("files replicated", num(requests.get("files_replicated", 0))),
    ])]
    if reasons:
        parts.append(table(["failure reason (minor status)", "jobs", "share"],
                           [[r, num(n), pct(n / total_failed, 1)] for r, n in reasons.items()]))
    parts.append(figure_html(F.failures(s, run.events, run.spans, run.t_end), "job failures")
                 or note("No job failed."))
    if requests.get("by_status"):
        parts.append(tag("h3", "Requests"))
        parts.append(table(["request status", "requests"], [[k, num(v)] for k, v in requests["by_status"].items()]))
    parts.append(figure_html(F.requests(run.metrics, run.spans, run.t_end), "requests by status"))
    if s.get("production_failures"):
        parts.append(tag("h3", "Production system failures"))
        parts.append(tag("ul", join(tag("li", str(x)) for x in s["production_failures"])))
    return join(parts)


def _faults_section(run: Run) -> Html:
    spans = run.spans
    if not spans:
        return note("No faults in this scenario.")
    rows = [[sp.label, sp.kind, sp.target, duration(sp.start), duration(sp.end) if sp.end is not None else "not ended",
             duration((sp.end if sp.end is not None else run.t_end) - sp.start), sp.params] for sp in spans]
    return join([note("Fault windows as they happened (from the event log); shaded and numbered on every time plot."),
                 table(["#", "kind", "target", "start", "end", "duration", "params"], rows),
                 figure_html(F.faults_timeline(spans, run.t_end), "fault timeline")])


def invariant_ok(name: str, value: Any) -> bool | None:
    """True/False for boolean checks; counts of unfinished objects are informative (None)."""
    return value if isinstance(value, bool) else None


def _invariants_section(s: Mapping[str, Any]) -> Html:
    inv = s.get("invariants", {})
    if not inv:
        return note("No invariants in the summary.")
    checks = {k: invariant_ok(k, v) for k, v in inv.items()}
    broken = [k for k, ok in checks.items() if ok is False]
    head = box("bad", "Invariant violated:", ", ".join(broken)) if broken else box("ok", "All invariants hold.", "")
    rows = [[k.replace("_", " "), "yes" if v is True else "NO" if v is False else num(v)] for k, v in inv.items()]
    classes = ["bad" if checks[k] is False else "ok" if checks[k] else None for k in inv]
    return join([head, table(["check", "value"], rows, classes)])


def _scenario_section(run: Run) -> Html:
    scenario = run.scenario
    parts: list[Any] = []
    provenance = scenario.get("provenance") or run.summary.get("provenance") or {}
    if provenance:
        rows = [[key, *(_split_provenance(text))] for key, text in provenance.items()]
        bases = Counter(basis or "unstated" for _, basis, _ in rows)
        counts = ", ".join(f"{n} {basis}" for basis, n in bases.most_common())
        parts.append(details(f"Provenance of {len(rows)} values ({counts})", table(["value", "basis", "explanation"], rows)))
    text = yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True) if scenario else "(scenario not recorded)"
    parts.append(details("Resolved scenario (YAML)", pre(text)))
    return join(parts)


def _split_provenance(text: str) -> tuple[str, str]:
    basis, sep, rest = str(text).partition(": ")
    return (basis, rest) if sep else ("", str(text))


# ================================================================ compare report
def write_compare_report(baseline_dir: Path, whatif_dir: Path, path: Path) -> Path:
    """Side-by-side report of two run folders (baseline, what-if); TwinError when one is missing or broken."""
    base, whatif = load_run(Path(baseline_dir)), load_run(Path(whatif_dir))
    return _write(Path(path), compare_report_html(base, whatif))


@dataclass
class Delta:
    """One compared quantity; `better` is +1 when higher is better, -1 when lower is, 0 when neither.

    `fraction` values (0..1) are shown as % and their difference in percentage points.
    """

    label: str
    base: Any
    whatif: Any
    fmt: Callable[[Any], str] = num
    better: int = 0
    fraction: bool = False

    def cells(self) -> list[Any]:
        show = (lambda v: pct(v, 1)) if self.fraction else self.fmt
        return [self.label, show(self.base), show(self.whatif), *self._delta()]

    @property
    def difference(self) -> float | None:
        """what-if − baseline, None when either side is not a number."""
        if not (_is_number(self.base) and _is_number(self.whatif)):
            return None
        return float(self.whatif) - float(self.base)

    def _delta(self) -> list[Any]:
        d = self.difference
        if d is None:
            return ["same" if self.base == self.whatif else "changed", ""]
        magnitude = f"{abs(d) * 100:.1f} pt" if self.fraction else self.fmt(abs(d))
        if magnitude == (f"{0:.1f} pt" if self.fraction else self.fmt(0.0 * d)):
            d = 0.0  # below the displayed precision: not a change a reader should act on
        sign = "+" if d > 0 else "−" if d < 0 else ""
        base = float(self.base)
        rel = abs(d / base) if base else None
        rel_text = "" if d == 0 else "n/a" if rel is None else f"{sign}{rel:.1%}" if rel >= 0.001 else f"{sign}{rel * 100:.2g}%"
        cls = "better" if d * self.better > 0 else "worse" if d * self.better < 0 else None
        text = sign + magnitude
        return [tag("span", text, class_=cls) if cls else text, rel_text]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (isinstance(value, float) and math.isnan(value))


def delta_table(rows: Iterable[Delta], labels: tuple[str, str]) -> Html:
    rows = list(rows)
    return table(["", labels[0], labels[1], "Δ", "Δ %"], [r.cells() for r in rows])


def key_deltas(a: Run, b: Run) -> list[Delta]:
    """The headline comparison: plan, jobs, CPU, bottleneck."""
    sa, sb = a.summary, b.summary
    ja, jb = sa.get("jobs", {}), sb.get("jobs", {})
    return [
        # Earlier is better only when both runs did all their work: stopping short is not finishing sooner.
        Delta("finished after", _finish(sa), _finish(sb), duration, -1 if _complete(sa) and _complete(sb) else 0),
        Delta("deadline verdict", verdict_kind(sa.get("plan", {}))[1], verdict_kind(sb.get("plan", {}))[1], str),
        Delta("jobs Done", ja.get("by_status", {}).get("Done", 0), jb.get("by_status", {}).get("Done", 0), num, +1),
        Delta("jobs Failed", ja.get("by_status", {}).get("Failed", 0), jb.get("by_status", {}).get("Failed", 0), num, -1),
        Delta("CPU used [HS06·h]", ja.get("cpu_used_hs06_hours"), jb.get("cpu_used_hs06_hours"), num),
        Delta("CPU wasted [HS06·h]", ja.get("cpu_wasted_hs06_hours"), jb.get("cpu_wasted_hs06_hours"), num, -1),
        Delta("CPU wasted %", _wasted_fraction(ja), _wasted_fraction(jb), better=-1, fraction=True),
        Delta("bottleneck", _bottleneck_name(sa), _bottleneck_name(sb), str),
    ]


def _complete(summary: Mapping[str, Any]) -> bool:
    return bool(summary.get("plan", {}).get("complete"))


def _finish(summary: Mapping[str, Any]) -> float | None:
    return summary.get("plan", {}).get("finished_at")


def _bottleneck_name(summary: Mapping[str, Any]) -> str:
    neck = summary.get("bottleneck", {})
    return f"{neck['kind']} of {neck['name']}" if neck.get("name") else neck.get("verdict", "–")


def keyed_deltas(a: Mapping[str, Any], b: Mapping[str, Any], value: Callable[[Any], Any], label: Callable[[str], str],
                 fmt: Callable[[Any], str] = num, better: int = 0, fraction: bool = False) -> list[Delta]:
    """One Delta per key of either mapping (a site, a transformation, a DB...)."""
    keys = list(a) + [k for k in b if k not in a]
    return [Delta(label(k), value(a[k]) if k in a else None, value(b[k]) if k in b else None, fmt, better, fraction)
            for k in keys]


def peak_fill(run: Run) -> dict[str, float]:
    fill = F.fill_curves(run.metrics, run.summary)
    out = {k: float(v.get("fill") or 0.0) for k, v in run.summary.get("storage", {}).items()}
    for name, (_, y) in fill.items():
        if len(y):
            out[name] = max(out.get(name, 0.0), float(y.max()) / 100.0)
    return out


def compare_report_html(a: Run, b: Run) -> str:
    labels = _run_labels(a, b)
    t_end = max(a.t_end, b.t_end)
    sa, sb = a.summary, b.summary
    by_trans = lambda s: {t["name"]: t for t in s.get("transformations", [])}  # noqa: E731
    sections = [
        ("summary", "Summary", join([
            tag("h3", f"Baseline: {labels[0]}"), _plan_box(sa.get("plan", {})),
            tag("h3", f"What-if: {labels[1]}"), _plan_box(sb.get("plan", {})),
            delta_table(key_deltas(a, b), labels),
            note("Δ = what-if − baseline; green is better, red is worse (where better has a direction)."),
        ])),
        ("jobs", "Jobs by site", join([
            delta_table(keyed_deltas(sa.get("jobs", {}).get("by_site", {}), sb.get("jobs", {}).get("by_site", {}), lambda c: c.get("Done", 0),
                                     lambda k: f"Done at {k}", num, +1), labels),
            figure_html(F.overlay([F.Panel("Running jobs per site", "running jobs", F.running_curves(a.metrics),
                                           F.running_curves(b.metrics)),
                                   F.Panel("Running jobs, all sites", "running jobs", F.total(F.running_curves(a.metrics)),
                                           F.total(F.running_curves(b.metrics)))], labels, t_end), "running jobs overlay"),
        ])),
        ("transformations", "Transformation progress", join([
            delta_table(keyed_deltas(by_trans(sa), by_trans(sb), F.progress_pct, lambda k: f"{k} progress [%]",
                                     lambda v: num(v, 2), +1), labels),
            figure_html(F.overlay([F.Panel(title, ylabel, base, whatif) for (title, ylabel), base, whatif in zip(
                (("Done jobs per transformation (cumulative)", "jobs Done"),
                 ("Processed input files per transformation (cumulative)", "files Processed")),
                F.progress_curves(a.events, sa, t_end), F.progress_curves(b.events, sb, t_end))], labels, t_end),
                "transformation progress overlay"),
        ])),
        ("services", "Core services", join([
            delta_table(keyed_deltas(sa.get("databases", {}), sb.get("databases", {}), lambda d: d.get("p95_latency_ms"),
                                     lambda k: f"{k} p95 latency [ms]", lambda v: num(v, 2), -1), labels),
            figure_html(F.overlay([F.Panel("Database latency", "latency [ms]", F.db_latency_curves(a.metrics),
                                           F.db_latency_curves(b.metrics))], labels, t_end), "database latency overlay"),
        ])),
        ("data", "Data: tape and storage", join([
            delta_table(keyed_deltas(sa.get("tape", {}), sb.get("tape", {}), lambda t: t.get("archived_tb"),
                                     lambda k: f"{k} archived [TB]", lambda v: num(v, 2))
                        + keyed_deltas(peak_fill(a), peak_fill(b), lambda v: v, lambda k: f"{k} peak fill",
                                       better=-1, fraction=True), labels),
            figure_html(F.overlay([F.Panel("Storage fill", "fill [% of capacity]", F.fill_curves(a.metrics, sa),
                                           F.fill_curves(b.metrics, sb)),
                                   F.Panel("Archived to tape (cumulative)", "TB", F.archived_curves(a.metrics),
                                           F.archived_curves(b.metrics))], labels, t_end), "storage and tape overlay"),
        ])),
        ("scenario", "Scenario differences", _scenario_diff(a, b, labels)),
    ]
    return page(f"twin what-if comparison: {labels[0]} vs {labels[1]}",
                f"baseline {a.folder} · what-if {b.folder}", sections)


def _run_labels(a: Run, b: Run) -> tuple[str, str]:
    """Scenario names; folder names are added when both runs have the same scenario name."""
    if a.label != b.label:
        return a.label, b.label
    return (f"{a.label} ({a.folder.name if a.folder else 'baseline'})",
            f"{b.label} ({b.folder.name if b.folder else 'what-if'})")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Key paths of a scenario dict, lists of named items keyed by name (as `--param` writes them)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(x, dict) and "name" in x for x in value):
        out = {}
        for x in value:
            out.update(flatten({k: v for k, v in x.items() if k != "name"}, f"{prefix}[{x['name']}]"))
        return out
    return {prefix: value}


def _scenario_diff(a: Run, b: Run, labels: tuple[str, str]) -> Html:
    fa, fb = flatten(a.scenario), flatten(b.scenario)
    keys = [k for k in list(fa) + [k for k in fb if k not in fa] if fa.get(k, "∅") != fb.get(k, "∅")]
    show = lambda v: "(absent)" if v == "∅" else json.dumps(v, default=str)  # noqa: E731
    body = table(["key path", labels[0], labels[1]], [[k, show(fa.get(k, "∅")), show(fb.get(k, "∅"))] for k in keys]) if keys else note("The two scenarios are identical (a different seed or code version?).")
    return join([body,
                 details(f"Baseline scenario (YAML): {labels[0]}", pre(yaml.safe_dump(a.scenario, sort_keys=False))),
                 details(f"What-if scenario (YAML): {labels[1]}", pre(yaml.safe_dump(b.scenario, sort_keys=False)))])
