"""The sweep report: one page answering "which setting meets the deadline, and how sure are we?".

A sweep (`twin.sweep`) hands over its runs table (one row per run) and its per-combination
summary (mean, std, 95% CI half-width, n of every metric). This page shows, per combination,
the mean ± 95% CI, P(deadline met) with a Wilson interval, plots against the first parameter on a
numeric axis (when its values are numbers) with a confidence band and the deadline line, a heatmap
when there are two parameters, and every run with a link to its own report when the sweep kept it.

Nothing here imports `twin.sweep` at run time (the sweep imports this module): data flows one way.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from twin.report import render as R
from twin.report.format import format_ci, param_text, short_label
from twin.report.stats import wilson

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from twin.results import SweepResult

HEADLINE = ("finished_at_d", "complete", "deadline_met", "jobs_done", "jobs_failed", "cpu_wasted_hs06_h", "tape_archived_tb")
HEADER = {"finished_at_d": "finished after [d]", "complete": "share complete", "deadline_met": "P(deadline met)",
          "jobs_done": "jobs Done", "jobs_failed": "jobs Failed", "cpu_wasted_hs06_h": "CPU wasted [HS06 h]",
          "tape_archived_tb": "archived to tape [TB]"}
PLOTS = (("finished_at_d", "finished after [days]"), ("deadline_met", "P(deadline met)"),
         ("jobs_failed", "failed jobs"), ("cpu_wasted_hs06_h", "wasted CPU [HS06 h]"))
RUN_LINK = "run_report"  # runs-table column with the relative path of a run's own report, when kept


def write_sweep_report(result: "SweepResult", name: str, path: Path) -> Path:
    """One self-contained HTML page: setup, mean ± 95% CI per combination, plots, heatmap, all runs."""
    path.write_text(sweep_report_html(result, name), encoding="utf-8")
    return path


def sweep_report_html(result: "SweepResult", name: str) -> str:
    params, summary, runs = result.params, result.summary, result.runs
    seeds = int(summary["runs"].max()) if len(summary) else 0
    sections = [("setup", "Sweep", _setup(result, seeds)),
                ("summary", "Mean ± 95% CI per combination", _summary_table(result))]
    if params:
        figures = [R.figure_html(metric_figure(result, col, label), label) for col, label in PLOTS
                   if f"{col}_mean" in summary or col == "deadline_met"]
        figures.append(R.figure_html(heatmap(result), "finish time heatmap"))
        sections.append(("plots", "Metrics against " + short_label(params[0], params), R.join(figures)))
    sections.append(("runs", "All runs", _runs_table(runs)))
    subtitle = (f"{name}: {len(summary)} combination{'s' if len(summary) != 1 else ''} × {seeds} "
                f"seed{'s' if seeds != 1 else ''} = {len(runs)} runs")
    return R.page(f"Sweep: {name}", subtitle, sections)


def _setup(result: "SweepResult", seeds: int) -> R.Html:
    setup = R.key_values([("runs", len(result.runs)), ("combinations", len(result.summary)),
                          ("seeds per combination", seeds), ("errors", result.errors),
                          ("wall time", f"{result.wall_s:.1f} s"), ("executed on", result.workers)])
    axes = R.table(["parameter", "key path", "values"],
                   [(short_label(p, result.params), p, ", ".join(dict.fromkeys(param_text(v) for v in result.runs[p])))
                    for p in result.params])
    return R.join([setup, axes, R.note(
        "Replication r of every combination uses seed run.seed + r (common random numbers). "
        "± is the two-sided 95% Student-t confidence half-width of the mean over seeds; "
        "P(deadline met) is the share of seeds that met run.deadline, with its 95% Wilson interval.")])


# ---------------------------------------------------------------- tables
def deadline_share(runs: pd.DataFrame, combo: dict[str, Any]) -> tuple[int, int]:
    """(runs that met the deadline, runs with a deadline verdict) for one combination."""
    mine = _select(runs, combo)
    if "deadline_met" not in mine or "status" not in mine:
        return 0, 0
    verdicts = mine.loc[mine["status"] == "ok", "deadline_met"].dropna()
    return int(sum(bool(v) for v in verdicts)), int(len(verdicts))


def p_deadline_text(met: int, n: int) -> str:
    if n == 0:
        return "no deadline"
    lo, hi = wilson(met, n)
    return f"{met / n:.0%} ({lo:.0%}–{hi:.0%})"


def _summary_table(result: "SweepResult") -> R.Html:
    summary, params = result.summary, result.params
    cols = [c for c in HEADLINE if c != "deadline_met" and f"{c}_mean" in summary]
    rows, classes = [], []
    for _, row in summary.iterrows():
        combo = {p: row[p] for p in params}
        met, n = deadline_share(result.runs, combo)
        cells: list[Any] = [param_text(row[p]) for p in params] + [row["runs"], row["errors"], p_deadline_text(met, n)]
        cells += [format_ci(row[f"{c}_mean"], row[f"{c}_ci95"]).replace(" ", "\u00a0") for c in cols]
        mode = row.get("bottleneck_mode")
        cells.append(f"{mode} ({row.get('bottleneck_share', 0):.0%})" if isinstance(mode, str) else "–")
        rows.append(cells)
        classes.append("bad" if row["errors"] or (n and met < n) else "ok" if n and met == n else None)
    labels = [short_label(p, params) for p in params]
    return R.table([*labels, "runs", "errors", "P(deadline met)", *(HEADER[c] for c in cols), "most frequent bottleneck"],
                   rows, classes)


def _runs_table(runs: pd.DataFrame) -> R.Html:
    shown = runs.drop(columns=[c for c in runs.columns if c.startswith(("db_p95_ms[", "tape_archived_tb[")) or c == RUN_LINK])
    rows = []
    for i, record in enumerate(shown.itertuples(index=False)):
        cells: list[Any] = [_cell(v) for v in record]
        link = runs[RUN_LINK].iloc[i] if RUN_LINK in runs else None
        cells.append(R.tag("a", "report", href=link) if isinstance(link, str) and link else "–")
        rows.append(cells)
    return R.details(f"{len(shown)} runs (sweep.csv has every column)", R.table([*shown.columns, "report"], rows))


def _cell(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return param_text(value) if value is not None else "–"


# ---------------------------------------------------------------- figures
def numeric_axis(values: Sequence[Any]) -> bool:
    """True when every value is a real number (not bool): plot it on a numeric axis."""
    return bool(values) and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                                for v in values)


def _positions(summary: pd.DataFrame, first: str) -> tuple[dict[str, float], list[str] | None]:
    """x position per value of the first parameter: the number itself, or 0, 1, 2... with tick labels."""
    values = list(dict.fromkeys(summary[first].tolist(), None)) if len(summary) else []
    if numeric_axis(values):
        return {param_text(v): float(v) for v in values}, None
    texts = [param_text(v) for v in values]
    return {t: float(i) for i, t in enumerate(dict.fromkeys(texts))}, list(dict.fromkeys(texts))


def _series(result: "SweepResult", col: str) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(label, x, mean, low, high) per value of the other parameters, sorted by x."""
    summary, params = result.summary, result.params
    first, others = params[0], params[1:]
    xpos, _ = _positions(summary, first)
    groups = summary.groupby([summary[o].map(param_text) for o in others], sort=False) if others else [((), summary)]
    out = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{short_label(o, params)} = {k}" for o, k in zip(others, key))
        x = np.array([xpos[param_text(v)] for v in part[first]])
        if col == "deadline_met":
            shares = [deadline_share(result.runs, {p: r[p] for p in params}) for _, r in part.iterrows()]
            if not any(n for _, n in shares):
                continue
            mean = np.array([m / n if n else np.nan for m, n in shares])
            bounds = np.array([wilson(m, n) for m, n in shares])
            lo, hi = bounds[:, 0], bounds[:, 1]
        else:
            mean = part[f"{col}_mean"].to_numpy(dtype=float)
            half = part[f"{col}_ci95"].to_numpy(dtype=float)
            half = np.where(np.isnan(half), 0.0, half)
            lo, hi = mean - half, mean + half
        order = np.argsort(x, kind="stable")
        out.append((label, x[order], mean[order], lo[order], hi[order]))
    return out


