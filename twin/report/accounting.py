"""Accounting-style plots, as DIRAC's Accounting portal draws them: CPU power in use by site, running
jobs by transformation, jobs reaching a final status per interval (stacked), and net TB/day per SE.

CPU in HS06 is slots in use x the CE's HS06 per core (`site.running` x `hs06_per_core` from the
scenario); per transformation the twin has no per-site split in the log, so it shows running jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from twin.report import figures as F

if TYPE_CHECKING:
    from twin.report.digest import StatusDigest

FINAL_COLORS = {"Done": "#2ca02c", "Failed": "#d62728", "Killed": "#7f7f7f", "Deleted": "#bcbd22"}


def hs06_per_core(scenario: Mapping[str, Any]) -> dict[str, float]:
    """Slot-weighted mean HS06 per core of each site's CEs."""
    out = {}
    for site in scenario.get("topology", {}).get("sites", []):
        ces = site.get("ces", [])
        slots = sum(float(ce.get("slots") or 0) for ce in ces)
        if slots:
            out[site["name"]] = sum(float(ce.get("slots") or 0) * float(ce.get("hs06_per_core") or 0) for ce in ces) / slots
    return out


def cpu_by_site(metrics: pd.DataFrame, scenario: Mapping[str, Any], colors: Mapping[str, str],
                spans: Sequence[F.FaultSpan], t_end: float) -> "F.Figure | None":
    """Stacked CPU power in use per site [kHS06]."""
    power = hs06_per_core(scenario)
    running = {k: s for k, s in F.labelled(metrics, "site", "running").items() if k in power}
    data = F.curves(metrics, running, {k: power[k] / 1000.0 for k in running})
    if not data or not any(np.nanmax(y) > 0 for _, y in data.values()):
        return None
    fig, axes = F.new_figure(1, 1, height=3.0)
    labels = list(data)
    areas = axes[0].stackplot(F.days(metrics), *[data[k][1] for k in labels], labels=labels, step="post",
                              colors=[colors.get(k, "#999999") for k in labels], alpha=0.85)
    axes[0].set_ylabel("CPU in use [kHS06]")
    axes[0].set_title("CPU power in use by site (slots busy × HS06 per core)", loc="left", fontsize=11)
    F.legend(axes[0], list(areas)[::-1], title="site")
    F.time_axes(axes, t_end, spans)
    return fig


def running_by_transformation(status: "StatusDigest", names: Mapping[int, str]) -> F.Curves:
    """Jobs in Running per transformation over time (entries into Running minus exits from it)."""
    return status.level("job.status", "Running", names)


def final_status_bars(status: "StatusDigest", spans: Sequence[F.FaultSpan], t_end: float, bins: int = 40) -> "F.Figure | None":
    """Jobs reaching a final status per interval, stacked by status (Accounting: 'Jobs by FinalMajorStatus'):
    the digest's intervals merged `bins` at a time."""
    per_interval = {st: status.entered_per_interval("job.status", st) for st in FINAL_COLORS}
    if not any(c.any() for c in per_interval.values()):
        return None
    merge = max(1, len(status.edges) // bins)
    edges = status.edges[::merge]
    width = (edges[1] - edges[0]) / F.DAY
    fig, axes = F.new_figure(1, 1, height=2.8)
    bottom = np.zeros(len(edges) - 1)
    for st, color in FINAL_COLORS.items():
        counts = np.add.reduceat(per_interval[st], np.arange(0, len(per_interval[st]), merge))[:len(edges) - 1]
        if counts.any():
            axes[0].bar(edges[:-1] / F.DAY, counts, width=width, bottom=bottom, align="edge", color=color, label=st)
            bottom += counts
    axes[0].set_ylabel(f"jobs per {F.wrap(_interval(width), 20)}")
    axes[0].set_title("Jobs reaching a final status, per interval", loc="left", fontsize=11)
    F.legend(axes[0], title="final status")
    F.time_axes(axes, t_end, spans)
    return fig


def _interval(days: float) -> str:
    return f"{days:.2g} d" if days >= 1 else f"{days * 24:.2g} h" if days * 24 >= 1 else f"{days * 1440:.2g} min"


def se_rate(metrics: pd.DataFrame, colors: Mapping[str, str], spans: Sequence[F.FaultSpan], t_end: float) -> "F.Figure | None":
    """Net TB/day written to each SE (growth of its used space per sample interval)."""
    used = F.labelled(metrics, "se", "used_tb")
    if not used or "time" not in metrics or len(metrics) < 2:
        return None
    dt_days = metrics["time"].diff().to_numpy(dtype=float) / F.DAY
    data = {k: (F.days(metrics), np.nan_to_num(s.ffill().diff().to_numpy(dtype=float) / dt_days)) for k, s in used.items()}
    data = F.nonzero(data)
    if not data:
        return None
    return F.line_panels([(data, "TB/day", "Net TB/day written per storage element")], colors, "storage element",
                         spans, t_end, 2.8)
