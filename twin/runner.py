"""Run one scenario end to end: build -> simulate -> write outputs (-> report).

This is the only place that knows the order of the pipeline; the CLI, sweeps and
tests all call `run_scenario` (or `simulate`, which keeps everything in memory).
"""

from __future__ import annotations

import json
from pathlib import Path

from twin.results import RunResult
from twin.scenario.schema import Scenario


def simulate(scenario: Scenario, progress: bool = False, events_path: Path | None = None,
             keep_events: bool = True) -> RunResult:
    """Build the world for `scenario`, run it, and return the tables.

    The event log streams to `events_path` when given (memory bounded by work in flight), else it
    is kept in memory; `keep_events=False` keeps only its digest and length (sweeps)."""
    from twin.build import build_world
    from twin.summary import summarize

    world = build_world(scenario, events_path=events_path, keep_events=keep_events)
    bar = _progress_bar(scenario.run.duration) if progress else None
    try:
        world.run(progress=bar.update_to if bar else None)
    finally:
        if bar:
            bar.close()
        world.sim.log.close()
    summary = summarize(world)
    return RunResult(scenario, world.sim.log, world.sim.metrics.to_frame(), summary, world.sim.log.digest())


def run_scenario(scenario: Scenario, out: Path, progress: bool = True, report: bool = True) -> RunResult:
    """Simulate and write events.parquet (streamed during the run), metrics.parquet, summary.json (and report.html)."""
    out.mkdir(parents=True, exist_ok=True)
    result = simulate(scenario, progress=progress, events_path=out / "events.parquet")
    write_outputs(result, out)
    if report:
        from twin.report.html import write_run_report

        result.files["report"] = write_run_report(result, out / "report.html")
    return result


def write_outputs(result: RunResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result.out = out
    result.files["events"] = out / "events.parquet"
    result.files["metrics"] = out / "metrics.parquet"
    result.files["summary"] = out / "summary.json"
    result.log.save(result.files["events"])
    result.metrics.to_parquet(result.files["metrics"], index=False)
    summary = dict(result.summary, event_log_sha256=result.event_digest, scenario=result.scenario.model_dump(mode="json"))
    result.files["summary"].write_text(json.dumps(summary, indent=2, sort_keys=False, default=str))


def _progress_bar(duration: float):
    from tqdm import tqdm

    class _Bar(tqdm):
        def update_to(self, now: float) -> None:
            self.update(now / 86400.0 - self.n)

    return _Bar(total=duration / 86400.0, unit="sim-day", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} sim-days [{elapsed}<{remaining}]", leave=False)
