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
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import pandas as pd
import yaml

from twin.engine.eventlog import Selection, iter_events, read_events
from twin.errors import TwinError
from twin.report import accounting as A
from twin.report import dates as D
from twin.report import figures as F
from twin.report import interactive as I
from twin.report import links as L
from twin.report import monitor as M
from twin.report import services as services_report
from twin.report import timeline as TL
from twin.report.digest import STATUS_EVENTS, StatusDigest
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
    chunks: Callable[[Selection], Iterator[pd.DataFrame]] | None = None  # the event log read a row group at a time

    def event_chunks(self, select: Selection) -> Iterator[pd.DataFrame]:
        """The selected events chunk by chunk, for aggregates that must not hold every row (none without a log)."""
        return iter(()) if self.chunks is None else self.chunks(select)

    @cached_property
    def links(self) -> L.LinkAccount:
        return L.account(self.event_chunks(L.LINK_EVENTS), self.t_end)

    @cached_property
    def status(self) -> StatusDigest:
        """Job and file statuses summed in one chunked pass (up to the deadline if later than the end)."""
        horizon = max(self.t_end, float(self.summary.get("plan", {}).get("deadline") or 0.0))
        return StatusDigest.build(self.event_chunks(STATUS_EVENTS), horizon, M.snapshot_times(self.t_end))

    @cached_property
    def t_end(self) -> float:
        return F.end_time(self.metrics, self.summary)

    @cached_property
    def spans(self) -> list[F.FaultSpan]:
        return F.fault_spans(events_of(self, "fault.start", "fault.end"), self.summary)


def events_of(run: Run, *kinds: str) -> pd.DataFrame:
    """The run's events of these kinds, from the rows `_events` loaded (REPORT_EVENTS)."""
    events = run.events
    if events is None or events.empty or "kind" not in events:
        return pd.DataFrame(columns=["time", "kind", "entity", "state", "detail", "value"])
    return events[events["kind"].isin(kinds)] if kinds else events


def run_from_result(result: "RunResult") -> Run:
    scenario = result.scenario.model_dump(mode="json")
    summary = dict(result.summary)
    summary.setdefault("event_log_sha256", result.event_digest)
    return Run(result.scenario.name, summary, result.metrics, _events(result), scenario, result.out, result.log.chunks)


#: The event rows the report holds: fault windows and operator actions (a few per run). Job and file statuses
#: (progress, failures, Transformation Monitor, Gantt, accounting) and transfers are summed chunk by chunk
#: (`Run.status`, `Run.links`), never held row by row.
REPORT_EVENTS = {"fault.start": None, "fault.end": None, "operator.action": None}


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
    events = folder / "events.parquet"
    return Run(label, summary, tables["metrics.parquet"], tables["events.parquet"], scenario, folder,
               lambda select: iter_events(events, select))


# ================================================================ run report
def write_run_report(result: "RunResult", path: Path) -> Path:
    """Write the self-contained HTML report of one run; returns `path`."""
    return _write(Path(path), run_report_html(run_from_result(result)))


def write_folder_report(folder: Path, path: Path | None = None) -> Path:
    """Re-render the report of a run from its output folder (default: <folder>/report.html)."""
    run = load_run(folder)
    return _write(Path(path) if path else Path(folder) / "report.html", run_report_html(run))


Section = Callable[[Run, Mapping[str, str]], Html]


def run_sections() -> list[tuple[str, str, Section]]:
    """The run report's sections in order: (anchor id, title, builder(run, colours)). A new section (e.g. a
    services or calibration one) is one more entry here; a builder returns "" to leave itself out."""
    return [
        ("summary", "Summary", lambda run, colors: _summary_section(run)),
        ("finish", "What set the finish date", _finish_section),
        ("bottleneck", "Bottleneck", lambda run, colors: _bottleneck_section(run)),
        ("transformations", "Transformation progress", _transformations_section),
        ("jobs", "Jobs by site", _jobs_section),
        ("accounting", "Accounting", _accounting_section),
        ("data", "Data: storage, transfers, tape", _data_section),
        ("services", "Core services", _services_section),
        ("failures", "Failures and retries", _failures_section),
        ("faults", "Faults and operator actions", lambda run, colors: _faults_section(run)),
        ("invariants", "Invariants", lambda run, colors: _invariants_section(run.summary)),
        ("scenario", "Scenario", lambda run, colors: _scenario_section(run)),
    ]


