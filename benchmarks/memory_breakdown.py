"""Where the memory per finished job goes: tracemalloc, two runs, slope per allocation site.

    python benchmarks/memory_breakdown.py                       # 1e4 and 3e4 jobs on 400 slots
    python benchmarks/memory_breakdown.py --sizes 20000 60000 --slots 1000 --top 30
    python benchmarks/memory_breakdown.py --sizes 20000 60000 --slots 1000 --rss 4000   # RSS split, untraced
    python benchmarks/memory_breakdown.py --sizes 20000 0 --slots 400 --in-flight --at 24  # per job in flight

Both runs use the synthetic scenario of `run_benchmarks.py` with the same slots, so the jobs in
flight are the same and the difference between the two runs is what the extra finished jobs keep.
Each run happens in its own subprocess under tracemalloc (two frames per allocation, so that a timeout
made in twin/engine/alarm.py is charged to its caller: `_site`); a snapshot is
taken when the run ends (the event log closed, before the summary). Allocations are grouped by
owner (the module that allocated them) and by line; the report gives bytes per finished job for
each, i.e. (bytes in run 2 - bytes in run 1) / (final jobs in run 2 - final jobs in run 1).

`--in-flight`: one traced run, snapshotted after the build and mid-run (`--at` simulated hours);
what it holds then beyond the built model, less its finished jobs x `--per-finished`, per job in flight,
and split: what the running jobs' slots allocate (pilots, JobAgent records, holds, heartbeat streams,
simpy's calendar entries: `SLOT_CODE`) per running job, the rest per job in flight. simpy's calendar list
itself is left in the rest: its length is a high-water mark of the run, not of the slots now.

Allocation sites name where an object was created, not who holds it: an LFN built in the WMS upload
code and kept by the catalog is counted under the WMS. Read the lines, not only the owners.
"""

from __future__ import annotations

import argparse
import ast
import json
import linecache
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import checkout  # noqa: E402

checkout.use()


def owner(filename: str) -> str:
    """`twin/dirac/catalog.py` for files of the twin, the package name for libraries, else the file."""
    path = Path(filename)
    parts = path.parts
    if "twin" in parts and "site-packages" not in parts:
        return "/".join(parts[parts.index("twin"):])
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    return path.name


#: Code whose allocations belong to running jobs' slots: files (owner) or functions (owner:qualname).
#: simpy's `Environment.schedule` is not: what it allocates includes freed (time, priority, id, event) tuples that
#: CPython keeps on its tuple free list (up to 2,000), a fixed cost; the calendar entries alive (CALENDAR_ENTRIES,
#: measured with sys.getsizeof) are counted instead.
SLOT_CODE = ("twin/dirac/wms/jobagent.py", "twin/grid/site.py", "twin/engine/wakeup.py", "twin/engine/trampoline.py",
             "simpy", "twin/dirac/services.py:ServiceLayer.start_stream", "twin/dirac/wms/system.py:WorkloadManagement._pilot_started",
             "twin/dirac/wms/system.py:WorkloadManagement._job_agent",
             "twin/dirac/wms/system.py:WorkloadManagement._run_job", "twin/dirac/wms/system.py:WorkloadManagement._hold")
_SPANS: dict[str, list[tuple[int, int, str]]] = {}


