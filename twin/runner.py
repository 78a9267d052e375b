"""Run one scenario end to end: build -> simulate -> write outputs (-> report).

This is the only place that knows the order of the pipeline; the CLI, sweeps and
tests all call `run_scenario` (or `simulate`, which keeps everything in memory).

Outputs follow `twin.outputs`: `run_scenario` checks `out` first, hands `simulate` a staging
folder (the event log streams to its events.parquet during the run), writes the tables and the
report into it, then run.json last, and renames the folder into place. Ctrl-C during the
simulation keeps what was simulated: the tables and summary up to that moment, status
"incomplete" in run.json, and `RunInterrupted` (a KeyboardInterrupt) carries where they went.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from twin.outputs import COMPLETE, INCOMPLETE, Staging, check_out, scenario_hash
from twin.results import RunResult
from twin.scenario.schema import Scenario


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a simulation: `result` holds the state reached, `where` the partial outputs (if written)."""

    def __init__(self, result: RunResult) -> None:
        super().__init__()
        self.result = result
        self.where: Path | None = None


def simulate(scenario: Scenario, progress: bool = False, events_path: Path | None = None,
             keep_events: bool = True) -> RunResult:
    """Build the world for `scenario`, run it, and return the tables.

    The event log streams to `events_path` when given (memory bounded by work in flight; run_scenario
    passes its staging folder's events.parquet), else it is kept in memory; `keep_events=False` keeps
    only its digest and length (sweeps). Raises RunInterrupted on Ctrl-C, with the state reached."""
    from twin.build import build_world

    world = build_world(scenario, events_path=events_path, keep_events=keep_events)
    bar = _progress_bar(scenario.run.duration) if progress else None
    if bar is not None and scenario.run.stop_when_done:
        bar.work_done = _work_done(world)  # the run stops when done: count to the expected stop, not the horizon
    try:
        world.run(progress=bar.update_to if bar else None)
    except KeyboardInterrupt:
        world.sim.log.close()
        raise RunInterrupted(_result(world, interrupted=True)) from None
    finally:
        if bar:
            bar.close()
    world.sim.log.close()
    return _result(world)


def _result(world, interrupted: bool = False) -> RunResult:
    from twin.summary import summarize

    try:
        summary = summarize(world)
    except Exception as exc:  # noqa: BLE001 - an interrupted world may be mid-event; keep what is certain
        if not interrupted:
            raise
        summary = {"scenario_name": world.scenario.name, "seed": world.scenario.run.seed,
                   "simulated_time": world.sim.now, "events": len(world.sim.log),
                   "summary_error": f"{type(exc).__name__}: {exc}"}
    if interrupted:
        summary["interrupted_at"] = world.sim.now
    return RunResult(world.scenario, world.sim.log, world.sim.metrics.to_frame(), summary, world.sim.log.digest())


def run_scenario(scenario: Scenario, out: Path, progress: bool = True, report: bool = True, force: bool = False) -> RunResult:
    """Simulate and write events.parquet, metrics.parquet, summary.json (and report.html), then run.json.

    `out` must be empty or absent unless `force` (checked before simulating)."""
    out = Path(out)
    check_out(out, force)
    info = {"scenario": scenario.name, "scenario_sha256": scenario_hash(scenario.model_dump(mode="json")),
            "seed": scenario.run.seed, **({"description": scenario.description} if scenario.description else {})}
    with Staging(out, "run", force, info) as staging:
        try:
            result = simulate(scenario, progress=progress, events_path=staging.path / "events.parquet")
        except RunInterrupted as stop:
            write_outputs(stop.result, staging.path)
            stop.where = staging.commit(INCOMPLETE, simulated_time=stop.result.summary["simulated_time"])
            _moved(stop.result, stop.where)
            raise
        write_outputs(result, staging.path)
        if report:
            from twin.report.html import write_run_report

            result.files["report"] = write_run_report(result, staging.path / "report.html")
        _moved(result, staging.commit(COMPLETE, simulated_time=result.summary["simulated_time"]))
    return result


def _moved(result: RunResult, where: Path) -> None:
    """The staging folder became `where`: point the result (and the closed, streamed log) there."""
    result.out = where
    result.files = {key: where / path.name for key, path in result.files.items()}
    if result.log.path is not None:
        result.log.path = where / result.log.path.name


def write_outputs(result: RunResult, out: Path) -> None:
    """The tables and summary.json into `out` (a folder the caller owns: staging, or a test's tmp)."""
    out.mkdir(parents=True, exist_ok=True)
    result.out = out
    result.files["events"] = out / "events.parquet"
    result.files["metrics"] = out / "metrics.parquet"
    result.files["summary"] = out / "summary.json"
    result.log.save(result.files["events"])
    result.metrics.to_parquet(result.files["metrics"], index=False)
    result.files["metrics_csv"] = out / "metrics.csv"  # the same time series for spreadsheets
    result.metrics.to_csv(result.files["metrics_csv"], index=False)
    summary = dict(result.summary, event_log_sha256=result.event_digest, scenario=result.scenario.model_dump(mode="json"))
    result.files["summary"].write_text(json.dumps(summary, indent=2, sort_keys=False, default=str))


def _work_done(world) -> Callable[[], float]:
    """Share of the asked-for work done (mean over transformations of Done tasks / max tasks, or of
    Processed / known input files): a run that stops when done ends near now / share, not at run.duration."""

    def share() -> float:
        parts = []
        with world.services.unmetered():
            for trans_id in world.runtimes:
                files = world.tsdb.getTransformationStats(trans_id)["Value"]
                max_tasks = world.tsdb.getTransformation(trans_id)["Value"].get("MaxNumberOfTasks") or 0
                if max_tasks:
                    done = world.tsdb.getTransformationTaskStats(trans_id)["Value"].get("Done", 0)
                    parts.append(min(1.0, done / max_tasks))
                else:
                    parts.append(files.get("Processed", 0) / files["Total"] if files.get("Total") else 0.0)
        return sum(parts) / len(parts) if parts else 0.0

    return share


def _progress_bar(duration: float):
    """Sim-days against the expected stop: run.duration, or, once `work_done` is set, now / share of work done."""
    from tqdm import tqdm

    class _Bar(tqdm):
        work_done: Callable[[], float] | None = None

        def update_to(self, now: float) -> None:
            done = self.work_done() if self.work_done else 0.0
            if done > 0.02:
                self.total = min(duration, now / done) / 86400.0
            self.update(now / 86400.0 - self.n)

    return _Bar(total=duration / 86400.0, unit="sim-day", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} sim-days [{elapsed}<{remaining}]", leave=False)
