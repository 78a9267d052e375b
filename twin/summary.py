"""World -> summary dict (written as summary.json): what happened, and the verdicts.

Accounting follows the "nothing is lost" rule: every job, task, transformation file and
request is counted by its final state, and `invariants` states whether the counts
add up (conservation). The bottleneck verdict names the resource that saturated first;
the plan verdict says whether all work finished before `run.deadline`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.dirac.transformation.supply import FIXED, supply_mode
from twin.dirac.transformation import status as st
from twin.dirac.wms.job_status import JOB_FINAL_STATES
from twin.engine.clock import format_duration
from twin.invariants import conservation

if TYPE_CHECKING:
    from twin.world import World

SATURATION = 0.95
TB = 1e12


def summarize(world: "World") -> dict[str, Any]:
    now = world.sim.now
    world.services.settle()  # background RPCs counted up to now
    metrics = world.sim.metrics.to_frame()
    summary: dict[str, Any] = {
        "scenario_name": world.scenario.name,
        "seed": world.scenario.run.seed,
        "simulated_time": now,
        "events": len(world.sim.log),
        "jobs": _jobs(world),
        "transformations": _transformations(world),
        "requests": {"by_status": {k: int(v) for k, v in world.rms.db.counters.items() if v},
                     "files_replicated": world.rms.files_replicated, "replicas_removed": world.rms.replicas_removed,
                     "tb_replicated": world.rms.bytes_replicated / TB, **world.rms.movement()},
        "storage": _storage(world),
        "tape": _tape(world),
        "databases": _databases(world),
        "servers": _servers(world),
        "services": _services(world),
        "agents": {a.name: {"cycles": a.cycles, "busy_fraction": a.busy_time / now if now else 0.0, "overruns": a.overruns}
                   for a in world.sim.agents},
        "faults": [f.model_dump(mode="json") for f in world.scenario.faults],
        "production_failures": list(world.operator.failures),
    }
    summary["invariants"] = invariants(world, summary)
    summary["resources"] = resource_usage(world, metrics)
    summary["bottleneck"] = bottleneck(summary["resources"], _chain_context(world, summary))
    summary["plan"] = plan_verdict(world, summary["transformations"])
    return summary


def _jobs(world: "World") -> dict[str, Any]:
    wms = world.wms
    by_site: dict[str, dict[str, int]] = {}
    for (site, status), n in wms.jobdb.site_counters().items():
        by_site.setdefault(site, {})[status] = n
    return {
        "total": len(wms.jobdb),
        "by_status": dict(sorted(wms.jobdb.counters().items())),
        "by_site": dict(sorted(by_site.items())),
        "failures_by_reason": dict(wms.failures.most_common()),
        "cpu_used_hs06_hours": wms.cpu_used_hs06s / 3600.0,
        "cpu_wasted_hs06_hours": wms.cpu_wasted_hs06s / 3600.0,
        "outputs_registered": wms.outputs_registered,
        "tb_uploaded": wms.bytes_uploaded / TB,
    }


def _transformations(world: "World") -> list[dict[str, Any]]:
    rows = []
    for trans_id, runtime in sorted(world.runtimes.items()):
        trans = world.tsdb.getTransformation(trans_id)["Value"]
        files = world.tsdb.getTransformationStats(trans_id)["Value"]
        tasks = world.tsdb.getTransformationTaskStats(trans_id)["Value"]
        total = files.get("Total", 0)
        complete, shortfall = _completeness(world, trans, files, tasks)
        rows.append({
            "id": trans_id, "name": runtime.name, "type": trans["Type"], "plugin": trans["Plugin"],
            "status": trans["Status"], "group_size": trans["GroupSize"],
            "files": {k: v for k, v in files.items() if k != "Total"}, "files_total": total,
            "processed_pct": 100.0 * files.get(st.PROCESSED, 0) / total if total else None,
            "tasks": {k: v for k, v in tasks.items() if k != "TotalCreated"}, "tasks_created": tasks.get("TotalCreated", 0),
            "max_tasks": trans.get("MaxNumberOfTasks") or None,
            "started_at": runtime.started_at, "finished_at": world.finished_at.get(trans_id),
            "complete": complete, "shortfall": shortfall,
        })
    return rows


def _completeness(world: "World", trans: dict[str, Any], files: dict[str, int], tasks: dict[str, int]) -> tuple[bool, str]:
    """Did the transformation do what was asked? MC: MaxNumberOfTasks Done; data steps: every input Processed."""
    max_tasks = int(trans.get("MaxNumberOfTasks") or 0)
    if trans["Type"] in world.scenario.dirac.extendable_types and max_tasks:
        done = tasks.get(st.TASK_DONE, 0)
        if done >= max_tasks:
            return True, ""
        created, failed = tasks.get("TotalCreated", 0), tasks.get(st.TASK_FAILED, 0)
        if supply_mode(world.scenario.supply, world.runtimes[trans["TransformationID"]].name) == FIXED:
            return done >= world.scenario.run.min_processed_fraction * max_tasks, f"{done}/{max_tasks} tasks Done; {failed} Failed not replaced (fixed supply)"
        why = (f"MCExtensionAgent stopped: {failed}/{created} tasks failed (> {world.scenario.dirac.mc_max_failure_rate:.0%})"
               if created and failed / created > world.scenario.dirac.mc_max_failure_rate else "tasks still to create or run")
        return False, f"{done}/{max_tasks} tasks Done; {why}"
    left = {k: v for k, v in files.items() if k not in (st.PROCESSED, "Total") and v}
    if not left:
        return True, ""
    total = files.get("Total", 0)
    enough = total and files.get(st.PROCESSED, 0) / total >= world.scenario.run.min_processed_fraction
    return bool(enough), ", ".join(f"{n} {status}" for status, n in sorted(left.items())) + " input files not processed"


def _storage(world: "World") -> dict[str, Any]:
    return {name: {"kind": "disk" if se.is_disk else "tape", "used_tb": se.used_bytes / TB, "capacity_tb": se.capacity_bytes / TB,
                   "fill": se.fill, "reads": se.reads, "writes": se.writes, "refused_writes": se.refused_writes}
            for name, se in sorted(world.grid.ses.items())}


def _tape(world: "World") -> dict[str, Any]:
    now = world.sim.now
    return {name: {"drives": t.total_drives, "drives_available": t.drives.capacity,
                   "drive_utilization": t.drives.utilization(now) if now else 0.0,
                   "archived_tb": t.archived_bytes / TB, "recalled_tb": t.recalled_bytes / TB, "mounts": t.mounts,
                   "recalls": t.recalls_done, "backlog_tb": t.buffer_used / TB, "drain_hours": _drain_hours(t)}
            for name, t in sorted(world.grid.tapes.items())}


def _drain_hours(tape: Any) -> float | None:
    """Hours the write buffer needs to reach tape at full speed of the drives available now (None: no drive)."""
    if not tape.buffer_used:
        return 0.0
    if not tape.drives.capacity:
        return None
    return tape.buffer_used / (tape.drives.capacity * tape.drive_rate) / 3600.0


def _databases(world: "World") -> dict[str, Any]:
    now = world.sim.now
    return {name: {"queries": db.queries, "queries_per_s": db.queries / now if now else 0.0,
                   "mean_latency_ms": db.mean_latency() * 1000.0,
                   **{f"p{q}_latency_ms": db.latency_percentile(q) * 1000.0 for q in (50, 95, 99)},
                   "utilization": min(1.0, db.flow.busy_seconds() / (db.total_connections * now)) if now else 0.0,
                   "mean_queue": db.flow.queue_seconds() / now if now else 0.0,
                   "exact_queueing_hours": db.flow.hot_seconds() / 3600.0,
                   "top_queries": dict(Counter(db.queries_by_op).most_common(5))}
            for name, db in sorted(world.grid.databases.items())}


def _servers(world: "World") -> dict[str, Any]:
    now = world.sim.now
    return {name: {"cores": s.total_cores, "cpu_hours": s.cpu_seconds / 3600.0, "calls": s.calls,
                   "utilization": s.cpu_seconds / (s.total_cores * now) if now else 0.0, "services": s.services}
            for name, s in sorted(world.grid.servers.items())}


def _services(world: "World") -> dict[str, Any]:
    """Per service instance (service@host): RPCs, latency percentiles, thread occupancy, client timeouts."""
    now = world.sim.now
    out = {}
    for service, hosts in sorted(world.services.instances.items()):
        for inst in hosts:
            threads = inst.threads
            out[f"{service}@{inst.server.name}"] = {
                "calls": inst.calls, "calls_per_s": inst.calls / now if now else 0.0,
                **{f"p{q}_latency_ms": inst.latency.percentile(q) * 1000.0 for q in (50, 95, 99)},
                "threads": threads.nominal,
                "busy_threads": threads.busy_seconds() / now if now else 0.0,
                "mean_queue": threads.queue_seconds() / now if now else 0.0, "timeouts": inst.timeouts,
                "retries": inst.retries, "failed": inst.failed}
    return out


def invariants(world: "World", summary: dict[str, Any]) -> dict[str, Any]:
    """Conservation, recounted independently from the event log, the DBs and the catalog
    (`twin.invariants`), and what is left unfinished."""
    jobs = summary["jobs"]
    non_final = sum(n for status, n in jobs["by_status"].items() if status not in JOB_FINAL_STATES)
    return {**conservation(world), "jobs_not_final": non_final, "all_transformations_finished": world.all_finished()}


def resource_usage(world: "World", metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """Mean and peak utilization of every capacity-bound resource, and when it first saturated."""
    rows = []

    def add(kind: str, name: str, series: pd.Series) -> None:
        series = series.fillna(0.0).clip(lower=0.0)
        saturated = metrics["time"][series >= SATURATION]
        rows.append({"kind": kind, "name": name, "mean_utilization": float(series.mean()) if len(series) else 0.0,
                     "peak_utilization": float(series.max()) if len(series) else 0.0,
                     "first_saturated_at": float(saturated.iloc[0]) if len(saturated) else None})

    for name, site in world.grid.sites.items():
        if site.slots():
            add("site slots", name, metrics[f"site.running[{name}]"] / site.slots())
    for name, server in world.grid.servers.items():
        add("server cores", name, (metrics[f"server.cpu_pct[{name}]"] / 100.0).clip(upper=1.0))  # streams beyond the cores
    for name, db in world.grid.databases.items():
        # connections held (a query holds its connection also while it waits for a core of the DB host)
        add("database connections", name, (metrics[f"db.busy[{name}]"] / db.total_connections).clip(upper=1.0))
    for service, hosts in world.services.instances.items():
        for inst in hosts:
            key = f"{service}@{inst.server.name}"
            if f"svc.busy_threads[{key}]" in metrics:
                add("service threads", key, metrics[f"svc.busy_threads[{key}]"] / max(1, inst.threads.nominal))
    for name, tape in world.grid.tapes.items():
        add("tape drives", name, metrics[f"tape.drive_use[{name}]"])  # busy over the drives available then
    for name, se in world.grid.ses.items():
        add("storage space", name, metrics[f"se.used_tb[{name}]"] * TB / se.capacity_bytes)
    return rows


CORE_KINDS = ("database connections", "server cores", "service threads")


def _chain_context(world: "World", summary: dict[str, Any]) -> dict[str, Any]:
    """What a core-service bottleneck did downstream: agent overruns, late submission, idle slots."""
    slots = [r for r in summary["resources"] if r["kind"] == "site slots"]
    hosted = {name: [db for db, d in world.grid.databases.items() if d.server is s] for name, s in world.grid.servers.items()}
    load = {name: db.flow.busy_seconds() for name, db in world.grid.databases.items()}
    return {"agents": summary["agents"], "hosted_dbs": hosted, "db_load": load,
            "slot_utilization": sum(r["mean_utilization"] for r in slots) / len(slots) if slots else None}


def _chain(first: dict[str, Any], context: dict[str, Any] | None) -> str:
    """DB saturates -> agent cycles overrun -> tasks submitted late -> slots idle, with the run's numbers."""
    if not context or first["kind"] not in CORE_KINDS:
        return ""
    parts = []
    dbs = context["hosted_dbs"].get(first["name"], []) if first["kind"] == "server cores" else []
    if dbs:
        load = context["db_load"]
        top = max(dbs, key=lambda d: load.get(d, 0.0))
        total = sum(load.get(d, 0.0) for d in dbs) or 1.0
        parts.append(f"the host of {', '.join(sorted(dbs))}; {top} makes {load.get(top, 0.0) / total:.0%} of its load")
    overrun = {name: a for name, a in context["agents"].items() if a["overruns"]}
    if overrun:
        worst = max(overrun, key=lambda n: overrun[n]["overruns"])
        parts.append(f"agent cycles overrun ({worst}: {overrun[worst]['overruns']} of {overrun[worst]['cycles']} cycles, "
                     f"busy {overrun[worst]['busy_fraction']:.0%} of the time)")
        parts.append("tasks are created and submitted late")
    if context.get("slot_utilization") is not None:
        parts.append(f"site slots are {context['slot_utilization']:.0%} busy on average")
    return " -> ".join(parts)


