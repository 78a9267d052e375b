"""Scaling benchmark of the full twin (grid + DIRAC logic) at 10^4, 10^5 (and 10^6) jobs.

    python benchmarks/run_benchmarks.py                 # 10^4 and 10^5, profile of 10^5, sweep speed-up
    python benchmarks/run_benchmarks.py --full          # also 10^6 (long: see benchmarks/README.md)
    python benchmarks/run_benchmarks.py --sizes 10000 --no-profile --no-sweep

Synthetic scenario per size N: one MC transformation with max_tasks = N on 4 sites whose slots
scale with N (N/50 slots: each slot runs ~50 jobs of ~2 h, so every size simulates ~4-5 days and
the growth curve isolates the per-job cost); agent batch sizes (tasks per loop, MC extension,
pilots per cycle) are raised so DIRAC's throttles never starve the slots. Every size runs in a
fresh subprocess, so peak RSS (getrusage) is that run's alone. Measured per size: wall time
(build / run / summary), simulated jobs per wall second, event-log rows and simpy events per
second (simpy's own event counter, read once at the end, costs nothing), peak RSS, peak
in-flight jobs (created, not yet final), and memory per job and per in-flight job; optionally
tracemalloc's peak (slow: --tracemalloc). Results: benchmarks/results/scaling.{json,csv,md,png}.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
JOBS_PER_SLOT = 50
JOB_HS06S = 72000.0  # 2 h on a 10 HS06 core
SITES = ("BENCH.A.org", "BENCH.B.org", "BENCH.C.org", "BENCH.D.org")
FINAL = {"Done", "Failed", "Killed"}


# ---------------------------------------------------------------- the synthetic scenario
def scenario_dict(jobs: int, event_log: bool = True) -> dict[str, Any]:
    """One MC step of `jobs` tasks on 4 sites with jobs/50 slots in all (see the module docstring)."""
    slots = max(40, jobs // JOBS_PER_SLOT)
    per_site = slots // len(SITES)
    rate = slots / (JOB_HS06S / 10.0)  # jobs finishing per simulated second at saturation
    batch = max(50, int(rate * 120 * 2))  # per 120 s agent cycle, 2x headroom
    sites = [{"name": s, "ces": [{"name": f"ce{i}", "slots": per_site, "hs06_per_core": 10,
                                  "max_waiting_pilots": max(10, per_site // 10)}], "ses": [f"SE{i}"]}
             for i, s in enumerate(SITES)]
    return {
        "name": f"bench-{jobs}",
        "run": {"duration": "60d", "seed": 1, "sample_interval": "2h", "event_log": event_log},
        "topology": {
            "sites": sites,
            "storage": [{"name": f"SE{i}", "site": s, "capacity_tb": 100000} for i, s in enumerate(SITES)],
            "servers": [{"name": "dirac-wms", "cores": 64, "ram_gb": 128,
                         "services": ["JobManager", "Matcher", "JobStateUpdate", "JobMonitoring"]},
                        {"name": "dirac-ts", "cores": 32, "ram_gb": 64,
                         "services": ["TransformationManager", "ReqManager", "FileCatalog"]}],
            "databases": [{"name": "JobDB", "server": "dirac-wms", "connections": 100},
                          {"name": "TransformationDB", "server": "dirac-ts", "connections": 100},
                          {"name": "FileCatalogDB", "server": "dirac-ts", "connections": 100}],
        },
        "workload": {"productions": [{"name": "bench", "steps": [{
            "name": "MCSimulation", "type": "MCSimulation", "max_tasks": jobs,
            "output_metadata": {"MCCampaign": "Bench", "particle": "proton", "data_level": -1, "outputType": "Data"},
            "job": {"cpu_hs06s": JOB_HS06S, "cpu_cv": 0.2, "output_size_mb": 100, "output_data_type": "simtel",
                    "failure_prob": 0.02}}]}]},
        "dirac": {"production_outputs": {"simtel": [f"SE{i}" for i in range(len(SITES))]},
                  "tasks_per_loop": batch, "mc_tasks_per_iteration": batch,
                  "mc_max_waiting_jobs": max(1000, slots // 2), "max_pilots_per_cycle": max(100, batch)},
    }


def load(jobs: int, event_log: bool = True):
    from twin.scenario.loader import load_scenario

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(scenario_dict(jobs, event_log), f, sort_keys=False)
    try:
        return load_scenario(Path(f.name))
    finally:
        os.unlink(f.name)


# ---------------------------------------------------------------- one measurement (in a subprocess)
def measure(jobs: int, event_log: bool, trace: bool) -> dict[str, Any]:
    """Build, run and summarise one synthetic scenario; all timings and memory figures."""
    import tracemalloc

    from twin.build import build_world
    from twin.summary import summarize

    scenario = load(jobs, event_log)
    rss0 = _rss_bytes()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    world = build_world(scenario)
    t1, c1 = time.perf_counter(), time.process_time()
    world.run()
    t2, c2 = time.perf_counter(), time.process_time()
    summary = summarize(world)
    t3 = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    simpy_events = next(world.sim.env._eid)  # simpy numbers every scheduled event from this counter
    in_flight = peak_in_flight(world)
    rss = _rss_bytes()
    done = summary["jobs"]["by_status"]
    run_s = t2 - t1
    return {
        "jobs_requested": jobs, "event_log": event_log, "jobs": summary["jobs"]["total"], "jobs_done": done.get("Done", 0),
        "complete": summary["plan"]["complete"], "simulated_days": summary["simulated_time"] / 86400.0,
        "slots": sum(ce.slots for s in scenario.topology.sites for ce in s.ces),
        "build_s": t1 - t0, "run_s": run_s, "run_cpu_s": c2 - c1, "summary_s": t3 - t2, "wall_s": t3 - t0,
        "jobs_per_s": summary["jobs"]["total"] / run_s, "jobs_per_cpu_s": summary["jobs"]["total"] / (c2 - c1), "log_rows": summary["events"],
        "log_rows_per_s": summary["events"] / run_s, "simpy_events": simpy_events, "simpy_events_per_s": simpy_events / run_s,
        "simpy_events_per_job": simpy_events / max(1, summary["jobs"]["total"]),
        "peak_rss_mb": rss / 1e6, "rss_growth_mb": (rss - rss0) / 1e6, "peak_in_flight_jobs": in_flight,
        "kb_per_job": (rss - rss0) / 1e3 / max(1, summary["jobs"]["total"]),
        "kb_per_in_flight_job": (rss - rss0) / 1e3 / max(1, in_flight),
        "tracemalloc_peak_mb": traced / 1e6 if traced is not None else None,
        "tracemalloc_kb_per_job": traced / 1e3 / max(1, summary["jobs"]["total"]) if traced is not None else None,
    }


def peak_in_flight(world) -> int:
    """Most jobs alive at once (created, not yet Done/Failed/Killed), from the JobDB's history.

    Read from the event log when there is one; without it, the most jobs Waiting, Staging or
    Running at a metric sample (a lower bound: Received/Checking/Matched are not sampled)."""
    log = world.sim.log
    if len(log):
        alive = peak = 0
        for kind, state in zip(log._kind, log._state):
            if kind != "job.status":
                continue
            if state == "Received":
                alive += 1
                peak = max(peak, alive)
            elif state in FINAL:
                alive -= 1
        return peak
    metrics = world.sim.metrics.to_frame()
    return int((metrics["wms.jobs_waiting"] + metrics["wms.jobs_staging"] + metrics["wms.jobs_running"]).max())


def _rss_bytes() -> int:
    """Peak resident set of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_in_subprocess(jobs: int, event_log: bool, trace: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(jobs)]
    cmd += [] if event_log else ["--no-event-log"]
    cmd += ["--tracemalloc"] if trace else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- profile
