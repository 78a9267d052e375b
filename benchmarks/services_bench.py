"""One benchmark run of the service layer: the benchmark scenario of run_benchmarks.py at N jobs, optionally
with `dirac.service_model` set (flow or exact), in this process. Usage:

    PYTHONPATH=<tree> python benchmarks/services_bench.py <tree> 20000 [flow|exact]

Run it alternately on two trees (e.g. a worktree of the commit before and after a change) so both see the same
machine load; compare run_cpu_s (process CPU time of World.run), the figure to trust on a shared machine.
"""
import json, sys, yaml
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import run_benchmarks as rb
model = sys.argv[3] if len(sys.argv) > 3 else None
if model:
    orig = rb.scenario_dict
    def patched(jobs, event_log=True):
        d = orig(jobs, event_log); d.setdefault("dirac", {})["service_model"] = model; return d
    rb.scenario_dict = patched
r = rb.measure(int(sys.argv[2]), True, False)
print(json.dumps({"tree": sys.argv[1].split("/")[-1], "model": model, **{k: round(r[k], 3) if isinstance(r[k], float) else r[k] for k in ("jobs", "run_s", "run_cpu_s", "jobs_per_cpu_s", "simpy_events_per_job", "peak_rss_mb", "kb_per_job")}}))