def run_report_html(run: Run) -> str:
    """The run page; times carry calendar dates when the scenario gives run.start_date."""
    with D.campaign(D.start_of(run.scenario)):
        return _run_page(run)


def _run_page(run: Run) -> str:
    s = run.summary
    colors = report_colors(run)
    sections = [(id_, title, body) for id_, title, build in run_sections() if (body := build(run, colors))]
    sections[-1:-1] = [extra for extra in (calibration_section(run.scenario, s), sensitivity_section(run.folder)) if extra]  # issue 15
    subtitle = f"seed {s.get('seed')} · simulated {duration(s.get('simulated_time'))} · {num(s.get('events'))} events"
    return page(f"twin run report: {run.label}", subtitle, sections, I.assets())


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def report_colors(*runs: Run) -> dict[str, str]:
    """One colour per site, storage element, transformation, database and server, the same in every plot of a
    report and in the run and compare reports of the same scenarios: each family's sorted names take the palette
    in turn, and an SE takes its site's colour (so CC-IN2P3's disk and tape match its jobs)."""
    sites: set[str] = set()
    ses: dict[str, str | None] = {}
    trans: set[str] = set()
    services: set[str] = set()
    for run in runs:
        topology = run.scenario.get("topology", {})
        sites |= set(F.site_names(run.metrics, run.summary)) | {x["name"] for x in topology.get("sites", []) if "name" in x}
        ses.update({x["name"]: x.get("site") for x in topology.get("storage", []) if "name" in x})
        ses.update({n: ses.get(n) for n in list(run.summary.get("storage", {})) + list(run.summary.get("tape", {}))})
        trans |= {str(t.get("name")) for t in run.summary.get("transformations", [])}
        services |= set(run.summary.get("databases", {})) | set(run.summary.get("servers", {}))
    colors = {**F.palette(trans), **F.palette(services)}
    site_colors = F.palette(sites)
    colors.update(F.palette(n for n, site in ses.items() if site not in site_colors))
    colors.update({n: site_colors[site] for n, site in ses.items() if site in site_colors})
    return {**colors, **site_colors}


# ---------------------------------------------------------------- summary and bottleneck
def _plan_box(plan: Mapping[str, Any]) -> Html:
    kind, title = verdict_kind(plan)
    return box(kind, title, " ".join(filter(None, [plan.get("verdict", "no plan verdict in the summary"), _plan_dates(plan)])))


def _plan_dates(plan: Mapping[str, Any]) -> str:
    """'Finished on 2026-03-09 10:00; deadline 2026-03-13.' when the scenario gives a start date, else ''."""
    if D.start() is None:
        return ""
    ended = "Finished" if plan.get("complete", True) else "Stopped"
    parts = [f"{ended} on {D.date_text(plan['finished_at'])}" if plan.get("finished_at") is not None else "Not finished",
             f"deadline {D.date_text(plan['deadline'])}" if plan.get("deadline") is not None else "no deadline"]
    return "; ".join(parts) + f" (day 0 = {D.start():%Y-%m-%d})."