def profile(jobs: int, top: int = 30) -> str:
    """cProfile of one run (build + run + summary): top functions by own time and by cumulative time."""
    from twin.runner import simulate

    scenario = load(jobs)
    prof = cProfile.Profile()
    prof.enable()
    simulate(scenario)
    prof.disable()
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text).strip_dirs()
    text.write(f"# cProfile of the {jobs}-job synthetic run (profiling overhead included)\n\n## by own time\n")
    stats.sort_stats("tottime").print_stats(top)
    text.write("\n## by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(top)
    return text.getvalue()


# ---------------------------------------------------------------- sweep speed-up
def sweep_speedup(jobs: int, runs: int) -> dict[str, Any]:
    """The same sweep (`runs` seeds of one scenario) on a LocalCluster of 1 then 2 workers."""
    from twin.sweep import run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(scenario_dict(jobs), sort_keys=False))
        out: dict[str, Any] = {"jobs_per_run": jobs, "runs": runs, "load_average_before": os.getloadavg()[0]}
        for workers in (1, 2):
            started = time.perf_counter()
            result = run_sweep(path, [], runs, Path(tmp) / f"w{workers}", workers=workers, progress=False, report=False)
            out[f"wall_s_{workers}"] = time.perf_counter() - started
            out[f"sum_run_s_{workers}"] = float(result.runs["wall_s"].sum())
        out["speedup"] = out["wall_s_1"] / out["wall_s_2"]
        return out


# ---------------------------------------------------------------- reporting
def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    import simpy

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "simpy": simpy.__version__,
            "platform": f"{platform.system()} {platform.release()}", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def growth_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Wall time and RSS growth against jobs, log-log, with a linear reference through the first point."""
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.get("event_log", True) and not r.get("tracemalloc_run")]
    xs = [r["jobs"] for r in rows]
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "run_s", "run wall time (s)"), (axes[1], "rss_growth_mb", "RSS growth (MB)")):
        ys = [r[key] for r in rows]
        ax.loglog(xs, ys, "o-", label="measured")
        extra = [r for r in rows if r.get("extrapolated")]
        if extra:
            ax.loglog([r["jobs"] for r in extra], [r[key] for r in extra], "x", color="red", ms=10, label="extrapolated")
        if xs:
            ax.loglog(xs, [ys[0] * x / xs[0] for x in xs], "--", color="grey", label="linear from first point")
        ax.set_xlabel("jobs")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of this invocation replace earlier rows of the same kind (size, event log, tracemalloc)."""
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return r["jobs_requested"], r.get("event_log", True), bool(r.get("tracemalloc_run")), bool(r.get("extrapolated"))

    fresh = {key(r) for r in new}
    measured = {r["jobs_requested"] for r in new if not r.get("extrapolated")}
    kept = [r for r in old if key(r) not in fresh and not (r.get("extrapolated") and r["jobs_requested"] in measured)]
    return sorted(kept + new, key=lambda r: (bool(r.get("tracemalloc_run")), not r.get("event_log", True), r["jobs_requested"]))


