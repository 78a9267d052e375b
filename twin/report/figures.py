"""Matplotlib figures of one run (and overlays of two) for the HTML reports.

Each function takes the run's tables (metrics, events, summary) and returns a
`Figure`, or None when the run has nothing to show for it (no tape.* columns, no
failures...), so a report never shows an empty or broken plot. Figures are built
with `matplotlib.figure.Figure`, not pyplot: nothing is kept in a global registry,
and `render.figure_uri` clears them once they are encoded.

Time axes are in days since the start, labelled with dates when the scenario gives a start date
(`dates`); a site has the same colour in every figure of a report (`palette`); fault windows are
shaded and numbered F1, F2... as in the faults table.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from twin.report import dates as D  # noqa: E402
from twin.report.series import BINS, DAY, Curves  # noqa: E402,F401 - the figures' data, re-exported

if TYPE_CHECKING:
    from twin.report.digest import StatusDigest

WIDTH = 11.4
MARGIN = {"left": 0.85, "right": 2.6, "top": 0.35, "bottom": 0.55, "gap_y": 0.45, "gap_x": 0.85}  # inches
FAULT_COLOR = "#d62728"
LINESTYLES = ("-", "--", ":", "-.")
CYCLE = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors]
TASK_COLORS = {"Done": "#2ca02c", "Failed": "#d62728", "Submitted": "#1f77b4", "Created": "#aec7e8",
               "Running": "#17becf", "Waiting": "#ff7f0e"}


# ---------------------------------------------------------------- data access
def labelled(metrics: pd.DataFrame, family: str, quantity: str) -> dict[str, pd.Series]:
    """Columns `<family>.<quantity>[<label>]` as {label: series}, in column order."""
    prefix = f"{family}.{quantity}["
    return {c[len(prefix):-1]: metrics[c] for c in metrics.columns if c.startswith(prefix) and c.endswith("]")}


def first_labelled(metrics: pd.DataFrame, family: str, *quantities: str) -> dict[str, pd.Series]:
    """The first of several gauge names that the run has (names differ between versions)."""
    for quantity in quantities:
        found = labelled(metrics, family, quantity)
        if found:
            return found
    return {}


def days(metrics: pd.DataFrame) -> np.ndarray:
    return metrics["time"].to_numpy(dtype=float) / DAY if "time" in metrics else np.zeros(len(metrics))


def curves(metrics: pd.DataFrame, series: Mapping[str, pd.Series], scale: Mapping[str, float] | float = 1.0) -> Curves:
    """{label: (days, values)}; `scale` multiplies values (per label when a mapping)."""
    x = days(metrics)
    return {k: (x, s.fillna(0.0).to_numpy(dtype=float) * (scale.get(k, 1.0) if isinstance(scale, Mapping) else scale))
            for k, s in series.items()}


def nonzero(data: Curves) -> Curves:
    return {k: v for k, v in data.items() if len(v[1]) and np.nanmax(np.abs(v[1])) > 0}


def end_time(metrics: pd.DataFrame, summary: Mapping[str, Any]) -> float:
    """Last simulated second (for x limits and event binning)."""
    t = float(summary.get("simulated_time") or 0.0)
    if "time" in metrics and len(metrics):
        t = max(t, float(metrics["time"].max()))
    return t


def site_names(metrics: pd.DataFrame, summary: Mapping[str, Any]) -> list[str]:
    names = set(labelled(metrics, "wms", "running")) | set(labelled(metrics, "site", "running"))
    names |= set(summary.get("jobs", {}).get("by_site", {}))
    return sorted(n for n in names if n)


def palette(names: Iterable[str]) -> dict[str, str]:
    """Stable colour per name: sorted names take tab10 in turn; beyond ten, tab20's dark
    shades first and its light ones after, so neighbours in the legend never share a hue."""
    names = sorted(set(names))
    if len(names) <= 10:
        colors = list(matplotlib.colormaps["tab10"].colors)
    else:
        tab20 = list(matplotlib.colormaps["tab20"].colors)
        colors = tab20[0::2] + tab20[1::2]
    return {n: matplotlib.colors.to_hex(colors[i % len(colors)]) for i, n in enumerate(names)}


def trans_names(summary: Mapping[str, Any]) -> dict[int, str]:
    return {int(t["id"]): str(t.get("name", t["id"])) for t in summary.get("transformations", [])}


def progress_text(pct: float | None) -> str:
    """'100%' only when everything is done: 99.96% shows as '99.96%', never rounded up."""
    if pct is None:
        return "–"
    if pct in (0.0, 100.0):
        return f"{pct:.0f}%"
    text = f"{pct:.1f}"
    return f"{pct:.2f}%" if text in ("100.0", "0.0") else f"{text}%"


# ---------------------------------------------------------------- faults
@dataclass(frozen=True)
class FaultSpan:
    """One fault window as it happened (from the event log); end None = still active at the end."""

    number: int
    kind: str
    target: str
    start: float
    end: float | None
    params: str = ""

    @property
    def label(self) -> str:
        return f"F{self.number}"


def fault_spans(events: pd.DataFrame | None, summary: Mapping[str, Any] | None = None) -> list[FaultSpan]:
    """Pair fault.start/fault.end events per entity; fall back to the scenario's faults without a log."""
    spans: list[FaultSpan] = []
    if events is not None and not events.empty and "kind" in events:
        sel = events[events["kind"].isin(["fault.start", "fault.end"])].sort_values("time", kind="stable")
        open_: dict[str, list[tuple[float, str]]] = {}
        pairs: list[tuple[str, float, float | None, str]] = []
        for row in sel.itertuples(index=False):
            entity, detail = str(row.entity), "" if pd.isna(row.detail) else str(row.detail)
            if str(row.kind) == "fault.start":
                open_.setdefault(entity, []).append((float(row.time), detail))
            elif open_.get(entity):
                start, params = open_[entity].pop(0)
                pairs.append((entity, start, float(row.time), params))
        pairs += [(e, s, None, p) for e, starts in open_.items() for s, p in starts]
        for entity, start, end, params in sorted(pairs, key=lambda p: (p[1], p[0])):
            kind, _, target = entity.partition(":")
            spans.append(FaultSpan(len(spans) + 1, kind, target, start, end, params))
    elif summary:
        for f in sorted(summary.get("faults", []), key=lambda f: float(f.get("start", 0.0))):
            spans.append(FaultSpan(len(spans) + 1, str(f.get("kind")), str(f.get("target")), float(f.get("start", 0.0)),
                                   None if f.get("end") is None else float(f["end"]), str(f.get("params") or "")))
    return spans


