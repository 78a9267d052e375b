"""DIRAC's Transformation Monitor, from the event log: per transformation the files by status
(Unused, Assigned, Processed, Problematic, MaxReset...) and the jobs by status (Waiting, Running,
Stalled, Done, Failed), at the end of the run or as they stood at any simulated time ("state at day X").

Counts are the last status of each file / job at or before the time asked for, read from
`file.status` (entity `trans:<id>/<lfn>`) and `job.status` (value = transformation id) events that the
caller selects through its one event accessor.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from twin.report import dates as D
from twin.report.render import Html, join, note, table, tag

MONITOR_EVENTS = ("file.status", "job.status")
FILE_COLUMNS = ("Unused", "Assigned", "Processed", "Problematic", "MaxReset")
JOB_COLUMNS = ("Waiting", "Running", "Stalled", "Done", "Failed")
STATUS_CLASS = {"Done": "st-done", "Processed": "st-done", "Running": "st-running", "Assigned": "st-running",
                "Waiting": "st-waiting", "Unused": "st-waiting", "Stalled": "st-stalled", "Failed": "st-failed",
                "Problematic": "st-failed", "MaxReset": "st-failed"}
WAITING_STATES = {"Received", "Checking", "Waiting", "Staging", "Matched", "Rescheduled"}  # not yet running


def last_states(events: pd.DataFrame, kind: str, until: float) -> pd.DataFrame:
    """Last state of each entity of `kind` at or before `until` (rows: entity, state, value)."""
    if events is None or events.empty:
        return pd.DataFrame(columns=["entity", "state", "value"])
    sel = events[(events["kind"] == kind) & (events["time"] <= until)]
    return sel.drop_duplicates("entity", keep="last")[["entity", "state", "value"]]


def counts_at(events: pd.DataFrame, until: float) -> dict[int, dict[str, int]]:
    """{transformation id: {status column: count}} at time `until`."""
    out: dict[int, dict[str, int]] = {}
    files = last_states(events, "file.status", until)
    if len(files):
        ids = pd.to_numeric(files["entity"].astype(str).str.extract(r"^trans:(\d+)/", expand=False), errors="coerce")
        for (tid, state), n in files.groupby([ids, files["state"]]).size().items():
            if not np.isnan(tid):
                out.setdefault(int(tid), {})[f"files {state}"] = int(n)
    jobs = last_states(events, "job.status", until)
    if len(jobs):
        states = jobs["state"].map(lambda s: "Waiting" if s in WAITING_STATES else s)
        for (tid, state), n in jobs.groupby([jobs["value"], states]).size().items():
            if not pd.isna(tid):
                out.setdefault(int(tid), {})[f"jobs {state}"] = int(n)
    return out


def _cell(n: int, status: str) -> Any:
    return tag("span", f"{n:,}", class_=STATUS_CLASS.get(status)) if n else "0"


def monitor_table(transformations: Sequence[Mapping[str, Any]], counts: Mapping[int, Mapping[str, int]]) -> Html:
    """The Transformation Monitor columns, status-coloured."""
    rows = []
    for t in transformations:
        c = counts.get(int(t["id"]), {})
        rows.append([t.get("id"), t.get("name"), t.get("status"),
                     *[_cell(c.get(f"files {st}", 0), st) for st in FILE_COLUMNS],
                     *[_cell(c.get(f"jobs {st}", 0), st) for st in JOB_COLUMNS]])
    headers = ["ID", "name", "status", *[f"Files {st}" for st in FILE_COLUMNS], *[f"Jobs {st}" for st in JOB_COLUMNS]]
    return table(headers, rows)


def state_at_days(transformations: Sequence[Mapping[str, Any]], events: pd.DataFrame, t_end: float,
                  most: int = 8) -> Html:
    """"State at day X": the monitor table at up to `most` evenly spaced days, each folded away."""
    if events is None or events.empty or t_end <= 0:
        return note("No event log: the state over time cannot be shown.")
    day = 86400.0
    step = max(1, int(np.ceil(t_end / day / most)))
    days = list(range(step, int(np.ceil(t_end / day)) + 1, step)) or [1]
    parts = []
    for d in days:
        at = min(d * day, t_end)
        label = f"State at day {d}" if d * day <= t_end else f"State at the end ({at / day:.2f} d)"
        label += f" ({D.date_text(at)})" if D.start() else ""
        parts.append(tag("details", join([tag("summary", label), monitor_table(transformations, counts_at(events, at))])))
    return join(parts)
