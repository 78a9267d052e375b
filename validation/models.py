"""Micro-models for `twin validate`: small simulations whose answer theory knows.

They reuse the drivers of the unit tests (tests/test_queueing.py, tests/test_grid.py) and the
plugin inputs of benchmarks/plugin_cost.py instead of copying them, so a validation case and the
test it mirrors always exercise the same code. That makes `twin validate` a tool for a checkout
(CI, developers), like the validation/ folder itself: it needs the [test] extra (pytest).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

from twin.validate import SkipCase, model

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT / "tests", ROOT / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@model("mmc")
def mmc(c: int, rho: float, customers: int, seed: int, base: Path = ROOT) -> dict[str, Any]:
    """M/M/c on a ServerPool (Poisson arrivals, exponential service, mu = 1), 2% warm-up dropped."""
    from test_queueing import erlang_c_wait, run_mmc

    pool, lam, mean_service = run_mmc(seed=seed, customers=customers, c=c, rho=rho)
    now = pool.env.now
    return {"wq": pool.mean_wait(), "erlang_c_wq": erlang_c_wait(lam, 1.0, c), "lam": pool.arrival_rate(now),
            "lq": pool.mean_queue_length(now), "l": pool.mean_in_system(now), "mean_service": mean_service,
            "utilization": pool.utilization(now), "rho": rho}


@model("mmc_database")
def mmc_database(rho: float, queries: int, seed: int, base: Path = ROOT) -> dict[str, Any]:
    """The Database model (4 connections, exponential 10 ms queries) under Poisson load."""
    from test_grid import mmc_database as run
    from test_queueing import erlang_c_wait

    db, lam, mu = run(seed=seed, queries=queries, rho=rho)
    wq = erlang_c_wait(lam, mu, db.total_connections)
    return {"wq_ms": db.connections.mean_wait() * 1e3, "erlang_c_wq_ms": wq * 1e3,
            "latency_ms": db.mean_latency() * 1e3, "erlang_c_latency_ms": (wq + 1 / mu) * 1e3}


@model("tape_archive")
def tape_archive(demand_mbps: float, t0: float = 20000.0, t1: float = 200000.0, base: Path = ROOT) -> dict[str, Any]:
    """One writer offering `demand_mbps` into a 2-drive tape SE (100 MB/s drives, 100 GB batches).

    Analytic throughput: min(drives x B / (mount + position + B / rate), demand): each migration
    batch of B bytes holds a drive for the mount and positioning overhead plus the write.
    """
    from test_grid import BATCH, DRIVE_BPS, OVERHEAD, archive_source, archived_between, tape_world

    sim, tape = tape_world()
    demand = demand_mbps * 1e6
    archive_source(sim, tape, 1e9, demand)
    sim.env.run(until=t0)
    tape.drives.reset_stats()
    measured = archived_between(sim, tape, t0, t1)
    capacity = tape.total_drives * BATCH / (OVERHEAD + BATCH / DRIVE_BPS)
    offered_drive_use = (min(demand, capacity) / BATCH) * (OVERHEAD + BATCH / DRIVE_BPS) / tape.total_drives
    return {"throughput_mbps": measured / 1e6, "analytic_mbps": min(capacity, demand) / 1e6,
            "nominal_mbps": tape.total_drives * DRIVE_BPS / 1e6, "drive_utilization": tape.drives.utilization(sim.now),
            "analytic_drive_utilization": offered_drive_use}


@model("plugin_equality")
def plugin_equality(files: int = 300, seed: int = 1, base: Path = ROOT) -> dict[str, Any]:
    """Every native plugin vs the genuine DIRAC/CTADIRAC class on the same inputs (plugin_cost's)."""
    if importlib.util.find_spec("DIRAC") is None or importlib.util.find_spec("CTADIRAC") is None:
        raise SkipCase("needs the [dirac] extra (.ci/install-dirac-extra)")
    import plugin_cost as pc
    from twin.dirac.host import GenuinePluginHost, Topology
    from twin.dirac.transformation.plugins import CTATransformationPlugin, TransformationPlugin

    probe = pc.build_inputs(files, seed)
    host = GenuinePluginHost(Topology.from_resources(probe["resources"], probe["operations"]), log_level="FATAL")
    plugins = []
    for name, (source, params) in pc.CASES.items():
        outputs = []
        for side in ("native", "genuine"):
            inp = pc.build_inputs(files, seed)  # separate fakes per side: a plugin may change them
            args = (inp["tc"], inp["fc"], inp["resources"], inp["operations"])
            if side == "native":
                cls = CTATransformationPlugin if source == "ctadirac" else TransformationPlugin
                plugin = cls(name, args[0], None, args[1], resources=args[2], operations=args[3], rng=random.Random(3))
            else:
                plugin = host.make_plugin(name, source, *args, rng=random.Random(3))
            plugin.setParameters({"TransformationID": pc.TRANS_ID, **params})
            plugin.setInputData(inp["data"])
            plugin.setTransformationFiles(inp["files"])
            outputs.append(plugin.run())
        plugins.append({"name": name, "same": outputs[0] == outputs[1], "tasks": len(outputs[0].get("Value") or [])})
    return {"plugins": plugins}


@model("scenario_plugin_equality")
def scenario_plugin_equality(path: str, base: Path = ROOT) -> dict[str, Any]:
    """One scenario run twice, every step with plugin_source native then dirac: same tasks and files?"""
    if importlib.util.find_spec("DIRAC") is None or importlib.util.find_spec("CTADIRAC") is None:
        raise SkipCase("needs the [dirac] extra (.ci/install-dirac-extra)")
    from twin.runner import simulate
    from twin.scenario.loader import load_scenario

    native = load_scenario(base / path)
    overrides = {f"workload.productions[{p.name}].steps[{s.name}].plugin_source": "dirac"
                 for p in native.workload.productions for s in p.steps}
    runs = [simulate(scenario, keep_events=False) for scenario in (native, load_scenario(base / path, overrides))]
    outcome = [[(t["name"], t["tasks_created"], t["tasks"], t["files"]) for t in r.summary["transformations"]] for r in runs]
    return {"same_tasks_and_files": outcome[0] == outcome[1], "same_event_log": runs[0].event_digest == runs[1].event_digest}


@model("scenario_vs_monitor")
def scenario_vs_monitor(path: str, monitor: str, scale: float, overrides: dict[str, Any] | None = None,
                        base: Path = ROOT) -> dict[str, Any]:
    """Run a scenario and put next to each of its transformations the Transformation Monitor row of the same
    particle and step (Step1 = MCSimulation, Step3 = NSB5x), scaled by `scale` (the scenario's fraction
    of the real production). The monitor's TotalCreated counts every task ever created, retries included;
    it says nothing of how many are Done."""
    import csv

    from twin.validate import scenario_model

    summary = scenario_model(path, overrides, base=base)
    with open(base / monitor, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for trans in summary["transformations"]:
        production, step = trans["name"].split("/", 1)
        particle = production.split("-", 1)[1]
        tag = {"MCSimulation": "_Step1_", "NSB5x": "_Step3_"}.get(step)
        match = [row for row in rows if tag and tag in row["Name"] and f"_{particle}_" in row["Name"]]
        if len(match) == 1:
            trans["monitor"] = {"total_created": int(match[0]["TotalCreated"]) * scale,
                                "processed_pct": float(match[0]["ProcessedPct"]), "transformation_id": int(match[0]["TransformationID"])}
    return summary