def shade_faults(axes: Sequence[Axes], spans: Sequence[FaultSpan], t_end: float) -> None:
    """Shade fault windows on every axis; number them on the top one."""
    for i, ax in enumerate(axes):
        for span in spans:
            end = (span.end if span.end is not None else t_end) / DAY
            ax.axvspan(span.start / DAY, end, color=FAULT_COLOR, alpha=0.10, lw=0, zorder=0)
            if i == 0:
                ax.text(span.start / DAY, 0.97, span.label, transform=ax.get_xaxis_transform(), va="top", ha="left",
                        fontsize=9, color=FAULT_COLOR, fontweight="bold",
                        bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


# ---------------------------------------------------------------- figure helpers
def new_figure(rows: int = 1, cols: int = 1, height: float = 2.8, sharex: bool = True,
               height_ratios: Sequence[float] | None = None) -> tuple[Figure, np.ndarray]:
    """A time figure with margins fixed in inches: the time axes of every figure line up
    on the page, whatever the tick labels, and the legend column on the right always fits."""
    h = height * rows
    fig = Figure(figsize=(WIDTH, h))
    axes_h = (h - MARGIN["top"] - MARGIN["bottom"] - MARGIN["gap_y"] * (rows - 1)) / rows
    axes_w = (WIDTH - MARGIN["left"] - MARGIN["right"] - MARGIN["gap_x"] * (cols - 1)) / cols
    grid = fig.add_gridspec(rows, cols, left=MARGIN["left"] / WIDTH, right=1 - MARGIN["right"] / WIDTH,
                            bottom=MARGIN["bottom"] / h, top=1 - MARGIN["top"] / h, hspace=MARGIN["gap_y"] / axes_h,
                            wspace=MARGIN["gap_x"] / axes_w, height_ratios=height_ratios)
    return fig, grid.subplots(sharex=sharex, squeeze=False).ravel()


def bar_figure(height: float, cols: int = 1, **kw: Any) -> tuple[Figure, np.ndarray]:
    """A category (bar) figure: constrained layout, since its labels vary in length."""
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    return fig, fig.subplots(1, cols, squeeze=False, **kw).ravel()


def blank(ax: Axes) -> bool:
    """True when an axis shows nothing but zeros (no area, no bar, every line flat at 0)."""
    if ax.collections or ax.patches:
        return False
    return all(not np.any(np.nan_to_num(np.abs(np.asarray(y, dtype=float)))) for y in (ln.get_ydata() for ln in ax.lines))


def mark_empty(ax: Axes, text: str = "zero at every sample time") -> None:
    """Say so inside a panel with nothing to show, instead of leaving a blank axis."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666", fontsize=10)
    ax.set_ylim(0.0, 1.0)


def time_axes(axes: Sequence[Axes], t_end: float, spans: Sequence[FaultSpan] = ()) -> None:
    """Common look of time plots: x in days from 0 to the end, grid, a note in blank panels, fault shading."""
    for ax in axes:
        ax.set_xlim(0.0, max(t_end / DAY, 1e-3))
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0.0)
        if blank(ax):
            mark_empty(ax)
        spec = ax.get_subplotspec()
        D.date_axis(ax, label=spec is None or spec.is_last_row())
    shade_faults(axes, spans, t_end)


def legend(ax: Axes, handles: list[Any] | None = None, title: str | None = None) -> None:
    """Legend outside the plot on the right, so it never hides data; a list too long for the
    figure's height is cut with '… N more' rather than running off the image."""
    if handles is None:
        handles = ax.get_legend_handles_labels()[0]
    if not handles:
        return
    fontsize = 9.0 if len(handles) <= 12 else 7.5
    room = max(3, int((ax.figure.get_figheight() - 0.4) / (fontsize / 72 * 1.9)) - (1 if title else 0))
    if len(handles) > room:
        more = Line2D([], [], ls="", label=f"… {len(handles) - room + 1} more")
        handles = list(handles[:room - 1]) + [more]
    ax.legend(handles=handles, labels=[wrap(h.get_label(), 26) for h in handles], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=fontsize, frameon=False, alignment="left", title=title,
              title_fontsize=fontsize)


def lines(ax: Axes, data: Curves, colors: Mapping[str, str] | None = None, style: str = "-", step: bool = True) -> None:
    """One line per series; step (post) for sampled gauges, straight for binned event counts."""
    for label, (x, y) in data.items():
        kw = {"color": colors.get(label)} if colors and label in colors else {}
        if step:
            ax.step(x, y, where="post", ls=style, lw=1.5, label=label, **kw)
        else:
            ax.plot(x, y, ls=style, lw=1.5, label=label, **kw)


def hbar_height(n: int) -> float:
    return max(2.2, 0.45 * n + 1.2)


def wrap(text: str, width: int = 38) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


# ---------------------------------------------------------------- jobs and pilots
def running_curves(metrics: pd.DataFrame) -> Curves:
    """Running jobs per site (WMS view; pilots' busy slots when the run has no wms.running)."""
    return curves(metrics, first_labelled(metrics, "wms", "running") or labelled(metrics, "site", "running"))


def jobs_by_site(metrics: pd.DataFrame, colors: Mapping[str, str], spans: Sequence[FaultSpan], t_end: float) -> Figure | None:
    """Stacked running jobs by site over time, and the waiting queue below it."""
    running = running_curves(metrics)
    waiting = {k: metrics[c] for k, c in (("waiting", "wms.jobs_waiting"), ("staging", "wms.jobs_staging")) if c in metrics}
    waiting_c = nonzero(curves(metrics, waiting)) or curves(metrics, waiting)
    if not running and not waiting_c:
        return None
    fig, axes = new_figure(2, 1, height=3.0, height_ratios=[2, 1])
    if running:
        x = days(metrics)
        labels = list(running)
        areas = axes[0].stackplot(x, *[running[k][1] for k in labels], labels=labels, step="post",
                                  colors=[colors.get(k, "#999999") for k in labels], alpha=0.85)
        legend(axes[0], list(areas)[::-1], title="site")  # legend top = top of the stack
    axes[0].set_ylabel("running jobs")
    axes[0].set_title("Running jobs by site (stacked)", loc="left", fontsize=11)
    lines(axes[1], waiting_c, {"waiting": "#444444", "staging": "#9467bd"})
    axes[1].set_ylabel("jobs")
    axes[1].set_title("Jobs waiting in the task queue (and staging input data)", loc="left", fontsize=11)
    legend(axes[1])
    time_axes(axes, t_end, spans)
    return fig


def line_panels(panels: Sequence[tuple[Curves, str, str]], colors: Mapping[str, str], legend_title: str,
                spans: Sequence[FaultSpan], t_end: float, height: float = 2.5, step: bool = True) -> Figure:
    """Stacked time panels (curves, y label, title) sharing colours and one legend at the top."""
    fig, axes = new_figure(len(panels), 1, height=height)
    for ax, (data, ylabel, title) in zip(axes, panels):
        lines(ax, data, colors, step=step)
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left", fontsize=11)
    handles: dict[str, Any] = {}
    for ax in axes:  # one legend for every panel: a series only in a lower panel is listed too
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    legend(axes[0], list(handles.values()), title=legend_title)
    time_axes(axes, t_end, spans)
    return fig


def pilots(metrics: pd.DataFrame, colors: Mapping[str, str], spans: Sequence[FaultSpan], t_end: float) -> Figure | None:
    """Running and waiting pilots per site: is the SiteDirector keeping the CEs fed?"""
    running = curves(metrics, labelled(metrics, "site", "running"))
    waiting = curves(metrics, first_labelled(metrics, "site", "waiting_pilots", "pilots_waiting"))
    if not running and not waiting:
        return None
    return line_panels([(running, "running pilots", "Pilots running (busy slots) per site"),
                        (waiting, "waiting pilots", "Pilots waiting in the CE queues")], colors, "site", spans, t_end, 2.6)


# ---------------------------------------------------------------- transformations
def progress_pct(t: Mapping[str, Any]) -> float | None:
    """Processed % of input files; for MC (no input files) Done tasks over MaxNumberOfTasks."""
    if t.get("processed_pct") is not None:
        return float(t["processed_pct"])
    if t.get("max_tasks"):
        return 100.0 * min(t.get("tasks", {}).get("Done", 0), t["max_tasks"]) / t["max_tasks"]
    return None


def transformation_bars(summary: Mapping[str, Any]) -> Figure | None:
    """Transformation Monitor view: progress % per transformation, and its tasks by status."""
    rows = summary.get("transformations", [])
    if not rows:
        return None
    names = [wrap(f"{t['id']}: {t['name']}", 32) for t in rows][::-1]
    fig, axes = bar_figure(hbar_height(len(rows)), 2, sharey=True)
    pcts = [progress_pct(t) for t in rows][::-1]
    y = np.arange(len(rows))
    axes[0].barh(y, [p or 0.0 for p in pcts], color=["#2ca02c" if (p or 0) >= 100 else "#1f77b4" for p in pcts])
    for yi, p, t in zip(y, pcts, rows[::-1]):
        what = f"{t['files'].get('Processed', 0):,}/{t['files_total']:,} files" if t.get("files_total") else \
            f"{t.get('tasks', {}).get('Done', 0):,}/{t['max_tasks']:,} tasks" if t.get("max_tasks") else "no input files"
        axes[0].text(1.0, yi, f" {progress_text(p)}  ({what})", va="center", fontsize=9,
                     color="white" if (p or 0) > 40 else "black")
    axes[0].set_yticks(y, names, fontsize=9)
    axes[0].set_ylim(-0.6, len(rows) - 0.4)
    axes[0].set_xlim(0, 100)
    axes[0].set_xlabel("progress [%]  (files Processed; MC: tasks Done / max tasks)")
    axes[0].set_title("Progress", loc="left", fontsize=11)
    left = np.zeros(len(rows))
    statuses = sorted({s for t in rows for s in t.get("tasks", {})}, key=lambda s: (s not in TASK_COLORS, s))
    for status in statuses:
        values = np.array([t.get("tasks", {}).get(status, 0) for t in rows][::-1], dtype=float)
        axes[1].barh(y, values, left=left, label=status, color=TASK_COLORS.get(status))
        left += values
    axes[1].set_xlabel("tasks created, by status")
    axes[1].xaxis.set_major_locator(MaxNLocator(5, integer=True))
    axes[1].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axes[1].set_title("Tasks", loc="left", fontsize=11)
    legend(axes[1], title="task status")
    for ax in axes:
        ax.grid(True, axis="x", alpha=0.3)
    return fig


def progress_curves(status: "StatusDigest", summary: Mapping[str, Any]) -> tuple[Curves, Curves]:
    """Cumulative Done jobs and Processed input files per transformation, from the event log's digest."""
    names = trans_names(summary)
    return status.cumulative("job.status", "Done", names), status.cumulative("file.status", "Processed", names)


def progress_over_time(status: "StatusDigest", summary: Mapping[str, Any], spans: Sequence[FaultSpan],
                       t_end: float, colors: Mapping[str, str] | None = None) -> Figure | None:
    """Done jobs and Processed files per transformation over time: the shape of each step's progress."""
    done, processed = progress_curves(status, summary)
    panels = [(data, ylabel, title) for data, ylabel, title in (
        (done, "jobs Done (cumulative)", "Done jobs per transformation"),
        (processed, "files Processed (cumulative)", "Processed input files per transformation")) if data]
    if not panels:
        return None
    colors = colors or palette(list(trans_names(summary).values()) + list(done) + list(processed))
    return line_panels(panels, colors, "transformation", spans, t_end, 3.0, step=False)


# ---------------------------------------------------------------- data: storage, transfers, tape
def capacities(metrics: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, float]:
    """SE capacity in TB: summary['storage'], else the se.capacity_tb gauge."""
    caps = {k: float(v.get("capacity_tb") or 0.0) for k, v in summary.get("storage", {}).items()}
    for name, series in labelled(metrics, "se", "capacity_tb").items():
        caps.setdefault(name, float(series.max()))
    return {k: v for k, v in caps.items() if v > 0}


def fill_curves(metrics: pd.DataFrame, summary: Mapping[str, Any]) -> Curves:
    caps = capacities(metrics, summary)
    used = {k: s for k, s in labelled(metrics, "se", "used_tb").items() if k in caps}
    return curves(metrics, used, {k: 100.0 / caps[k] for k in used})


def storage_fill(metrics: pd.DataFrame, summary: Mapping[str, Any], colors: Mapping[str, str], spans: Sequence[FaultSpan],
                 t_end: float) -> Figure | None:
    """Fill % of every SE over time against its capacity: which one fills up, and when."""
    data = fill_curves(metrics, summary)
    if not data:
        return None
    caps = capacities(metrics, summary)
    kinds = {k: v.get("kind", "disk") for k, v in summary.get("storage", {}).items()}
    fig, axes = new_figure(1, 1, height=3.6)
    shared: dict[str | None, int] = {}
    for name, (x, y) in data.items():
        color = colors.get(name)
        style = LINESTYLES[shared.get(color, 0) % len(LINESTYLES)]  # several SEs of one site: one colour, other dashes
        shared[color] = shared.get(color, 0) + 1
        kind = " tape" if kinds.get(name) == "tape" else ""
        axes[0].step(x, y, where="post", lw=1.6, color=color, ls=style, label=f"{name} ({caps[name]:,.0f} TB{kind})")
    axes[0].axhline(100.0, color="#b42318", lw=1, ls=":")
    return percent_panel(fig, data, "fill [% of capacity]", "Storage fill", "storage element", spans, t_end)


def percent_panel(fig: Figure, data: Curves, ylabel: str, title: str, legend_title: str, spans: Sequence[FaultSpan],
                  t_end: float) -> Figure:
    """Finish a one-panel % figure: y up to just above the peak (at least 5%, at most 110%), so a
    nearly idle resource reads as nearly idle and a full one shows its 100% line."""
    ax = fig.axes[0]
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=11)
    legend(ax, title=legend_title)
    time_axes([ax], t_end, spans)
    ax.set_ylim(0, max(5.0, min(110.0, max(float(np.nanmax(y)) for _, y in data.values()) * 1.15)))
    return fig