def _summary_section(run: Run) -> Html:
    s, plan, jobs = run.summary, run.summary.get("plan", {}), run.summary.get("jobs", {})
    by_status = jobs.get("by_status", {})
    trans = s.get("transformations", [])
    used, wasted = float(jobs.get("cpu_used_hs06_hours") or 0.0), float(jobs.get("cpu_wasted_hs06_hours") or 0.0)
    cards = [
        ("finished after" if plan.get("finished_at") is not None else "still running at",
         duration(plan.get("finished_at") if plan.get("finished_at") is not None else s.get("simulated_time"))),
        ("deadline", duration(plan.get("deadline")) if plan.get("deadline") is not None else "none"),
        *_date_cards(plan, s.get("simulated_time")),
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


def _date_cards(plan: Mapping[str, Any], simulated: float | None) -> list[tuple[str, str]]:
    """The finish (or where the run stopped) and the deadline as dates, when the scenario gives a start date."""
    if D.start() is None:
        return []
    finished = plan.get("finished_at") is not None
    cards = [("finished on" if finished else "stopped on", D.date_text(plan["finished_at"] if finished else simulated))]
    return cards + ([("deadline on", D.date_text(plan["deadline"]))] if plan.get("deadline") is not None else [])


def _wasted_fraction(jobs: Mapping[str, Any]) -> float | None:
    used, wasted = float(jobs.get("cpu_used_hs06_hours") or 0.0), float(jobs.get("cpu_wasted_hs06_hours") or 0.0)
    return wasted / (used + wasted) if used + wasted else None


def sorted_resources(resources: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Saturated resources first, in order of first saturation; then the rest by mean utilization."""
    return sorted(resources, key=lambda r: (r.get("first_saturated_at") is None, r.get("first_saturated_at") or 0.0,
                                            -float(r.get("mean_utilization") or 0.0)))


def _bottleneck_section(run: Run, shown: int = 12) -> Html:
    """The verdict; resources ranked by time lost (saturated while jobs waited); then the utilisation table."""
    s = run.summary
    neck = s.get("bottleneck", {})
    finish = s.get("plan", {}).get("finished_at") or run.t_end
    lost = [r for r in TL.time_lost(run.metrics, s, run.scenario, until=finish) if r[2] > 0]
    ranked = table(["resource", "name", "saturated while jobs waited [h]", "share of the run", "mean utilization"],
                   [[k, n, num(h, 1), pct(h * 3600.0 / finish if finish else None, 1), pct(u)] for k, n, h, u in lost[:shown]]) \
        if lost else note("No resource was saturated while jobs waited: the finish date was set by the work itself "
                          "(job lengths, task chaining, delays), not by capacity.")
    rows = sorted_resources(s.get("resources", []))
    classes = [("bad" if r.get("name") == neck.get("name") and r.get("kind") == neck.get("kind") else "warn")
               if r.get("first_saturated_at") is not None else None for r in rows]
    cells = [[r.get("kind"), r.get("name"), pct(r.get("mean_utilization")), pct(r.get("peak_utilization")),
              duration(r.get("first_saturated_at"))] for r in rows]
    headers = ["resource", "name", "mean utilization", "peak utilization", "first saturated (≥95%) after"]
    return join([box("info", "Bottleneck:", neck.get("verdict", "no verdict in the summary")),
                 tag("h3", "Ranked by time lost"),
                 note("Hours each resource was saturated (≥95%) while jobs waited in the task queue, up to the finish: "
                      "an upper bound of the time lost to it."), ranked,
                 details(f"Utilisation of all {len(rows)} capacity-bound resources (saturated first)", table(headers, cells, classes))])


def _finish_section(run: Run, colors: Mapping[str, str]) -> Html:
    """Gantt of the transformations, the critical path in words, and progress against the target."""
    spans = TL.step_spans(run.summary, run.scenario, run.status, events_of(run, *TL.TIMELINE_EVENTS))
    if not spans:
        return Html("")
    chain = TL.critical_path(spans)
    lost = {}
    for step in chain:
        ranked = TL.time_lost(run.metrics, run.summary, run.scenario, since=step.busy_from or step.start,
                              until=step.busy_to or step.end)
        if ranked and ranked[0][2] > 0:
            lost[step.name] = (f"{ranked[0][0]} of {ranked[0][1]}", ranked[0][2])
    deadline = run.summary.get("plan", {}).get("deadline")
    actions = [(at, f"{what} {s.name}") for s in spans for at, what in s.actions]
    target = TL.target_curves(run.status, run.summary)
    parts: list[Any] = [
        figure_html(TL.gantt(spans, colors, run.spans, run.t_end, [c.name for c in chain], deadline), "transformation Gantt"),
        tag("h3", "Critical path"),
        tag("ol", join(tag("li", line) for line in TL.path_text(chain, lost))) if chain else
        note("No transformation finished, so no chain set a finish date."),
        note("Read back from the run: from the transformation that finished last, through the predecessor "
             "(parent or start_after step) that finished latest."),
        figure_html(TL.progress_vs_target(run.status, run.summary, colors, run.spans, run.t_end, actions), "progress against target"),
        I.chart(target, {k: colors[k.split(" (")[0]] for k in target if k.split(" (")[0] in colors},
                "Progress against target", "% of target", step=False),
    ]
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
        I.chart(F.running_curves(run.metrics), colors, "Running jobs by site", "running jobs"),
        table(["site", *statuses, "total", "failed %"], rows) if rows else note("No job reached a site."),
        figure_html(F.pilots(run.metrics, colors, spans, t_end), "pilots per site")
        or note("No pilot gauges in this run."),
    ])


def _transformations_section(run: Run, colors: Mapping[str, str]) -> Html:
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
        tag("h3", "Transformation Monitor"),
        M.monitor_table(trans, M.counts_at(run.status, run.t_end)),
        M.state_at_days(trans, run.status, run.t_end),
        figure_html(F.transformation_bars(run.summary), "transformation progress"),
        figure_html(F.progress_over_time(run.status, run.summary, run.spans, run.t_end, colors), "progress per transformation")
        or note("No job.status events in the event log (run.event_log off?)."),
    ])


def _accounting_section(run: Run, colors: Mapping[str, str]) -> Html:
    running = A.running_by_transformation(run.status, F.trans_names(run.summary))
    return join([
        figure_html(A.cpu_by_site(run.metrics, run.scenario, colors, run.spans, run.t_end), "CPU by site"),
        figure_html(F.line_panels([(running, "running jobs", "Running jobs by transformation")], colors, "transformation",
                                  run.spans, run.t_end, 2.8, step=True), "running jobs by transformation") if running else "",
        figure_html(A.final_status_bars(run.status, run.spans, run.t_end), "jobs by final status"),
        figure_html(A.se_rate(run.metrics, colors, run.spans, run.t_end), "TB per day per SE"),
        tag("h3", "Throughput per network link"),
        figure_html(L.throughput_figure(run.links, colors, run.spans, run.t_end), "TB per day per link"),
        I.chart({k: (run.links.edges[:-1] / F.DAY, v) for k, v in run.links.tb_per_day().items()}, colors,
                "Data transferred per network link", "TB/day"),
        L.throughput_tables(run.links, run.t_end),
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
    parts.append(I.chart(fill, colors, "Storage fill", "fill [% of capacity]"))
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
def _services_section(run: Run, colors: Mapping[str, str]) -> Html:
    s, spans, t_end = run.summary, run.spans, run.t_end
    servers = s.get("servers", {})
    dbs = s.get("databases", {})
    agents = s.get("agents", {})
    return join([
        tag("h3", "Core servers"),
        table(["server", "cores", "utilization", "CPU [h]", "calls", "services"],
              [[n, num(v.get("cores")), pct(v.get("utilization"), 1), num(v.get("cpu_hours"), 2), num(v.get("calls")),
                ", ".join(v.get("services", []))] for n, v in servers.items()]) if servers else note("No core servers."),
        figure_html(F.server_cpu(run.metrics, s, spans, t_end, colors), "core server CPU"),
        tag("h3", "Databases"),
        table(["database", "queries", "mean latency [ms]", "p95 latency [ms]", "connection utilization", "top queries"],
              [[n, num(v.get("queries")), num(v.get("mean_latency_ms"), 2), num(v.get("p95_latency_ms"), 2),
                pct(v.get("utilization"), 1), ", ".join(f"{k} {c:,}" for k, c in v.get("top_queries", {}).items())]
               for n, v in dbs.items()]) if dbs else note("No databases."),
        figure_html(F.databases(run.metrics, spans, t_end, colors), "database latency, queue and rate"),
        I.chart(F.db_latency_curves(run.metrics), colors, "Database query latency (gaps: no query)", "latency [ms]"),
        services_report.section(run.metrics, s, spans, t_end),
        tag("h3", "Agents"),
        table(["agent", "cycles", "busy fraction", "overruns"],
              [[n, num(v.get("cycles")), pct(v.get("busy_fraction"), 2), num(v.get("overruns"))] for n, v in agents.items()],
              ["warn" if v.get("overruns") else None for v in agents.values()]) if agents else note("No agents."),
        figure_html(F.agents(s), "agents busy fraction"),
    ])


# ---------------------------------------------------------------- failures, faults, invariants, scenario
def _failures_section(run: Run, colors: Mapping[str, str]) -> Html:
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
    parts.append(figure_html(F.failures(s, run.status, run.spans, run.t_end, colors), "job failures")
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
    rows = [[sp.label, sp.kind, sp.target, D.when(sp.start), D.when(sp.end) if sp.end is not None else "not ended",
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
