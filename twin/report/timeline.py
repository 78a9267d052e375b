"""What set the finish date: each transformation's span, the chain of steps that ended last, and the
resources that held work up.

A transformation's span (Gantt bar) runs from its start to its finish, with the busy part (first job
Running to last job Done) drawn solid; the assumed delays (a step's `start_delay`, e.g. an operator's
reaction time) and operator actions (`operator.action` events) are named on it.

The critical path is read back from the run: start at the transformation that finished last and step
to the predecessor (its `parent` or `start_after` step) that finished latest, since that one bounded
it. Bottlenecks are ranked by the hours each resource was saturated (>= 95%) while jobs were waiting,
an upper bound of the time lost to it, rather than by mean utilisation.

Functions take the run's tables (events already selected by the caller's accessor), not the report
module, so data flows one way: html/compare -> timeline -> figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from twin.report import dates as D
from twin.report import figures as F

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from twin.report.digest import StatusDigest

DAY = 86400.0
SATURATION = 0.95
TIMELINE_EVENTS = ("operator.action",)  # what the callers' accessors must hand over (job statuses: the digest)


@dataclass
class StepSpan:
    """One transformation's life in a run (seconds; None where it never happened)."""

    name: str
    start: float
    busy_from: float | None
    busy_to: float | None
    end: float | None
    delay: float = 0.0  # assumed start delay (scenario step.start_delay)
    predecessors: list[str] = field(default_factory=list)
    actions: list[tuple[float, str]] = field(default_factory=list)  # (time, "flush"...)


def step_graph(scenario: Mapping[str, Any]) -> dict[str, tuple[list[str], float]]:
    """{'prod/step': ([predecessor 'prod/step'...], start_delay s)} from the scenario's productions."""
    out: dict[str, tuple[list[str], float]] = {}
    for prod in scenario.get("workload", {}).get("productions", []):
        for step in prod.get("steps", []):
            before = ([step["parent"]] if step.get("parent") else []) + list(step.get("start_after") or [])
            out[f"{prod['name']}/{step['name']}"] = ([f"{prod['name']}/{b}" for b in before],
                                                    float(step.get("start_delay") or 0.0))
    return out


def step_spans(summary: Mapping[str, Any], scenario: Mapping[str, Any], status: "StatusDigest",
               actions: pd.DataFrame) -> list[StepSpan]:
    """Per transformation: start, busy span (first Running .. last Done job), end, delay, operator actions."""
    graph = step_graph(scenario)
    actions = actions[actions["kind"] == "operator.action"] if len(actions) else actions
    out = []
    for t in summary.get("transformations", []):
        name, tid = str(t.get("name")), int(t["id"])
        acts = actions[actions["entity"].astype(str) == name] if len(actions) else actions
        preds, delay = graph.get(name, ([], 0.0))
        out.append(StepSpan(name, float(t.get("started_at") or 0.0), status.first_running.get(tid), status.last_done.get(tid),
                            None if t.get("finished_at") is None else float(t["finished_at"]), delay, list(preds),
                            [(float(r.time), str(r.state)) for r in acts.itertuples(index=False)]))
    return out


def critical_path(spans: Sequence[StepSpan]) -> list[StepSpan]:
    """The chain that ended last, first step first: from the last finisher back through the
    predecessor that finished latest (a step cannot finish before the input it waits for)."""
    by_name = {s.name: s for s in spans}
    finished = [s for s in spans if s.end is not None]
    if not finished:
        return []
    chain = [max(finished, key=lambda s: s.end or 0.0)]
    while True:
        preds = [by_name[p] for p in chain[-1].predecessors if p in by_name and by_name[p].end is not None and p not in
                 {c.name for c in chain}]
        if not preds:
            return chain[::-1]
        chain.append(max(preds, key=lambda s: s.end or 0.0))


# ---------------------------------------------------------------- saturation ("time lost")
def utilisation(metrics: pd.DataFrame, summary: Mapping[str, Any], scenario: Mapping[str, Any]) -> dict[tuple[str, str], np.ndarray]:
    """Per capacity-bound resource, its utilisation at each sample (the summary's resource definitions)."""
    out: dict[tuple[str, str], np.ndarray] = {}
    slots = {s["name"]: sum(int(ce.get("slots") or 0) for ce in s.get("ces", []))
             for s in scenario.get("topology", {}).get("sites", []) if "name" in s}
    for name, series in F.labelled(metrics, "site", "running").items():
        if slots.get(name):
            out[("site slots", name)] = series.fillna(0.0).to_numpy(dtype=float) / slots[name]
    for name, series in F.labelled(metrics, "server", "cpu_pct").items():
        out[("server cores", name)] = series.fillna(0.0).to_numpy(dtype=float) / 100.0
    for name, series in F.labelled(metrics, "db", "queue").items():
        out[("database connections", name)] = (series.fillna(0.0).to_numpy(dtype=float) > 0).astype(float)
    for name, series in F.labelled(metrics, "tape", "drives_busy").items():
        drives = float(summary.get("tape", {}).get(name, {}).get("drives") or 0.0)
        if drives:
            out[("tape drives", name)] = series.fillna(0.0).to_numpy(dtype=float) / drives
    caps = F.capacities(metrics, summary)
    for name, series in F.labelled(metrics, "se", "used_tb").items():
        if caps.get(name):
            out[("storage space", name)] = series.fillna(0.0).to_numpy(dtype=float) / caps[name]
    return out