def transfers(metrics: pd.DataFrame, spans: Sequence[FaultSpan], t_end: float) -> Figure | None:
    """Active and queued transfers per network link (FTS view)."""
    active = nonzero(curves(metrics, labelled(metrics, "link", "active")))
    queued = nonzero(curves(metrics, labelled(metrics, "link", "queued")))
    if not active and not queued:
        return None
    return line_panels([(active, "active transfers", "Transfers per link: active"),
                        (queued, "queued transfers", "Transfers per link: queued")],
                       palette(list(active) + list(queued)), "link", spans, t_end)


def archived_curves(metrics: pd.DataFrame) -> Curves:
    """Cumulative TB archived to tape: the archived_tb gauge, else the integral of archive_mbps."""
    archived = labelled(metrics, "tape", "archived_tb")
    if archived:
        return curves(metrics, archived)
    rates = labelled(metrics, "tape", "archive_mbps")
    dt = metrics["time"].diff().fillna(metrics["time"].iloc[0] if len(metrics) else 0.0) if "time" in metrics else None
    return {k: (days(metrics), np.cumsum(s.fillna(0.0).to_numpy(dtype=float) * dt.to_numpy(dtype=float)) / 1e6)
            for k, s in rates.items()} if dt is not None else {}


def tape(metrics: pd.DataFrame, summary: Mapping[str, Any], colors: Mapping[str, str], spans: Sequence[FaultSpan],
         t_end: float) -> Figure | None:
    """Tape back-ends: queues, drives, disk buffer and throughput (None without tape)."""
    if not any(c.startswith("tape.") for c in metrics.columns):
        return None
    fig, axes = new_figure(2, 2, height=2.6)
    panels = [
        ("queued requests", "Recall (solid) and migration (dashed) queues",
         [(curves(metrics, labelled(metrics, "tape", "recall_queue")), "-"),
          (curves(metrics, labelled(metrics, "tape", "migration_queue")), "--")]),
        ("busy drives", "Drives busy (dotted: drives installed)", [(curves(metrics, labelled(metrics, "tape", "drives_busy")), "-")]),
        ("TB", "Tape disk buffer used", [(curves(metrics, labelled(metrics, "tape", "buffer_tb")), "-")]),
        ("MB/s", "Archive (solid) and recall (dashed) throughput",
         [(curves(metrics, labelled(metrics, "tape", "archive_mbps")), "-"),
          (curves(metrics, labelled(metrics, "tape", "recall_mbps")), "--")]),
    ]
    for ax, (ylabel, title, groups) in zip(axes, panels):
        for data, style in groups:
            for label, (x, y) in data.items():
                ax.step(x, y, where="post", ls=style, lw=1.4, color=colors.get(label))
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left", fontsize=10.5)
    for name, info in summary.get("tape", {}).items():
        if info.get("drives"):
            axes[1].axhline(float(info["drives"]), color=colors.get(name, "#555555"), ls=":", lw=1.2)
    names = sorted({label for _, _, groups in panels for data, _ in groups for label in data})
    legend(axes[1], [Line2D([], [], color=colors.get(n), lw=2, label=n) for n in names], title="tape SE")
    time_axes(axes, t_end, spans)
    return fig


