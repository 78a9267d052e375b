"""Where the memory per finished job goes: tracemalloc, two runs, slope per allocation site.

    python benchmarks/memory_breakdown.py                       # 1e4 and 3e4 jobs on 400 slots
    python benchmarks/memory_breakdown.py --sizes 20000 60000 --slots 1000 --top 30
    python benchmarks/memory_breakdown.py --sizes 20000 60000 --slots 1000 --rss 4000   # RSS split, untraced

Both runs use the synthetic scenario of `run_benchmarks.py` with the same slots, so the jobs in
flight are the same and the difference between the two runs is what the extra finished jobs keep.
Each run happens in its own subprocess under tracemalloc (one frame per allocation); a snapshot is
taken when the run ends (the event log closed, before the summary). Allocations are grouped by
owner (the module that allocated them) and by line; the report gives bytes per finished job for
each, i.e. (bytes in run 2 - bytes in run 1) / (final jobs in run 2 - final jobs in run 1).

Allocation sites name where an object was created, not who holds it: an LFN built in the WMS upload
code and kept by the catalog is counted under the WMS. Read the lines, not only the owners.
"""

from __future__ import annotations

import argparse
import json
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


def owner(filename: str) -> str:
    """`twin/dirac/catalog.py` for files of the twin, the package name for libraries, else the file."""
    path = Path(filename)
    parts = path.parts
    if "twin" in parts and "site-packages" not in parts:
        return "/".join(parts[parts.index("twin"):])
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    return path.name


def snapshot_run(jobs: int, slots: int) -> dict[str, Any]:
    """One traced run: final jobs and traced bytes per owner and per line at the end of the run."""
    from run_benchmarks import FINAL, load

    from twin.build import build_world

    scenario = load(jobs, True, slots)
    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start(1)
        world = build_world(scenario, events_path=Path(tmp) / "events.parquet")
        world.run()
        world.sim.log.close()
        snap = tracemalloc.take_snapshot()
        tracemalloc.stop()
    by_owner: Counter[str] = Counter()
    by_line: Counter[str] = Counter()
    for stat in snap.statistics("lineno"):
        frame = stat.traceback[0]
        by_owner[owner(frame.filename)] += stat.size
        by_line[f"{owner(frame.filename)}:{frame.lineno}"] += stat.size
    final = sum(n for status, n in world.wms.jobdb.counters().items() if status in FINAL)
    return {"jobs": jobs, "slots": slots, "final_jobs": final, "by_owner": dict(by_owner), "by_line": dict(by_line)}


def slopes(a: dict[str, Any], b: dict[str, Any], key: str) -> dict[str, float]:
    """Bytes per finished job per entry of `key`, from run a to run b."""
    n = max(1, b["final_jobs"] - a["final_jobs"])
    names = set(a[key]) | set(b[key])
    return {name: (b[key].get(name, 0) - a[key].get(name, 0)) / n for name in names}


def breakdown(n1: int, n2: int, slots: int) -> dict[str, Any]:
    runs = []
    for n in (n1, n2):
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--slots", str(slots)],
                             check=True, capture_output=True, text=True, cwd=ROOT)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    a, b = runs
    return {"runs": [{k: r[k] for k in ("jobs", "slots", "final_jobs")} for r in runs],
            "bytes_per_finished_job": sum(slopes(a, b, "by_owner").values()),
            "by_owner": slopes(a, b, "by_owner"), "by_line": slopes(a, b, "by_line")}


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
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(snapshot_run(args.one, args.slots)))
        return 0
    if args.rss:
        split = rss_split(*args.sizes, args.slots, args.rss)
        for run in split["runs"]:
            print(f"{run['jobs']:>9,} jobs, {run['slots']:>6,} slots: peak RSS {run['peak_rss_mb']:.0f} MB, "
                  f"{run['jobs_final']:,} final, {run['peak_in_flight_jobs']:,} in flight at peak, "
                  f"run CPU {run['run_cpu_s']:.0f} s")
        print(f"{split['bytes_per_finished_job']:.0f} B per finished job, {split['bytes_per_in_flight_job']:.0f} B per in-flight job")
        if args.json:
            args.json.write_text(json.dumps(split, indent=1) + "\n")
        return 0
    result = breakdown(*args.sizes, args.slots)
    print(f"traced bytes per finished job: {result['bytes_per_finished_job']:.0f} "
          f"(runs: {result['runs']})")
    print("\nby owner (B per finished job):")
    for name, size in sorted(result["by_owner"].items(), key=lambda kv: -abs(kv[1]))[:args.top]:
        print(f"  {size:8.1f}  {name}")
    print("\nby line:")
    for name, size in sorted(result["by_line"].items(), key=lambda kv: -abs(kv[1]))[:args.top]:
        print(f"  {size:8.1f}  {name}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