def function_at(filename: str, lineno: int) -> str:
    """The innermost function (or class) around a line of a source file, as Class.method; "" outside any."""
    spans = _SPANS.get(filename)
    if spans is None:
        spans = _SPANS[filename] = []
        try:
            tree = ast.parse(Path(filename).read_text())
        except (OSError, SyntaxError, ValueError):
            tree = None

        def walk(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = f"{prefix}{child.name}"
                    spans.append((child.lineno, child.end_lineno or child.lineno, name))
                    walk(child, f"{name}.")
                else:
                    walk(child, prefix)

        if tree is not None:
            walk(tree, "")
    inner = [(start, name) for start, end, name in spans if start <= lineno <= end]
    return max(inner)[1] if inner else ""


CALENDAR_ENTRIES = "simpy calendar entries alive (sys.getsizeof)"


def is_slot_code(function_key: str) -> bool:
    """`function_key` (owner:function) is in SLOT_CODE."""
    owner_name = function_key.split(":", 1)[0]
    return function_key != "simpy:Environment.schedule" and (owner_name in SLOT_CODE or function_key in SLOT_CODE)


class _Snapshot(Exception):
    """Raised from the progress callback to stop a run once its mid-run snapshot is taken."""


#: A timeout without simpy's Timeout (twin/engine/alarm.py) is allocated there for its caller: the Alarm is
#: the caller's (a job record's sleep is slot code, a job's optimizer delay is not), the calendar tuple its
#: `heappush` makes is simpy's scheduling (counted as CALENDAR_ENTRIES, as `Environment.schedule`'s).
ALARM_FILE = "twin/engine/alarm.py"


def _site(traceback: tracemalloc.Traceback) -> tuple[str, str, int]:
    """(owner, file, line) an allocation is charged to: its innermost frame, or for an Alarm its caller."""
    frame = traceback[-1]  # with two frames traced, the innermost is last
    name = owner(frame.filename)
    if name != ALARM_FILE:
        return name, frame.filename, frame.lineno
    if "heappush(" in linecache.getline(frame.filename, frame.lineno):
        return "simpy", "", 0  # the calendar entry: `Environment.schedule`'s allocation
    caller = traceback[-2] if len(traceback) > 1 else frame
    return owner(caller.filename), caller.filename, caller.lineno


def _grouped(snap: tracemalloc.Snapshot) -> dict[str, dict[str, int]]:
    by_owner: Counter[str] = Counter()
    by_line: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for stat in snap.statistics("traceback"):
        name, filename, lineno = _site(stat.traceback)
        by_owner[name] += stat.size
        by_line[f"{name}:{lineno}"] += stat.size
        by_function[f"{name}:{function_at(filename, lineno) if filename else 'Environment.schedule'}"] += stat.size
    return {"by_owner": dict(by_owner), "by_line": dict(by_line), "by_function": dict(by_function)}


def snapshot_run(jobs: int, slots: int, at_hours: float | None = None) -> dict[str, Any]:
    """One traced run: final jobs and traced bytes per owner and per line at the end of the run, or,
    with `at_hours`, at the first progress slice past that simulated time (jobs in flight then), and
    then also right after the build ("built": the model before any job). Before a mid-run snapshot the
    event log's row buffer is written out, so that its (bounded) rows are not charged to the jobs."""
    from run_benchmarks import FINAL, load

    from twin.build import build_world

    scenario = load(jobs, True, slots)
    snaps: dict[str, tracemalloc.Snapshot] = {}
    calendar: dict[str, int] = {}  # bytes of simpy's calendar list (its array grows to the run's most entries)
    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start(2)  # an Alarm's allocation is charged to its caller (`_site`)
        world = build_world(scenario, events_path=Path(tmp) / "events.parquet")
        if at_hours is not None:
            snaps["built"] = tracemalloc.take_snapshot()
            calendar["built"], calendar["built_entries"] = _calendar_bytes(world.sim.env._queue)  # noqa: SLF001

        def mid_run(now: float) -> None:
            if at_hours is not None and now >= at_hours * 3600.0:
                world.sim.log._flush()  # noqa: SLF001 - a benchmark's look inside: rows to the file
                snaps["end"] = tracemalloc.take_snapshot()
                calendar["end"], calendar["end_entries"] = _calendar_bytes(world.sim.env._queue)  # noqa: SLF001
                raise _Snapshot

        try:
            world.run(progress=mid_run)
            world.sim.log.close()
        except _Snapshot:
            pass
        if "end" not in snaps:
            snaps["end"] = tracemalloc.take_snapshot()
        tracemalloc.stop()
    jobdb = world.wms.jobdb
    final = sum(n for status, n in jobdb.counters().items() if status in FINAL)
    return {"jobs": jobs, "slots": slots, "final_jobs": final, "in_flight": len(jobdb.jobs),
            "running": sum(jobdb.count(s) for s in ("Matched", "Running", "Completing", "Stalled")),
            "simulated_h": world.sim.now / 3600.0, "pilots": _pilots(world), **_grouped(snaps["end"]),
            "calendar_list_growth": calendar.get("end", 0) - calendar.get("built", 0),
            "calendar_entries_growth": calendar.get("end_entries", 0) - calendar.get("built_entries", 0),
            **({"built": _grouped(snaps["built"])} if "built" in snaps else {})}


def _calendar_bytes(queue: list[Any]) -> tuple[int, int]:
    """simpy's calendar: (its list, its entries: the (time, priority, id, event) tuples with their time and id)."""
    entries = sum(sys.getsizeof(entry) + sys.getsizeof(entry[0]) + sys.getsizeof(entry[2]) for entry in queue)
    return sys.getsizeof(queue), entries


def _pilots(world: Any) -> int:
    """Pilots waiting or running at the snapshot."""
    return sum(ce.waiting + ce.running for ce in world.grid.ces.values())


def slopes(a: dict[str, Any], b: dict[str, Any], key: str) -> dict[str, float]:
    """Bytes per finished job per entry of `key`, from run a to run b."""
    n = max(1, b["final_jobs"] - a["final_jobs"])
    names = set(a[key]) | set(b[key])
    return {name: (b[key].get(name, 0) - a[key].get(name, 0)) / n for name in names}


def traced_run(jobs: int, slots: int, at_hours: float | None = None) -> dict[str, Any]:
    """`snapshot_run` in a fresh subprocess (tracemalloc sees only that run)."""
    cmd = [sys.executable, __file__, "--one", str(jobs), "--slots", str(slots)]
    cmd += ["--at", str(at_hours)] if at_hours is not None else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def breakdown(n1: int, n2: int, slots: int) -> dict[str, Any]:
    a, b = runs = [traced_run(n, slots) for n in (n1, n2)]
    return {"runs": [{k: r[k] for k in ("jobs", "slots", "final_jobs")} for r in runs],
            "bytes_per_finished_job": sum(slopes(a, b, "by_owner").values()),
            "by_owner": slopes(a, b, "by_owner"), "by_line": slopes(a, b, "by_line"), "by_function": slopes(a, b, "by_function")}


def in_flight(jobs: int, slots: int, at_hours: float, per_finished: float) -> dict[str, Any]:
    """Traced bytes per job in flight: one run of `jobs` jobs on `slots` slots, snapshotted after the
    build and at `at_hours` of simulated time (mid-run, slots full, jobs waiting); what the run holds
    then beyond the built model, less its finished jobs x `per_finished`, per job in flight. A running
    job comes with its slot (pilot, JobAgent record, hold, heartbeat stream): they are in the figure, and
    per-simulated-hour samples too (read the lines). Split: what `SLOT_CODE` allocated and the calendar
    entries alive, per running job; the rest per job in flight."""
    run = traced_run(jobs, slots, at_hours)
    n = max(1, run["in_flight"])
    finished_part = run["final_jobs"] * per_finished / n
    keys = ("by_owner", "by_line", "by_function")
    grow = {key: {name: (run[key].get(name, 0) - run["built"][key].get(name, 0)) / n
                  for name in set(run[key]) | set(run["built"][key])} for key in keys}
    slot = {name: size * n for name, size in grow["by_function"].items() if is_slot_code(name) and size}
    slot[CALENDAR_ENTRIES] = run["calendar_entries_growth"]
    slot_bytes = sum(slot.values())
    total = sum(grow["by_owner"].values())
    running = max(1, run["running"])
    return {"runs": [{k: run[k] for k in ("jobs", "slots", "final_jobs", "in_flight", "running", "pilots", "simulated_h",
                                          "calendar_list_growth", "calendar_entries_growth")}],
            "bytes_per_in_flight_job": total - finished_part, "finished_part": finished_part,
            "slot_bytes_per_running_job": slot_bytes / running,
            "other_bytes_per_in_flight_job": total - finished_part - slot_bytes / n,
            "slot_functions_per_running_job": {name: size / running for name, size in slot.items()},
            **grow}


def rss_split(n1: int, n2: int, slots: int, slots3: int) -> dict[str, Any]:
    """Peak RSS of three untraced runs: (n1, slots) and (n2, slots) give bytes per finished job (same jobs
    in flight); (n1, slots3) has other jobs in flight, and what its RSS adds beyond its extra finished
    jobs, per extra job in flight, is the bytes per in-flight job, free of the run's fixed cost."""
    from run_benchmarks import run_in_subprocess

    a, b, c = (run_in_subprocess(n, True, False, slots=s) for n, s in ((n1, slots), (n2, slots), (n1, slots3)))
    per_finished = (b["peak_rss_mb"] - a["peak_rss_mb"]) * 1e6 / max(1, b["jobs_final"] - a["jobs_final"])
    extra_finished = (c["jobs_final"] - a["jobs_final"]) * per_finished
    per_in_flight = ((c["peak_rss_mb"] - a["peak_rss_mb"]) * 1e6 - extra_finished) / max(
        1, c["peak_in_flight_jobs"] - a["peak_in_flight_jobs"])
    return {"runs": [a, b, c], "bytes_per_finished_job": per_finished, "bytes_per_in_flight_job": per_in_flight}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(10_000, 30_000), metavar=("N1", "N2"))
    parser.add_argument("--slots", type=int, default=400)
    parser.add_argument("--top", type=int, default=20, help="lines to print")
    parser.add_argument("--json", type=Path, help="also write the breakdown here")
    parser.add_argument("--rss", type=int, metavar="SLOTS3", help="instead: the peak-RSS split of three untraced runs, "
                        "the third with SLOTS3 slots (bytes per finished and per in-flight job)")
    parser.add_argument("--in-flight", action="store_true", help="instead: traced bytes per job in flight, from one "
                        "run of N1 jobs on --slots slots snapshotted after the build and at --at hours")
    parser.add_argument("--at", type=float, help="simulated hours of the --in-flight snapshots (default 24)")
    parser.add_argument("--per-finished", type=float, default=100.0,
                        help="--in-flight: traced bytes per finished job, to take off the extra finished jobs")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(snapshot_run(args.one, args.slots, args.at)))
        return 0
    if args.in_flight:
        result = in_flight(args.sizes[0], args.slots, 24.0 if args.at is None else args.at, args.per_finished)
        for run in result["runs"]:
            print(f"{run['jobs']:>9,} jobs, {run['slots']:>6,} slots at {run['simulated_h']:.1f} h: "
                  f"{run['in_flight']:,} in flight ({run['running']:,} running), {run['pilots']:,} pilots, "
                  f"{run['final_jobs']:,} final")
        print(f"traced bytes per in-flight job (running ones with their slot): {result['bytes_per_in_flight_job']:.0f} "
              f"(after {result['finished_part']:.0f} B per in-flight job for the finished jobs)")
        print(f"split: {result['slot_bytes_per_running_job']:.0f} B per running job for its slot (SLOT_CODE), "
              f"{result['other_bytes_per_in_flight_job']:.0f} B per job in flight for the rest "
              f"(simpy's calendar list grew {result['runs'][0]['calendar_list_growth']:,} B: a high-water mark, in the rest)")
        print("\nslot code, B per running job:")
        for name, size in sorted(result["slot_functions_per_running_job"].items(), key=lambda kv: -abs(kv[1]))[:args.top]:
            print(f"  {size:8.1f}  {name}")
        _print_top(result, args.top)
        _save(args.json, result)
        return 0
    if args.rss:
        split = rss_split(*args.sizes, args.slots, args.rss)
        for run in split["runs"]:
            print(f"{run['jobs']:>9,} jobs, {run['slots']:>6,} slots: peak RSS {run['peak_rss_mb']:.0f} MB, "
                  f"{run['jobs_final']:,} final, {run['peak_in_flight_jobs']:,} in flight at peak, "
                  f"run CPU {run['run_cpu_s']:.0f} s")
        print(f"{split['bytes_per_finished_job']:.0f} B per finished job, {split['bytes_per_in_flight_job']:.0f} B per in-flight job")
        _save(args.json, split)
        return 0
    result = breakdown(*args.sizes, args.slots)
    print(f"traced bytes per finished job: {result['bytes_per_finished_job']:.0f} "
          f"(runs: {result['runs']})")
    _print_top(result, args.top)
    _save(args.json, result)
    return 0


def _save(path: Path | None, result: dict[str, Any]) -> None:
    """--json: the whole result, for the write-ups."""
    if path is not None:
        path.write_text(json.dumps(result, indent=1) + "\n")


def _print_top(result: dict[str, Any], top: int) -> None:
    print("\nby owner (B per job):")
    for name, size in sorted(result["by_owner"].items(), key=lambda kv: -abs(kv[1]))[:top]:
        print(f"  {size:8.1f}  {name}")
    print("\nby line:")
    for name, size in sorted(result["by_line"].items(), key=lambda kv: -abs(kv[1]))[:top]:
        print(f"  {size:8.1f}  {name}")
    if "by_function" in result:
        print("\nby function:")
        for name, size in sorted(result["by_function"].items(), key=lambda kv: -abs(kv[1]))[:top]:
            print(f"  {size:8.1f}  {name}")


if __name__ == "__main__":
    sys.exit(main())