# ---------------------------------------------------------------- core services
def server_cpu(metrics: pd.DataFrame, summary: Mapping[str, Any], spans: Sequence[FaultSpan], t_end: float,
               colors: Mapping[str, str] | None = None) -> Figure | None:
    """CPU used per sample interval as % of each core server's cores (older runs: busy cores read at samples)."""
    cores = {k: float(v.get("cores") or 0) for k, v in summary.get("servers", {}).items()}
    for name, series in labelled(metrics, "server", "cores").items():
        cores.setdefault(name, float(series.max()))
    averaged = labelled(metrics, "server", "cpu_pct")
    if averaged:
        data = curves(metrics, {k: s for k, s in averaged.items() if cores.get(k)})
        title = "Core server CPU (average over each sample interval)"
    else:
        busy = labelled(metrics, "server", "busy_cores")
        data = curves(metrics, {k: s for k, s in busy.items() if cores.get(k)}, {k: 100.0 / cores[k] for k in busy if cores.get(k)})
        title = "Core server CPU (busy cores read at each sample time)"
    if not data:
        return None
    fig, axes = new_figure(1, 1, height=3.0)
    colors = {**palette(data), **(colors or {})}
    for name, (x, y) in data.items():
        axes[0].step(x, y, where="post", lw=1.5, color=colors[name], label=f"{name} ({cores[name]:.0f} cores)")
    return percent_panel(fig, data, "CPU [% of cores]", title, "server", spans, t_end)


