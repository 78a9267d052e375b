"""DIRAC's Transformation Monitor, from the event log: per transformation the files by status
(Unused, Assigned, Processed, Problematic, MaxReset...) and the jobs by status (Waiting, Running,
Stalled, Done, Failed), at the end of the run or as they stood at any simulated time ("state at day X").

Counts are the files / jobs in each status at the time asked for: the net entries into it of the
`file.status` and `job.status` events, summed by the run's status digest (`digest.py`) at the snapshot
times `snapshot_times` names, so no per-file or per-job row is held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from twin.report import dates as D
from twin.report.render import Html, join, note, table, tag

if TYPE_CHECKING:
    from twin.report.digest import StatusDigest

DAY = 86400.0
FILE_COLUMNS = ("Unused", "Assigned", "Processed", "Problematic", "MaxReset")
JOB_COLUMNS = ("Waiting", "Running", "Stalled", "Done", "Failed")
STATUS_CLASS = {"Done": "st-done", "Processed": "st-done", "Running": "st-running", "Assigned": "st-running",
                "Waiting": "st-waiting", "Unused": "st-waiting", "Stalled": "st-stalled", "Failed": "st-failed",
                "Problematic": "st-failed", "MaxReset": "st-failed"}
WAITING_STATES = {"Received", "Checking", "Waiting", "Staging", "Matched", "Rescheduled"}  # not yet running


def counts_at(status: "StatusDigest", when: float) -> dict[int, dict[str, int]]:
    """{transformation id: {status column: count}} at time `when` (one of `snapshot_times`): the digest's
    net entries per status, jobs not yet running shown as Waiting, as the monitor does."""
    out: dict[int, dict[str, int]] = {}
    for tid, counts in status.counts_at(when).items():
        if tid < 0:
            continue
        mine = out.setdefault(tid, {})
        for label, n in counts.items():
            kind, _, state = label.partition(" ")
            label = f"jobs Waiting" if kind == "jobs" and state in WAITING_STATES else label
            mine[label] = mine.get(label, 0) + n
    return out


def snapshot_days(t_end: float, most: int = 8) -> list[tuple[str, float]]:
    """("State at day d", time) for up to `most` evenly spaced days, the last one the run's end if it falls short."""
    if t_end <= 0:
        return []
    step = max(1, int(np.ceil(t_end / DAY / most)))
    days = list(range(step, int(np.ceil(t_end / DAY)) + 1, step)) or [1]
    return [(f"State at day {d}" if d * DAY <= t_end else f"State at the end ({t_end / DAY:.2f} d)", min(d * DAY, t_end))
            for d in days]


def snapshot_times(t_end: float) -> list[float]:
    """Every time the report asks the monitor counts for: the days of `snapshot_days` and the end."""
    return sorted({t_end, *(at for _, at in snapshot_days(t_end))})


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


def state_at_days(transformations: Sequence[Mapping[str, Any]], status: "StatusDigest", t_end: float) -> Html:
    """"State at day X": the monitor table at up to 8 evenly spaced days, each folded away."""
    days = snapshot_days(t_end)
    if not days:
        return note("No event log: the state over time cannot be shown.")
    parts = []
    for label, at in days:
        if D.start():
            label = f"{label[:-1]}, {D.date_text(at)})" if label.endswith(")") else f"{label} ({D.date_text(at)})"
        parts.append(tag("details", join([tag("summary", label), monitor_table(transformations, counts_at(status, at))])))
    return join(parts)
