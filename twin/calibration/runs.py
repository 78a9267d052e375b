"""Batches of twin runs for calibration and sensitivity: scenario variants x seeds on dask.

Reuses the sweep's unit of work (`twin.sweep.RunSpec`, one scenario + seed per run, errors kept as
rows) but keeps ONE dask cluster open across batches: an optimiser asks for a few trials at a time,
and starting a LocalCluster per batch would cost more than the runs of a small scenario.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from typing import Any, Callable, Sequence

from twin.errors import TwinError
from twin.scenario.schema import Scenario
from twin.sweep import STATUS_ERROR, STATUS_OK, RunSpec

Job = tuple[RunSpec, Scenario]


def run_values(spec: RunSpec, scenario: Scenario) -> dict[str, Any]:
    """One run reduced to what calibration and sensitivity read: every observed-column value + verdict metrics."""
    from twin.calibration.observed import twin_values
    from twin.runner import simulate

    started = time.perf_counter()
    try:
        result = simulate(scenario)
        s = result.summary
        plan, jobs, bottleneck = s.get("plan", {}), s.get("jobs", {}), s.get("bottleneck", {})
        row = {
            "status": STATUS_OK, "error": "",
            "values": {f"{key}|{column}": v for (key, column), v in twin_values(s, result.metrics, scenario).items()},
            "finished_at_d": math.nan if plan.get("finished_at") is None else plan["finished_at"] / 86400.0,
            "deadline_met": plan.get("deadline_met"),
            "complete": bool(plan.get("complete")),
            "cpu_used_hs06_h": jobs.get("cpu_used_hs06_hours", 0.0),
            "cpu_wasted_hs06_h": jobs.get("cpu_wasted_hs06_hours", 0.0),
            "bottleneck": f"{bottleneck.get('kind', '')}: {bottleneck.get('name', '')}".strip(": "),
        }
    except Exception as exc:  # noqa: BLE001 - one failed run must not lose the study; reported in its row
        row = {"status": STATUS_ERROR, "error": f"{type(exc).__name__}: {exc}"[:500], "values": {}}
        logging.getLogger(__name__).debug("run %d failed:\n%s", spec.index, traceback.format_exc())
    return {"run": spec.index, "seed": spec.seed, **row, "wall_s": time.perf_counter() - started}


class RunPool:
    """In-process (workers=0) or a dask LocalCluster / scheduler kept open for many batches."""

    def __init__(self, workers: int | None, scheduler: str | None = None) -> None:
        if workers is not None and workers < 0:
            raise TwinError(f"--workers {workers}: expected 0 (in-process) or a positive number of workers")
        self.workers, self.scheduler = workers, scheduler
        self.client: Any = None
        self.cluster: Any = None

    @property
    def parallel(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    @property
    def where(self) -> str:
        return self.scheduler or ("in-process" if self.client is None else f"LocalCluster x{self.parallel}")

    def __enter__(self) -> "RunPool":
        if self.scheduler is None and self.workers == 0:
            return self
        from dask.distributed import Client, LocalCluster

        if self.scheduler is None:
            self.cluster = LocalCluster(n_workers=self.workers or (os.cpu_count() or 1), threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
        try:
            self.client = Client(self.cluster if self.cluster is not None else self.scheduler, timeout="10s")
        except OSError as exc:
            self.close()
            raise TwinError(f"--scheduler {self.scheduler}: cannot connect ({exc})") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def run(self, jobs: Sequence[Job], tick: Callable[[], None] = lambda: None,
            fn: Callable[[RunSpec, Scenario], dict[str, Any]] = run_values) -> list[dict[str, Any]]:
        """Rows in run-index order (whatever order the workers finish in), so results are deterministic."""
        rows: list[dict[str, Any]] = []
        if self.client is None:
            for spec, scenario in jobs:
                rows.append(fn(spec, scenario))
                tick()
        else:
            from dask.distributed import as_completed

            futures = [self.client.submit(fn, spec, scenario, pure=False, key=f"twin-calib-{spec.index}-{time.monotonic_ns()}")
                       for spec, scenario in jobs]
            for future in as_completed(futures):
                rows.append(future.result())
                tick()
        return sorted(rows, key=lambda r: r["run"])


def scaled(scenario: Scenario, factor: float) -> Scenario:
    """The scenario at `factor` of its size: MC tasks, initial files and CE slots (at least 1 each).

    Ratios the calibration compares (tasks per file, processed %) are size-free; the grid shrinks with
    the work so that queueing (and with it black-hole exposure) stays comparable.
    """
    if factor == 1.0:
        return scenario
    if not 0 < factor <= 1:
        raise TwinError(f"--scale {factor}: expected 0 < scale <= 1")
    out = scenario.model_copy(deep=True)
    for production in out.workload.productions:
        for step in production.steps:
            if step.max_tasks:
                step.max_tasks = max(1, round(step.max_tasks * factor))
                _scaled_provenance(out, f"workload.productions[{production.name}].steps[{step.name}].max_tasks", factor)
    for data in out.workload.initial_data:
        data.count = max(1, round(data.count * factor))
        _scaled_provenance(out, f"workload.initial_data[{data.name}].count", factor)
    for site in out.topology.sites:
        for ce in site.ces:
            if ce.slots:
                ce.slots = max(1, round(ce.slots * factor))
                _scaled_provenance(out, f"topology.sites[{site.name}].ces[{ce.name}].slots", factor)
            ce.max_waiting_pilots = max(1, round(ce.max_waiting_pilots * factor))
    out.description = f"{out.description} [run at {factor:g} of its size]".strip()
    return out


def _scaled_provenance(scenario: Scenario, key: str, factor: float) -> None:
    """A scaled value no longer is what its provenance quotes (e.g. an observed file count): say so."""
    if key in scenario.provenance:
        scenario.provenance[key] = f"derived: {factor:g} x the scenario's value (--scale); was {scenario.provenance[key]}"