def db_latency_curves(metrics: pd.DataFrame) -> Curves:
    """Latency per database, NaN (a gap in the line) in sample intervals without a query: no query, no latency."""
    latency = curves(metrics, labelled(metrics, "db", "latency_ms"))
    rate = first_labelled(metrics, "db", "qps", "queries_per_s")
    return {k: (x, np.where(rate[k].fillna(0.0).to_numpy(dtype=float) > 0, y, np.nan)) if k in rate else (x, y)
            for k, (x, y) in latency.items()}


def databases(metrics: pd.DataFrame, spans: Sequence[FaultSpan], t_end: float,
              colors: Mapping[str, str] | None = None) -> Figure | None:
    """MySQL latency, connection queue and query rate per database."""
    latency = db_latency_curves(metrics)
    queue = curves(metrics, labelled(metrics, "db", "queue"))
    qps = curves(metrics, first_labelled(metrics, "db", "qps", "queries_per_s"))
    if not (latency or queue or qps):
        return None
    return line_panels([(latency, "latency [ms]", "Query latency (moving average)"),
                        (queue, "waiting queries", "Queries waiting for a connection"),
                        (qps, "queries/s", "Query rate")], colors or palette(list(latency) + list(queue) + list(qps)), "database",
                       spans, t_end, 2.3)


