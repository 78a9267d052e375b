"""Seed replications of one scenario, for people: the headline numbers with 95% intervals, P(deadline met)
and the margin to the deadline, and a page linking every seed's own report.

Intervals: the mean of a metric over seeds gets a two-sided 95% Student-t interval; P(deadline met)
a 95% Wilson interval; the margin (deadline − finish) is also given as the central 90% interval of
the seeds themselves, i.e. where one more run of the campaign would land.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from twin.report import figures as F
from twin.report.html import Run
from twin.report.render import Html, box, figure_html, join, key_values, note, num, page, table, tag
from twin.report.stats import percentile_interval, wilson

DAY = 86400.0


def _mean_ci(values: Sequence[float]) -> tuple[float, float, int]:
    from twin.sweep import mean_ci

    mean, _, half, n = mean_ci([v for v in values if not math.isnan(v)])
    return mean, half, n


def _finish(run: Run) -> float:
    plan = run.summary.get("plan", {})
    return plan["finished_at"] / DAY if plan.get("finished_at") is not None and plan.get("complete") else math.nan


def _deadline(runs: Sequence[Run]) -> float | None:
    deadlines = {r.summary.get("plan", {}).get("deadline") for r in runs}
    return None if deadlines == {None} or len(deadlines) != 1 else float(next(iter(deadlines))) / DAY


def with_ci(values: Sequence[float], digits: int = 2, unit: str = "") -> str:
    """'8.41 ± 0.12 d (n=20)': mean ± 95% t half-width over seeds."""
    mean, half, n = _mean_ci(values)
    if n == 0:
        return "–"
    text = f"{mean:,.{digits}f}" + (f" ± {half:,.{digits}f}" if n > 1 and not math.isnan(half) else "")
    return text + unit


def deadline_sentence(runs: Sequence[Run]) -> tuple[str, str]:
    """(box kind, sentence) for P(deadline met) and the margin: '5.6 d early, 90% interval 4.9–6.1 d'."""
    deadline = _deadline(runs)
    finishes = [_finish(r) for r in runs]
    done = [f for f in finishes if not math.isnan(f)]
    n = len(runs)
    if deadline is None:
        return "info", f"No deadline set; finished after {with_ci(finishes, unit=' d')} (95% CI of the mean, {len(done)}/{n} seeds complete)."
    met = sum(1 for r in runs if r.summary.get("plan", {}).get("deadline_met"))
    lo, hi = wilson(met, n)
    margins = [deadline - f for f in done]
    text = f"Deadline met in {met}/{n} seeds: P(deadline met) = {met / n:.0%} (95% interval {lo:.0%}–{hi:.0%})."
    if margins:
        m = float(np.median(margins))
        a, b = percentile_interval(margins, 0.90)
        word = "early" if m >= 0 else "late"
        text += (f" Margin {abs(m):.1f} d {word} (median over seeds; 90% interval {_signed(a)} to {_signed(b)}"
                 f", positive = early); finished after {with_ci(done, unit=' d')} (mean, 95% CI).")
    if len(done) < n:
        text += f" {n - len(done)} seed(s) did not complete."
    kind = "ok" if met == n else "bad" if met == 0 else "warn"
    return kind, text


def _signed(days: float) -> str:
    return f"{days:+.1f} d"


def plan_box(runs: Sequence[Run]) -> Html:
    kind, text = deadline_sentence(runs)
    title = {"ok": "Deadline met in every seed.", "bad": "Deadline MISSED in every seed.",
             "warn": "Deadline at risk.", "info": "No deadline set."}[kind]
    return box(kind, title, text)


def headline_cards(runs: Sequence[Run]) -> Html:
    def values(metric: Callable[[Run], Any]) -> list[float]:
        return [float(metric(r) or 0.0) for r in runs]

    jobs = lambda r: r.summary.get("jobs", {})  # noqa: E731
    return key_values([
        ("finished after [d] (95% CI)", with_ci([_finish(r) for r in runs])),
        ("jobs Done", with_ci(values(lambda r: jobs(r).get("by_status", {}).get("Done", 0)), 0)),
        ("jobs Failed", with_ci(values(lambda r: jobs(r).get("by_status", {}).get("Failed", 0)), 0)),
        ("CPU used [HS06·h]", with_ci(values(lambda r: jobs(r).get("cpu_used_hs06_hours")), 0)),
        ("CPU wasted [HS06·h]", with_ci(values(lambda r: jobs(r).get("cpu_wasted_hs06_hours")), 0)),
        ("seeds", num(len(runs))),
    ])


def transformation_table(runs: Sequence[Run]) -> Html:
    names = list(dict.fromkeys(str(t.get("name")) for r in runs for t in r.summary.get("transformations", [])))
    rows = []
    for name in names:
        ts = [next((t for t in r.summary.get("transformations", []) if str(t.get("name")) == name), {}) for r in runs]
        started = [float(t["started_at"]) / DAY for t in ts if t.get("started_at") is not None]
        finished = [float(t["finished_at"]) / DAY if t.get("finished_at") is not None else math.nan for t in ts]
        lo, hi = percentile_interval([f for f in finished if not math.isnan(f)], 0.90)
        rows.append([name, with_ci(started), with_ci(finished), "–" if math.isnan(lo) else f"{lo:.2f}–{hi:.2f}",
                     f"{sum(1 for t in ts if t.get('complete'))}/{len(ts)}"])
    return table(["transformation", "started [d] (95% CI)", "finished [d] (95% CI)", "finished, 90% of seeds [d]",
                  "complete in"], rows)


def finish_figure(runs: Sequence[Run]) -> "F.Figure | None":
    """Every seed's finish day as a dot, with the deadline: the spread a planner must allow for."""
    finishes = sorted(_finish(r) for r in runs)
    finite = [f for f in finishes if not math.isnan(f)]
    if not finite:
        return None
    deadline = _deadline(runs)
    fig, axes = F.bar_figure(2.0)
    ax = axes[0]
    y = np.zeros(len(finite)) + np.linspace(-0.15, 0.15, len(finite))
    ax.plot(finite, y, "o", color="#1f77b4", alpha=0.8)
    if deadline is not None:
        ax.axvline(deadline, color=F.FAULT_COLOR, ls="--", lw=1.4)
        ax.text(deadline, 0.32, " deadline", color=F.FAULT_COLOR, fontsize=9, va="center")
    ax.set_xlim(0, max(finite + [deadline or 0.0]) * 1.08)
    ax.set_ylim(-0.45, 0.45)
    ax.set_yticks([])
    ax.set_xlabel("finished after [days], one dot per seed")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def replicas_report_html(runs: Sequence[Run], links: Sequence[str], name: str) -> str:
    """The page of `twin run --seeds N`: uncertainty first, then each seed's result and report link."""
    seed_rows = []
    for run, link in zip(runs, links):
        plan = run.summary.get("plan", {})
        seed_rows.append([run.summary.get("seed"), num(_finish(run), 2), "yes" if plan.get("deadline_met") else
                          "–" if plan.get("deadline_met") is None else "NO", run.summary.get("bottleneck", {}).get("verdict", "–"),
                          tag("a", "report", href=f"{link}/report.html")])
    sections = [
        ("summary", "Summary", join([plan_box(runs), headline_cards(runs), figure_html(finish_figure(runs), "finish per seed"),
                                     note("± is the 95% Student-t half-width of the mean over seeds; P(deadline met) has a "
                                          "95% Wilson interval; the margin's 90% interval is the 5th–95th percentile of the "
                                          "seeds themselves.")])),
        ("transformations", "Transformations over seeds", transformation_table(runs)),
        ("seeds", "Every seed", table(["seed", "finished after [d]", "deadline met", "bottleneck", "report"], seed_rows)),
    ]
    return page(f"twin run report: {name} ({len(runs)} seeds)",
                f"seeds {', '.join(str(r.summary.get('seed')) for r in runs)}", sections)


def write_replicas_report(runs: Sequence[Run], links: Sequence[str], name: str, path: Path) -> Path:
    path.write_text(replicas_report_html(runs, links, name), encoding="utf-8")
    return path
