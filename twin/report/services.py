"""The service layer in the run report: per service instance and per database, calls/s,
p50/p95/p99 latency, pool occupancy and queue length over time (issue 14).

Reads only the summary (`services`, `databases`) and the sampled gauges (`svc.*`, `db.*`),
so it works the same on a live run and on a run folder read back from disk.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure

from twin.report import figures as F
from twin.report.render import Html, figure_html, join, note, num, pct, table, tag

LATENCY_COLUMNS = ["p50 [ms]", "p95 [ms]", "p99 [ms]"]


def _latencies(v: Mapping[str, Any]) -> list[str]:
    return [num(v.get(f"p{q}_latency_ms"), 2) for q in (50, 95, 99)]


def services_table(summary: Mapping[str, Any]) -> Html:
    """One row per service instance (service@host): the client's view of each RPC."""
    services = summary.get("services", {})
    if not services:
        return note("No service instances.")
    return table(["service@host", "calls", "calls/s", *LATENCY_COLUMNS, "threads", "mean busy threads", "mean queue", "timeouts",
                  "re-sent", "failed"],
                 [[n, num(v.get("calls")), num(v.get("calls_per_s"), 2), *_latencies(v), num(v.get("threads")),
                   num(v.get("busy_threads"), 2), num(v.get("mean_queue"), 3), num(v.get("timeouts")),
                   num(v.get("retries")), num(v.get("failed"))] for n, v in services.items()],
                 ["warn" if v.get("timeouts") or v.get("retries") else None for v in services.values()])


def databases_table(summary: Mapping[str, Any]) -> Html:
    """One row per database: query rate, latency percentiles, occupancy and time spent queueing exactly."""
    dbs = summary.get("databases", {})
    if not dbs:
        return note("No databases.")
    return table(["database", "queries/s", *LATENCY_COLUMNS, "occupancy", "mean queue", "exact queueing [h]"],
                 [[n, num(v.get("queries_per_s"), 2), *_latencies(v), pct(v.get("utilization"), 1),
                   num(v.get("mean_queue"), 3), num(v.get("exact_queueing_hours"), 1)] for n, v in dbs.items()])


def pools_figure(metrics: pd.DataFrame, spans: Sequence[F.FaultSpan], t_end: float) -> Figure | None:
    """Service calls/s, busy threads and waiting callers per instance; busy DB connections."""
    calls = F.nonzero(F.curves(metrics, F.labelled(metrics, "svc", "calls_per_s")))
    busy = F.nonzero(F.curves(metrics, F.labelled(metrics, "svc", "busy_threads")))
    queue = F.nonzero(F.curves(metrics, F.labelled(metrics, "svc", "queue")))
    db_busy = F.nonzero(F.curves(metrics, F.labelled(metrics, "db", "busy")))
    if not (calls or busy or db_busy):
        return None
    names = list(dict.fromkeys([*calls, *busy, *queue, *db_busy]))
    return F.line_panels([(calls, "calls/s", "RPC rate per service instance"),
                          (busy, "threads", "Busy service threads (interval mean)"),
                          (queue, "callers", "Callers waiting for a thread"),
                          (db_busy, "connections", "Busy DB connections (interval mean)")],
                         F.palette(names), "pool", spans, t_end, 2.3)


def section(metrics: pd.DataFrame, summary: Mapping[str, Any], spans: Sequence[F.FaultSpan], t_end: float) -> Html:
    return join([tag("h3", "Service instances and database pools"), services_table(summary), databases_table(summary),
                 figure_html(pools_figure(metrics, spans, t_end), "service and database pools over time")])