def time_lost(metrics: pd.DataFrame, summary: Mapping[str, Any], scenario: Mapping[str, Any],
              until: float | None = None, since: float = 0.0) -> list[tuple[str, str, float, float]]:
    """(kind, name, hours saturated while jobs waited, mean utilisation) per resource, most hours first.

    A sample counts when the resource was at >= 95% and the task queue held jobs (or, with no
    queue gauge, whenever it was saturated); each sample stands for the interval up to the next one.
    """
    if "time" not in metrics or len(metrics) < 2:
        return []
    t = metrics["time"].to_numpy(dtype=float)
    dt = np.diff(t, append=t[-1])
    window = (t >= since) & (t < (until if until is not None else np.inf))
    waiting = metrics["wms.jobs_waiting"].fillna(0.0).to_numpy(dtype=float) > 0 if "wms.jobs_waiting" in metrics else \
        np.ones(len(t), dtype=bool)
    rows = []
    for (kind, name), u in utilisation(metrics, summary, scenario).items():
        lost = float(dt[(u >= SATURATION) & waiting & window].sum()) / 3600.0
        rows.append((kind, name, lost, float(u[window].mean()) if window.any() else 0.0))
    return sorted(rows, key=lambda r: (-r[2], -r[3], r[0], r[1]))


def path_text(chain: Sequence[StepSpan], lost: Mapping[str, tuple[str, float]]) -> list[str]:
    """One sentence per step of the critical path: when it ran, what it waited for, what held it up."""
    out = []
    for i, step in enumerate(chain):
        parts = [f"{step.name}: started at {_d(step.start)}"]
        if step.delay:
            parts.append(f"after an assumed delay of {D.format_duration(step.delay)} (step start_delay)")
        if step.busy_from is not None:
            parts.append(f"jobs ran from {_d(step.busy_from)} to {_d(step.busy_to)}")
        parts.append(f"finished at {_d(step.end)}")
        if i:
            parts.append(f"it could not finish before its input from {chain[i - 1].name}")
        for at, action in step.actions:
            parts.append(f"operator {action} at {_d(at)}")
        if step.name in lost:
            resource, hours = lost[step.name]
            parts.append(f"held up most by {resource} ({hours:.1f} h saturated while jobs waited)")
        out.append("; ".join(parts) + ".")
    return out


def _d(seconds: float | None) -> str:
    """A moment of the run: its time since the start, and its date when the scenario gives a start date."""
    return D.when(seconds)


# ---------------------------------------------------------------- figures
def gantt(spans: Sequence[StepSpan], colors: Mapping[str, str], faults: Sequence[F.FaultSpan], t_end: float,
          critical: Sequence[str] = (), deadline: float | None = None) -> "Figure | None":
    """One bar per transformation: light from start to end, solid while its jobs ran; the delay hatched;
    operator actions as triangles; the critical path outlined; the deadline as a red line."""
    if not spans:
        return None
    fig, axes = F.bar_figure(max(1.8, 0.42 * len(spans) + 1.1))
    ax = axes[0]
    _bars(ax, spans, colors, range(len(spans)), t_end, critical)
    ax.set_yticks(range(len(spans)), [F.wrap(s.name, 30) for s in spans], fontsize=9)
    ax.set_ylim(len(spans) - 0.4, -0.6)
    _deadline(ax, deadline)
    ax.set_title("Transformations: start → finish (solid: jobs running; hatched: assumed delay; ▼ operator action; "
                 "black outline: critical path)", loc="left", fontsize=9.5)
    F.time_axes([ax], max(t_end, deadline or 0.0), faults)
    ax.set_ylim(len(spans) - 0.4, -0.6)
    return fig


