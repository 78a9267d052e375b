"""Scaling benchmark of the full twin (grid + DIRAC logic) at 10^4, 10^5 (and 10^6, 10^7) jobs,
side by side with a pure-Python reference loop of the same job count run in the same invocation.

    python benchmarks/run_benchmarks.py                 # 10^4 and 10^5, memory split, profile of 10^5, sweep speed-up
    python benchmarks/run_benchmarks.py --full          # also 10^6 (long: see benchmarks/README.md)
    python benchmarks/run_benchmarks.py --sizes 10000 --no-profile --no-sweep --no-memory-split

Synthetic scenario per size N: one MC transformation with max_tasks = N on 4 sites whose slots
scale with N (N/50 slots: each slot runs ~50 jobs of ~2 h, so every size simulates ~4-5 days and
the growth curve isolates the per-job cost); agent batch sizes (tasks per loop, MC extension,
pilots per cycle) are raised so DIRAC's throttles never starve the slots. Every size runs in a
fresh subprocess, so peak RSS (getrusage) is that run's alone. Measured per size: wall time
(build / run / summary), simulated jobs per wall second, event-log rows and simpy events per
second (simpy's own event counter, read once at the end, costs nothing), peak RSS, peak
in-flight jobs (created, not yet final), and memory per job and per in-flight job; optionally
tracemalloc's peak (slow: --tracemalloc). The event log streams to a temporary events.parquet
as in `twin run`.

Reference loop: `reference_loop(N, slots)` is a minimal job-level discrete-event simulation in
pure Python (heap calendar, FIFO queue, slots, seeded draws, 2% failures resubmitted, one log row
per state change, counters): what one CPython core does per job with no DIRAC logic at all. It
runs in its own subprocess right after the twin at every size, so the twin/reference ratio
survives a noisy, shared machine where absolute jobs/s do not.

Memory split: bytes per finished job = slope of peak RSS between two runs with the same slots
(same jobs in flight) and different job counts; bytes per in-flight job = (RSS growth - finished
jobs x that slope) / peak in-flight jobs. Results: benchmarks/results/scaling.{json,csv,md,png}.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import heapq
import json
import os
import random
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import yaml

import checkout

checkout.use()
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
JOBS_PER_SLOT = 50
JOB_HS06S = 72000.0  # 2 h on a 10 HS06 core
SITES = ("BENCH.A.org", "BENCH.B.org", "BENCH.C.org", "BENCH.D.org")
FINAL = {"Done", "Failed", "Killed"}


# ---------------------------------------------------------------- the synthetic scenario
def bench_slots(jobs: int) -> int:
    return max(40, jobs // JOBS_PER_SLOT)


def scenario_dict(jobs: int, event_log: bool = True, slots: int | None = None) -> dict[str, Any]:
    """One MC step of `jobs` tasks on 4 sites with jobs/50 slots in all (see the module docstring)."""
    slots = slots or bench_slots(jobs)
    per_site = slots // len(SITES)
    rate = slots / (JOB_HS06S / 10.0)  # jobs finishing per simulated second at saturation
    batch = max(50, int(rate * 120 * 2))  # per 120 s agent cycle, 2x headroom
    sites = [{"name": s, "ces": [{"name": f"ce{i}", "slots": per_site, "hs06_per_core": 10,
                                  "max_waiting_pilots": max(10, per_site // 10)}], "ses": [f"SE{i}"]}
             for i, s in enumerate(SITES)]
    return {
        "name": f"bench-{jobs}",
        "run": {"duration": f"{max(60, 2 * jobs // slots // 12)}d", "seed": 1, "sample_interval": "2h", "event_log": event_log},
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


def load(jobs: int, event_log: bool = True, slots: int | None = None):
    from twin.scenario.loader import load_scenario

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(scenario_dict(jobs, event_log, slots), f, sort_keys=False)
    try:
        return load_scenario(Path(f.name))
    finally:
        os.unlink(f.name)


# ---------------------------------------------------------------- one measurement (in a subprocess)
def measure(jobs: int, event_log: bool, trace: bool, slots: int | None = None) -> dict[str, Any]:
    """Build, run and summarise one synthetic scenario; all timings and memory figures."""
    import tracemalloc

    from twin._native import compiled_modules
    from twin.build import build_world
    from twin.summary import summarize

    scenario = load(jobs, event_log, slots)
    tmp = tempfile.TemporaryDirectory()
    events = Path(tmp.name) / "events.parquet"
    rss0 = _rss_bytes()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    world = build_world(scenario, events_path=events)
    t1, c1 = time.perf_counter(), time.process_time()
    world.run()
    world.sim.log.close()
    t2, c2 = time.perf_counter(), time.process_time()
    rss = _rss_bytes()  # peak of the run (the summary and the in-flight count below read the log file)
    summary = summarize(world)
    t3 = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    simpy_events = next(world.sim.env._eid)  # simpy numbers every scheduled event from this counter
    in_flight = peak_in_flight(world)
    tmp.cleanup()
    done = summary["jobs"]["by_status"]
    run_s = t2 - t1
    return {
        "jobs_requested": jobs, "event_log": event_log, "jobs": summary["jobs"]["total"], "jobs_done": done.get("Done", 0),
        "jobs_final": sum(n for status, n in done.items() if status in FINAL),
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
        "compiled_modules": len(compiled_modules()),  # 0: pure Python; else tools/native.py build ran in this checkout
    }


def peak_in_flight(world) -> int:
    """Most jobs alive at once (created, not yet Done/Failed/Killed), from the JobDB's history.

    Read from the event log when there is one; without it, the most jobs Waiting, Staging or
    Running at a metric sample (a lower bound: Received/Checking/Matched are not sampled)."""
    log = world.sim.log
    if len(log):
        alive = peak = 0
        for chunk in log.chunks({"job.status": ["Received", *FINAL]}, columns=("state", "detail")):
            state = chunk["state"].astype(str).to_numpy()
            new = (state == "Received") & (chunk["detail"].astype(str).to_numpy() == "Job accepted")
            delta = new.astype(int) - (state != "Received").astype(int)
            running = alive + delta.cumsum()
            peak = max(peak, int(running.max()) if len(running) else peak)
            alive = int(running[-1]) if len(running) else alive
        return peak
    metrics = world.sim.metrics.to_frame()
    return int((metrics["wms.jobs_waiting"] + metrics["wms.jobs_staging"] + metrics["wms.jobs_running"]).max())


def _rss_bytes() -> int:
    """Peak resident set of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_in_subprocess(jobs: int, event_log: bool, trace: bool, slots: int | None = None, reference: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(jobs)]
    cmd += [] if event_log else ["--no-event-log"]
    cmd += ["--tracemalloc"] if trace else []
    cmd += ["--slots", str(slots)] if slots else []
    cmd += ["--reference"] if reference else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the pure-Python reference