def metric_figure(result: "SweepResult", col: str, label: str) -> "Figure | None":
    """Mean and 95% band against the first parameter, one line per value of the others; legend below."""
    from twin.report import figures as F

    series = _series(result, col)
    if not series:
        return None
    first = result.params[0]
    _, ticks = _positions(result.summary, first)
    fig = F.Figure(figsize=(8.0, 3.4 + 0.22 * (len(series) if len(series) > 1 else 0)))
    ax = fig.subplots()
    for i, (name, x, mean, lo, hi) in enumerate(series):
        color = F.CYCLE[i % len(F.CYCLE)]
        ax.plot(x, mean, marker="o", color=color, label=name or None)
        ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), [F.wrap(t, 16) for t in ticks])
    deadline = _deadline_days(result)
    if col == "finished_at_d" and deadline is not None:
        ax.axhline(deadline, color=F.FAULT_COLOR, linestyle="--", linewidth=1.2)
        ax.annotate(f"deadline {deadline:g} d", (0.01, deadline), xycoords=("axes fraction", "data"), ha="left",
                    va="bottom", fontsize=8, color=F.FAULT_COLOR)
    if col == "deadline_met":
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(F.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel(short_label(first, result.params))
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        fig.legend(loc="lower center", ncol=min(3, len(series)), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.07 * math.ceil(len(series) / 3) + 0.02, 1, 1))
    else:
        fig.tight_layout()
    return fig


def _deadline_days(result: "SweepResult") -> float | None:
    if "deadline_d_mean" in result.summary:
        values = result.summary["deadline_d_mean"].dropna().unique()
        if len(values) == 1:
            return float(values[0])
    return None


def heatmap(result: "SweepResult", col: str = "finished_at_d") -> "Figure | None":
    """Mean finish time over the first two parameters (averaged over any others), cells annotated."""
    from twin.report import figures as F

    params, summary = result.params, result.summary
    if len(params) < 2 or f"{col}_mean" not in summary:
        return None
    a, b = params[0], params[1]
    table = summary.assign(_a=summary[a].map(param_text), _b=summary[b].map(param_text)).pivot_table(
        index="_b", columns="_a", values=f"{col}_mean", aggfunc="mean", sort=False)
    xs, ys = list(dict.fromkeys(summary[a].map(param_text))), list(dict.fromkeys(summary[b].map(param_text)))
    table = table.reindex(index=ys, columns=xs)
    fig = F.Figure(figsize=(min(8.0, 2.5 + 1.1 * len(xs)), 1.6 + 0.45 * len(ys)))
    ax = fig.subplots()
    image = ax.imshow(table.to_numpy(dtype=float), aspect="auto", cmap="viridis_r")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(short_label(a, params))
    ax.set_ylabel(short_label(b, params))
    for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
        if not math.isnan(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8, color="white" if v > np.nanmean(table) else "black")
    fig.colorbar(image, ax=ax, label="finished after [days]")
    ax.set_title("Mean finish time [days]", fontsize=10)
    fig.tight_layout()
    return fig


def _select(frame: pd.DataFrame, combo: dict[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for key, value in combo.items():
        mask &= frame[key].map(lambda v, value=value: param_text(v) == param_text(value))
    return frame[mask]