def write_results(rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    """Update scaling.json with what this invocation measured (other parts are kept), then the CSV and plot."""
    import pandas as pd

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "scaling.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    merged = [r for r in merge_rows(data.get("sizes", []), rows) if not r.get("extrapolated")]
    guess = extrapolate(merged, 1_000_000)  # only when 10^6 was never measured
    data.update({"machine": machine(), **extra, "sizes": merged + ([guess] if guess else [])})
    path.write_text(json.dumps(data, indent=2) + "\n")
    if data.get("sizes"):
        pd.DataFrame(data["sizes"]).to_csv(RESULTS / "scaling.csv", index=False)
        growth_plot(data["sizes"], RESULTS / "scaling.png")


def extrapolate(rows: list[dict[str, Any]], target: int) -> dict[str, Any] | None:
    """Linear-in-N extrapolation from the largest measured size (labelled as such)."""
    measured = [r for r in rows if r.get("event_log", True) and not r.get("extrapolated") and not r.get("tracemalloc_run")]
    if not measured or any(r["jobs_requested"] == target for r in measured):
        return None
    last = max(measured, key=lambda r: r["jobs"])
    k = target / last["jobs"]
    return {"jobs_requested": target, "jobs": target, "extrapolated": True, "event_log": True,
            "run_s": last["run_s"] * k, "wall_s": last["wall_s"] * k, "jobs_per_s": last["jobs_per_s"],
            "run_cpu_s": last["run_cpu_s"] * k, "jobs_per_cpu_s": last["jobs_per_cpu_s"],
            "rss_growth_mb": last["rss_growth_mb"] * k, "kb_per_job": last["kb_per_job"],
            "peak_in_flight_jobs": last["peak_in_flight_jobs"] * k, "kb_per_in_flight_job": last["kb_per_in_flight_job"]}


# ---------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*",
                        help="job counts (default 10^4 10^5, plus 10^6 with --full); '--sizes' alone: none (e.g. sweep only)")
    parser.add_argument("--full", action="store_true", help="include 10^6 jobs")
    parser.add_argument("--no-event-log-size", type=int, default=100_000, help="also measure this size with run.event_log off (0: skip)")
    parser.add_argument("--tracemalloc-size", type=int, default=10_000,
                        help="also run this size under tracemalloc for its allocation peak (2-3x slower; 0: skip)")
    parser.add_argument("--profile-size", type=int, default=100_000, help="cProfile this size (0: skip)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--sweep-jobs", type=int, default=3000)
    parser.add_argument("--sweep-runs", type=int, default=6)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-event-log", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, not args.no_event_log, args.tracemalloc)))
        return 0
    sizes = [] if args.sizes == [] else args.sizes or ([10_000, 100_000] + ([1_000_000] if args.full else []))
    rows = []
    for n in sizes:
        rows.append(run_in_subprocess(n, True, False))
        _say(rows[-1])
    if args.tracemalloc_size and sizes:
        rows.append({**run_in_subprocess(args.tracemalloc_size, True, True), "tracemalloc_run": True})
        _say(rows[-1])
    if args.no_event_log_size and sizes:
        rows.append(run_in_subprocess(args.no_event_log_size, False, False))
        _say(rows[-1])
    extra: dict[str, Any] = {}
    if not args.no_profile and args.profile_size:
        (RESULTS / f"profile_{args.profile_size}.txt").write_text(profile(args.profile_size))
    if not args.no_sweep:
        extra["sweep_speedup"] = sweep_speedup(args.sweep_jobs, args.sweep_runs)
        print(f"sweep speed-up 1 -> 2 workers: {extra['sweep_speedup']['speedup']:.2f}x", flush=True)
    write_results(rows, extra)
    print(f"written {RESULTS}/scaling.json, scaling.csv, scaling.png")
    return 0


def _say(row: dict[str, Any]) -> None:
    print(f"{row['jobs']:>9,} jobs (event log {'on' if row['event_log'] else 'off'}"
          f"{', tracemalloc' if row.get('tracemalloc_peak_mb') else ''}): run {row['run_s']:.1f} s "
          f"(CPU {row['run_cpu_s']:.1f} s), {row['jobs_per_s']:,.0f} jobs/s, {row['simpy_events_per_s']:,.0f} simpy events/s, "
          f"RSS +{row['rss_growth_mb']:.0f} MB, {row['kb_per_job']:.2f} KB/job, "
          f"{row['kb_per_in_flight_job']:.2f} KB/in-flight job", flush=True)


if __name__ == "__main__":
    sys.exit(main())