def reference_loop(jobs: int, slots: int, seed: int = 1, failure_prob: float = 0.02) -> dict[str, Any]:
    """A minimal job-level DES in pure Python, the yardstick for the twin's cost per job.

    Jobs are submitted in batches, queue FIFO, start on a free slot, run a lognormal time (heap
    calendar), and end Done or Failed (failures resubmitted until `jobs` are Done). Each state
    change updates a per-status counter and appends a log row (flushed every 65,536 rows, as
    the twin's log is). No DIRAC logic, no services, no simpy: the floor a CPython core sets."""
    rng = random.Random(seed)
    calendar: list[tuple[float, int, int]] = []
    queue: deque[int] = deque()
    status: dict[int, str] = {}
    counts: Counter[str] = Counter()
    rows: list[tuple[float, int, str]] = []
    free, created, done, now = slots, 0, 0, 0.0

    def set_status(job: int, new: str) -> None:
        old = status.get(job)
        if old is not None:
            counts[old] -= 1
        counts[new] += 1
        if new in FINAL:
            status.pop(job, None)
        else:
            status[job] = new
        rows.append((now, job, new))
        if len(rows) >= 65536:
            rows.clear()

    def submit(n: int) -> None:
        nonlocal created
        for _ in range(n):
            created += 1
            set_status(created, "Received")
            set_status(created, "Waiting")
            queue.append(created)

    submit(min(jobs, 2 * slots))
    started, cpu = time.perf_counter(), time.process_time()
    while queue or calendar:
        while free and queue:
            job = queue.popleft()
            free -= 1
            set_status(job, "Running")
            heapq.heappush(calendar, (now + rng.lognormvariate(8.86, 0.2), job, 0))
        now, job, _ = heapq.heappop(calendar)
        free += 1
        if rng.random() < failure_prob:
            set_status(job, "Failed")
        else:
            set_status(job, "Done")
            done += 1
        pending = jobs - done - len(status)
        if pending > 0 and len(queue) < slots:
            submit(min(pending, slots))
    run_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return {"reference_jobs": created, "reference_run_s": run_s, "reference_cpu_s": cpu_s,
            "reference_jobs_per_s": created / run_s, "reference_jobs_per_cpu_s": created / cpu_s}


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
    """The same sweep (`runs` seeds of one scenario) on LocalClusters of 1 and 2 worker processes,
    each cluster started (and warmed by one tiny task) before the clock starts; both orders
    (1 -> 2, then 2 -> 1), so a machine getting busier or quieter shows as a disagreement."""
    from dask.distributed import Client, LocalCluster

    from twin.sweep import run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(scenario_dict(jobs), sort_keys=False))
        out: dict[str, Any] = {"jobs_per_run": jobs, "runs": runs, "load_average_before": os.getloadavg()[0], "orders": []}
        for order in ((1, 2), (2, 1)):
            walls: dict[int, float] = {}
            for workers in order:
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                        Client(cluster) as client:
                    client.submit(sum, [1, 2]).result()
                    started = time.perf_counter()
                    run_sweep(path, [], runs, Path(tmp) / f"w{workers}-{order[0]}", scheduler=cluster.scheduler_address,
                              progress=False, report=False)
                    walls[workers] = time.perf_counter() - started
            out["orders"].append({"order": f"{order[0]}->{order[1]}", "wall_s_1": walls[1], "wall_s_2": walls[2],
                                  "speedup": walls[1] / walls[2]})
        out["speedup"] = sum(o["speedup"] for o in out["orders"]) / len(out["orders"])
        out["load_average_after"] = os.getloadavg()[0]
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
    parser.add_argument("--no-memory-split", action="store_true", help="skip the two fixed-slot runs that split memory per finished / in-flight job")
    parser.add_argument("--split-sizes", type=int, nargs=2, default=(50_000, 200_000), metavar=("N1", "N2"))
    parser.add_argument("--split-slots", type=int, default=2_000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--slots", type=int, help="slots of every size (default: N/50 each, see bench_slots); "
                        "a fixed count keeps the jobs in flight fixed, e.g. 10^7 jobs on 20,000 slots")
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-event-log", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        if args.reference:
            print(json.dumps(reference_loop(args.one, args.slots or bench_slots(args.one))))
        else:
            print(json.dumps(measure(args.one, not args.no_event_log, args.tracemalloc, args.slots)))
        return 0
    sizes = [] if args.sizes == [] else args.sizes or ([10_000, 100_000] + ([1_000_000] if args.full else []))
    rows = []
    for n in sizes:
        row = run_in_subprocess(n, True, False, slots=args.slots)
        row.update(run_in_subprocess(n, True, False, slots=args.slots, reference=True))
        row["reference_ratio"] = row["jobs_per_cpu_s"] / row["reference_jobs_per_cpu_s"]
        rows.append(row)
        _say(rows[-1])
    if args.tracemalloc_size and sizes:
        rows.append({**run_in_subprocess(args.tracemalloc_size, True, True), "tracemalloc_run": True})
        _say(rows[-1])
    if args.no_event_log_size and sizes:
        rows.append(run_in_subprocess(args.no_event_log_size, False, False))
        _say(rows[-1])
    extra: dict[str, Any] = {}
    if not args.no_memory_split:
        extra["memory_split"] = memory_split(*args.split_sizes, args.split_slots)
        print(f"memory: {extra['memory_split']['bytes_per_finished_job']:.0f} B per finished job, "
              f"{extra['memory_split']['bytes_per_in_flight_job']:.0f} B per in-flight job", flush=True)
    if not args.no_profile and args.profile_size:
        (RESULTS / f"profile_{args.profile_size}.txt").write_text(profile(args.profile_size))
    if not args.no_sweep:
        extra["sweep_speedup"] = sweep_speedup(args.sweep_jobs, args.sweep_runs)
        print("sweep speed-up " + ", ".join(f"{o['order']}: {o['speedup']:.2f}x" for o in extra["sweep_speedup"]["orders"]), flush=True)
    write_results(rows, extra)
    print(f"written {RESULTS}/scaling.json, scaling.csv, scaling.png")
    return 0