def agents(summary: Mapping[str, Any]) -> Figure | None:
    """Busy fraction of each agent (a cycle longer than its polling time is an overrun)."""
    rows = summary.get("agents", {})
    if not rows:
        return None
    names = list(rows)[::-1]
    values = [100.0 * float(rows[n].get("busy_fraction") or 0.0) for n in names]
    fig, axes = bar_figure(0.28 * len(names) + 1.1)
    ax = axes[0]
    ax.barh(names, values, color=["#d62728" if rows[n].get("overruns") else "#1f77b4" for n in names])
    for y, n in enumerate(names):
        text = f" {values[y]:.2g}%" + (f"  ({rows[n]['overruns']} overruns)" if rows[n].get("overruns") else "")
        ax.text(values[y], y, text, va="center", fontsize=8.5)
    ax.set_xlim(0, max(max(values) * 1.3, 1e-3))
    ax.set_xlabel("busy fraction [% of simulated time]  (red: cycles overran the polling time)")
    ax.set_title("Agents", loc="left", fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


# ---------------------------------------------------------------- failures, requests, faults
def failures(summary: Mapping[str, Any], status: "StatusDigest", spans: Sequence[FaultSpan], t_end: float,
             colors: Mapping[str, str] | None = None) -> Figure | None:
    """Why jobs failed (minor status), and when (cumulative Failed per transformation)."""
    reasons = summary.get("jobs", {}).get("failures_by_reason", {})
    over_time = status.cumulative("job.status", "Failed", trans_names(summary))
    if not reasons and not over_time:
        return None
    fig = Figure(figsize=(WIDTH, max(3.4, hbar_height(len(reasons)))), layout="constrained")
    ax_reason, ax_time = fig.subplots(1, 2, width_ratios=[1, 1.3])
    items = sorted(reasons.items(), key=lambda kv: kv[1])
    ax_reason.barh([wrap(k, 34) for k, _ in items], [v for _, v in items], color="#d62728")
    for y, (_, v) in enumerate(items):
        ax_reason.text(v, y, f" {v:,}", va="center", fontsize=8.5)
    ax_reason.set_xlim(0, max([1] + [v for _, v in items]) * 1.2)
    ax_reason.tick_params(axis="y", labelsize=9.5)
    ax_reason.set_xlabel("failed jobs")
    ax_reason.set_title("Failure reasons", loc="left", fontsize=11)
    if not items:
        ax_reason.text(0.5, 0.5, "no job failures", ha="center", va="center", transform=ax_reason.transAxes)
    lines(ax_time, over_time, colors or palette(list(trans_names(summary).values()) + list(over_time)), step=False)
    ax_time.set_ylabel("jobs Failed (cumulative)")
    ax_time.set_title("Failed jobs over time, per transformation", loc="left", fontsize=11)
    legend(ax_time, title="transformation")
    time_axes([ax_time], t_end, spans)
    return fig


def requests(metrics: pd.DataFrame, spans: Sequence[FaultSpan], t_end: float) -> Figure | None:
    """Request Management System: requests by status over time (None when the RMS stayed idle)."""
    prefix = "rms.requests_"
    data = nonzero(curves(metrics, {c[len(prefix):]: metrics[c] for c in metrics.columns if c.startswith(prefix)}))
    if not data:
        return None
    colors = {"done": "#2ca02c", "failed": "#d62728", "waiting": "#ff7f0e", "assigned": "#1f77b4"}
    return line_panels([(data, "requests", "Requests (RMS) by status")], colors, "status", spans, t_end, 3.0)


def faults_timeline(spans: Sequence[FaultSpan], t_end: float) -> Figure | None:
    """Gantt chart of the fault windows, one row per fault, on the same time axis as the other plots."""
    if not spans:
        return None
    fig, axes = new_figure(1, 1, height=max(1.6, 0.4 * len(spans) + 1.0))
    ax = axes[0]
    colors = palette({s.kind for s in spans})
    t_max = max([t_end] + [s.end or s.start for s in spans])
    for y, span in enumerate(spans):
        end = span.end if span.end is not None else t_max
        ax.barh(y, (end - span.start) / DAY, left=span.start / DAY, color=colors[span.kind], height=0.6)
        inside = (end + span.start) / 2 < 0.6 * t_max
        ax.text((end if inside else span.start) / DAY, y, f" {span.kind}: {span.target} " , va="center", fontsize=9,
                ha="left" if inside else "right")
    ax.set_yticks(range(len(spans)), [s.label for s in spans], fontsize=9.5)
    ax.set_ylim(len(spans) - 0.5, -0.5)
    ax.set_xlim(0, max(t_max / DAY, 1e-3))
    D.date_axis(ax)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("Fault windows", loc="left", fontsize=11)
    return fig


# ---------------------------------------------------------------- overlays (compare report)
@dataclass
class Panel:
    """One overlay panel: the same curves for each compared run (baseline solid, what-ifs dashed, dotted...)."""

    title: str
    ylabel: str
    sides: Sequence[Curves]


def overlay(panels: Sequence[Panel], run_labels: Sequence[str], t_end: float,
            colors: Mapping[str, str] | None = None, spans: Sequence[FaultSpan] = ()) -> Figure | None:
    """Baseline vs what-ifs: colour = series (site, DB...), the same in every panel; line style = run.
    Fault windows of any compared run are shaded."""
    panels = [p for p in panels if any(p.sides)]
    if not panels:
        return None
    colors = {**palette(name for p in panels for side in p.sides for name in side), **(colors or {})}
    fig, axes = new_figure(len(panels), 1, height=2.9)
    for ax, panel in zip(axes, panels):
        for i, side in enumerate(panel.sides):
            lines(ax, side, colors, LINESTYLES[i % len(LINESTYLES)], step=False)
        ax.set_ylabel(panel.ylabel)
        ax.set_title(panel.title, loc="left", fontsize=11)
        names = sorted({n for side in panel.sides for n in side})
        legend(ax, [Line2D([], [], color="#333333", ls=LINESTYLES[i % len(LINESTYLES)], label=label)
                    for i, label in enumerate(run_labels)]
               + [Patch(color=colors.get(n, "#999999"), label=n) for n in names])
    time_axes(axes, t_end, spans)
    return fig


def held_to(data: Curves, t_end: float) -> Curves:
    """Cumulative curves held at their last value up to `t_end` (s): a run that ended earlier than the one it
    is overlaid on keeps its final count on the plot instead of a line that stops."""
    end = t_end / DAY
    return {k: (np.append(x, end), np.append(y, y[-1])) if len(x) and x[-1] < end else (x, y) for k, (x, y) in data.items()}


def total(data: Curves, label: str = "total") -> Curves:
    """Sum of same-grid curves (e.g. running jobs over all sites)."""
    if not data:
        return {}
    x = next(iter(data.values()))[0]
    return {label: (x, np.sum([y for _, y in data.values()], axis=0))}
