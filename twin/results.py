"""What one run produced, in memory: the hand-over from the runner to summaries, sweeps and reports.

It lives apart from `twin.runner` and `twin.sweep` so that the report code can take a RunResult or a
SweepResult without importing the code that writes the reports: data flows runner/sweep -> results -> report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from twin.engine.clock import format_duration
from twin.engine.eventlog import EventLog
from twin.scenario.schema import Scenario


@dataclass
class RunResult:
    """What a run produced: the event log (in memory, or streamed to events.parquet), tables, and
    the summary dict written to summary.json."""

    scenario: Scenario
    log: EventLog
    metrics: pd.DataFrame
    summary: dict[str, Any]
    event_digest: str
    out: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def events(self) -> pd.DataFrame:
        """The whole event log as one frame: for small runs; big ones read `log.chunks(...)`/`log.frame(kinds)`."""
        return self.log.to_frame()

    @property
    def deadline_met(self) -> bool | None:
        return self.summary.get("plan", {}).get("deadline_met")

    def headline(self) -> str:
        s = self.summary
        jobs = s.get("jobs", {})
        end = format_duration(s["simulated_time"])
        verdict = s.get("plan", {}).get("verdict", "")
        return (f"{self.scenario.name}: simulated {end}, {jobs.get('total', 0)} jobs "
                f"({jobs.get('by_status', {}).get('Done', 0)} Done), {s['events']} events. {verdict}").strip()


#: A sweep run's status in the runs table.
STATUS_OK, STATUS_ERROR = "ok", "error"


@dataclass
class SweepResult:
    """The tidy runs table, the per-combination summary and the files written."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    params: list[str]
    out: Path
    wall_s: float
    workers: str
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return int((self.runs["status"] == STATUS_ERROR).sum())