def bottleneck(resources: list[dict[str, Any]], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The kind of resource that saturates first; when several of one kind saturate together
    (all sites' slots in the same sample), the verdict names the kind, not one arbitrary member."""
    saturated = [r for r in resources if r["first_saturated_at"] is not None]
    if saturated:
        first = min(saturated, key=lambda r: (r["first_saturated_at"], -r["mean_utilization"]))
        peers = [r for r in saturated if r["kind"] == first["kind"] and r["first_saturated_at"] == first["first_saturated_at"]]
        of_kind = sum(1 for r in resources if r["kind"] == first["kind"])
        who = f"{first['name']}" if len(peers) == 1 else f"{len(peers)} of {of_kind} ({', '.join(r['name'] for r in peers[:4])}{'...' if len(peers) > 4 else ''})"
        chain = _chain(first, context)
        return {**first, "saturated_together": [r["name"] for r in peers], "chain": chain,
                "verdict": f"{first['kind']} saturate first: {who}, after {format_duration(first['first_saturated_at'])} "
                           f"(mean utilization {first['mean_utilization']:.0%})" + (f"; {chain}" if chain else "")}
    if not resources:
        return {"verdict": "no capacity-bound resource in the topology"}
    busiest = max(resources, key=lambda r: r["mean_utilization"])
    return {**busiest, "saturated_together": [],
            "verdict": f"nothing saturates; the busiest resource is {busiest['kind']} of {busiest['name']} "
                       f"(mean utilization {busiest['mean_utilization']:.0%})"}


def stuck_jobs(world: "World") -> list[str]:
    """Non-final jobs by site and status, largest first, with the site's slots ("914 jobs Waiting at
    LCG.X.es (0 slots)"): where unfinished work waits, and whether anything there can run it."""
    sites = world.grid.sites
    counts = [(n, site, status) for (site, status), n in world.wms.jobdb.site_counters().items()
              if status not in JOB_FINAL_STATES and n]
    out = []
    for n, site, status in sorted(counts, key=lambda c: (-c[0], c[1], c[2])):
        if site in sites:
            where = f" at {site} ({sites[site].slots()} slots)"
        else:
            where = f" (Site {site}; {sum(x.slots() for x in sites.values())} slots at all sites)" if site else ""
        out.append(f"{n} jobs {status}{where}")
    return out


def plan_verdict(world: "World", transformations: list[dict[str, Any]]) -> dict[str, Any]:
    """Finished (no more work will happen) and complete (everything asked for was done) by the deadline?"""
    deadline = world.scenario.run.deadline
    done = world.all_finished()
    short = [f"{t['name']}: {t['shortfall']}" for t in transformations if not t["complete"]]
    finished_at = max(world.finished_at.values()) if done and world.finished_at else None
    met = None if deadline is None else bool(done and not short and finished_at is not None and finished_at <= deadline)
    unreached = deadline is not None and not done and world.sim.now < deadline  # the run ended before the deadline
    if unreached:
        met = None
    left = [f"{t['name']}: {t['shortfall']}" for t in transformations if t["complete"] and t.get("shortfall")]
    if done and not short:
        verdict = f"All work finished after {format_duration(finished_at or 0.0)}"
        if left:  # complete within run.min_processed_fraction, but say what was not processed
            verdict += f" (within min_processed_fraction; left: {'; '.join(left[:3])})"
    elif done:
        verdict = f"Stopped short after {format_duration(finished_at or 0.0)}: {'; '.join(short[:3])}"
    else:
        verdict = f"Work still unfinished after {format_duration(world.sim.now)}"
        stuck = stuck_jobs(world)
        verdict += f": {'; '.join(stuck[:3])}" if stuck else f": {'; '.join(short[:3])}" if short else ""
    if deadline is not None:
        verdict += (f"; deadline {format_duration(deadline)} not reached (the run ended first: extend run.duration)"
                    if unreached else f"; deadline {format_duration(deadline)} {'met' if met else 'MISSED'}")
    backlog = {name: t for name, t in _tape(world).items() if t["backlog_tb"] > 0}
    for name, t in backlog.items():
        drain = "never (no drive)" if t["drain_hours"] is None else f"{format_duration(t['drain_hours'] * 3600)} more at full drive speed"
        size = f"{t['backlog_tb']:.1f} TB" if t["backlog_tb"] >= 1 else f"{t['backlog_tb'] * 1000:.0f} GB"
        verdict += f"; {size} still in the {name} write buffer, not yet on tape ({drain})"
    return {"deadline": deadline, "finished_at": finished_at, "all_finished": done, "complete": done and not short,
            "shortfalls": short, "deadline_met": met, "verdict": verdict + "."}