def memory_split(n1: int, n2: int, slots: int) -> dict[str, Any]:
    """Bytes per finished job (peak-RSS slope at equal jobs in flight) and per in-flight job."""
    a, b = (run_in_subprocess(n, True, False, slots=slots) for n in (n1, n2))
    per_finished = (b["peak_rss_mb"] - a["peak_rss_mb"]) * 1e6 / max(1, b["jobs_final"] - a["jobs_final"])
    per_in_flight = (b["rss_growth_mb"] * 1e6 - b["jobs_final"] * per_finished) / max(1, b["peak_in_flight_jobs"])
    return {"slots": slots, "runs": [a, b], "bytes_per_finished_job": per_finished, "bytes_per_in_flight_job": per_in_flight}


def _say(row: dict[str, Any]) -> None:
    if "reference_jobs_per_s" in row:
        print(f"{row['jobs']:>9,} jobs: reference loop {row['reference_jobs_per_cpu_s']:,.0f} jobs per CPU s, "
              f"twin/reference {row['reference_ratio']:.3f} (CPU time)", flush=True)
    print(f"{row['jobs']:>9,} jobs (event log {'on' if row['event_log'] else 'off'}"
          f"{', tracemalloc' if row.get('tracemalloc_peak_mb') else ''}"
          f"{', %d modules compiled' % row['compiled_modules'] if row.get('compiled_modules') else ''}): run {row['run_s']:.1f} s "
          f"(CPU {row['run_cpu_s']:.1f} s), {row['jobs_per_s']:,.0f} jobs/s, {row['simpy_events_per_s']:,.0f} simpy events/s, "
          f"RSS +{row['rss_growth_mb']:.0f} MB, {row['kb_per_job']:.2f} KB/job, "
          f"{row['kb_per_in_flight_job']:.2f} KB/in-flight job", flush=True)


if __name__ == "__main__":
    sys.exit(main())