def gantt_overlay(per_run: Sequence[Sequence[StepSpan]], labels: Sequence[str], colors: Mapping[str, str],
                  faults: Sequence[F.FaultSpan], t_end: float) -> "Figure | None":
    """Gantt bars of each compared run, grouped by transformation (one row per run, labelled)."""
    names = list(dict.fromkeys(s.name for spans in per_run for s in spans))
    if not names:
        return None
    n = len(per_run)
    fig, axes = F.bar_figure(max(2.0, 0.3 * len(names) * n + 1.2))
    ax = axes[0]
    ticks, tick_labels = [], []
    for k, spans in enumerate(per_run):
        rows = [names.index(s.name) * (n + 0.6) + k for s in spans]
        critical = [s.name for s in critical_path(spans)]
        _bars(ax, spans, colors, rows, t_end, critical, height=0.8, alpha_run=1.0 - 0.35 * (k > 0))
        ticks += rows
        tick_labels += [F.wrap(f"{s.name} · {labels[k]}", 44) for s in spans]
    ax.set_yticks(ticks, tick_labels, fontsize=8)
    ax.set_ylim(max(ticks) + 0.6, -0.6)
    ax.set_title("When each transformation ran, per compared run (black outline: critical path)", loc="left", fontsize=10)
    F.time_axes([ax], t_end, faults)
    ax.set_ylim(max(ticks) + 0.6, -0.6)
    return fig


def _bars(ax: Any, spans: Sequence[StepSpan], colors: Mapping[str, str], rows: Sequence[float], t_end: float,
          critical: Sequence[str], height: float = 0.6, alpha_run: float = 1.0) -> None:
    for y, s in zip(rows, spans):
        color = colors.get(s.name, "#1f77b4")
        end = s.end if s.end is not None else t_end
        ax.barh(y, (end - s.start) / DAY, left=s.start / DAY, height=height, color=color, alpha=0.25 * alpha_run,
                edgecolor="black" if s.name in critical else "none", linewidth=1.4)
        if s.delay:
            ax.barh(y, s.delay / DAY, left=(s.start - s.delay) / DAY if s.start >= s.delay else s.start / DAY,
                    height=height, color="none", hatch="///", edgecolor="#777777", linewidth=0)
        if s.busy_from is not None and s.busy_to is not None:
            ax.barh(y, max(s.busy_to - s.busy_from, 1.0) / DAY, left=s.busy_from / DAY, height=height * 0.55,
                    color=color, alpha=alpha_run)
        for at, _action in s.actions:
            ax.plot([at / DAY], [y - height / 2], marker="v", color="black", markersize=6)
        if s.end is None:
            ax.text(t_end / DAY, y, " not finished", va="center", ha="right", fontsize=8, color="#b42318")


def _deadline(ax: Any, deadline: float | None) -> None:
    if deadline is not None:
        ax.axvline(deadline / DAY, color=F.FAULT_COLOR, ls="--", lw=1.3)
        ax.text(deadline / DAY, 1.0, f" deadline {D.date_text(deadline)}".rstrip(), transform=ax.get_xaxis_transform(), va="bottom", ha="left",
                fontsize=8.5, color=F.FAULT_COLOR)


def target_curves(status: "StatusDigest", summary: Mapping[str, Any]) -> F.Curves:
    """Per transformation, % of its target over time: MC jobs Done / max tasks, data steps files Processed / input files."""
    done, processed = F.progress_curves(status, summary)
    curves: F.Curves = {}
    for t in summary.get("transformations", []):
        name = str(t.get("name"))
        if t.get("max_tasks") and name in done:
            x, y = done[name]
            curves[f"{name} (jobs Done / {t['max_tasks']:,})"] = (x, 100.0 * y / t["max_tasks"])
        elif t.get("files_total") and name in processed:
            x, y = processed[name]
            curves[f"{name} (files Processed / {t['files_total']:,})"] = (x, 100.0 * y / t["files_total"])
    return curves


def progress_vs_target(status: "StatusDigest", summary: Mapping[str, Any], colors: Mapping[str, str],
                       faults: Sequence[F.FaultSpan], t_end: float, actions: Sequence[tuple[float, str]] = ()) -> "Figure | None":
    """Each transformation's cumulative progress as % of its target (MC: jobs Done / max tasks; data steps: files
    Processed / input files), with the deadline, fault windows and operator actions; the axis reaches the deadline."""
    deadline = summary.get("plan", {}).get("deadline")
    horizon = max(t_end, float(deadline or 0.0))
    curves = target_curves(status, summary)
    if not curves:
        return None
    fig, axes = F.new_figure(1, 1, height=3.4)
    ax = axes[0]
    by_label = {label: colors.get(label.split(" (")[0]) for label in curves}
    F.lines(ax, curves, {k: v for k, v in by_label.items() if v}, step=False)
    ax.axhline(100.0, color="#444444", lw=1, ls=":")
    for at, what in actions:
        ax.axvline(at / DAY, color="#555555", lw=1, ls="-.")
        ax.text(at / DAY, 0.02, f" {what}", transform=ax.get_xaxis_transform(), rotation=90, fontsize=8, va="bottom")
    _deadline(ax, deadline)
    ax.set_ylabel("% of target")
    ax.set_title("Progress against target (dotted: 100%; red dashed: deadline; dash-dot: operator actions)", loc="left",
                 fontsize=10.5)
    F.legend(ax, title="transformation")
    F.time_axes([ax], horizon, faults)
    ax.set_ylim(0, 105)
    return fig
