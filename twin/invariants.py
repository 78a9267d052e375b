"""Nothing is lost: conservation recounted from three independent records of a run.

A container compared with its own counters proves nothing (deleting records keeps them in
step). So each object is counted in records kept separately:

- the event log: every job, task, transformation file and request leaves one row per state
  change, written when it happens; its last row per object is the object's state as logged;
- the databases at the end: JobDB, TransformationDB (tasks and files), ReqDB, each recounted
  from its records and compared with its own O(1) counters;
- the catalog: the outputs registered under each job step's directory, each of which must
  belong to a Done job of that step, and each Done job's outputs, there or removed by a
  counted removal (cleaning agent, RMS RemoveFile).

The flags are true only when the three agree object by object. The event log is read through
one accessor, as an iterable of DataFrame chunks, so a streamed log is recounted without
loading it whole. Two more counts name what would stay unfinished for ever: jobs whose pilot is
gone and that no StalledJobAgent cycle has finalised, and files Assigned to a task that ended
long ago.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

from twin.dirac.datamanager import output_job_name
from twin.dirac.transformation import status as st
from twin.dirac.transformation.db import DROPPED
from twin.dirac.wms import job_status as js
from twin.dirac.wms.stalled import latest_update

if TYPE_CHECKING:
    from twin.world import World

#: Event kinds whose last row per entity is the object's state.
TRAILS = ("job.status", "task.status", "file.status", "request.status", "fts3.operation")
#: Non-final job states a job cannot leave by itself once its pilot is gone.
PILOT_BOUND_STATES = frozenset({js.MATCHED, js.RUNNING, js.COMPLETING, js.STALLED})
TASK_FINAL = frozenset(st.TASK_FINAL_STATES) | {"Completed"}
FINAL_TRANSFORMATION_STATES = frozenset({st.COMPLETED, st.CLEANING, st.CLEANED, st.ARCHIVED,
                                         st.TRANSFORMATION_CLEANED, st.DELETED})


def event_chunks(world: "World", kinds: Iterable[str]) -> Iterable[pd.DataFrame] | None:
    """THE accessor to the run's event log for the recount: its chunks (from memory or from the
    streamed Parquet file); None when the run kept no readable log (event_log off, digest only)."""
    log = world.sim.log
    if not log.readable(kinds):
        return None
    return log.chunks(list(kinds), columns=("kind", "entity", "state"))


def last_states(chunks: Iterable[pd.DataFrame]) -> dict[str, dict[str, str]]:
    """{kind: {entity: last logged state}} from time-ordered chunks, one chunk in memory at a time."""
    out: dict[str, dict[str, str]] = {kind: {} for kind in TRAILS}
    for chunk in chunks:
        if chunk.empty:
            continue
        for kind, rows in chunk.groupby("kind", observed=True, sort=False):
            last = rows.drop_duplicates("entity", keep="last")
            out.setdefault(str(kind), {}).update(zip(last["entity"].astype(str), last["state"].astype(str)))
    return out


def conservation(world: "World") -> dict[str, Any]:
    """The `*_conserved` flags (None when the event log is off), plus the stuck counts."""
    chunks = event_chunks(world, TRAILS)
    logged = last_states(chunks) if chunks is not None else None
    with world.services.unmetered():
        db = {"jobs": _jobs_in_db(world), "tasks": _tasks_in_db(world), "files": _files_in_db(world),
              "requests": _requests_in_db(world)}
        counters_ok = {"jobs": _job_counters_agree(world, db["jobs"]), "tasks": _task_counters_agree(world, db["tasks"]),
                       "files": _file_counters_agree(world, db["files"]),
                       "requests": _request_counters_agree(world, db["requests"])}
        outputs_ok = _outputs_belong_to_done_jobs(world)
        stuck_files = files_stuck_assigned(world)

    def flag(name: str, kind: str) -> bool | None:
        if logged is None:
            return None
        trail = {entity: state for entity, state in logged.get(kind, {}).items() if state != DROPPED}
        return counters_ok[name] and trail == db[name]

    return {
        "jobs_conserved": flag("jobs", "job.status"),
        "tasks_conserved": flag("tasks", "task.status"),
        "transformation_files_conserved": flag("files", "file.status"),
        "requests_conserved": flag("requests", "request.status"),
        "outputs_conserved": outputs_ok,
        "fts3_operations_conserved": world.rms.fts3_conserved(logged),
        "jobs_stuck": jobs_stuck(world),
        "files_stuck_assigned": stuck_files,
    }


# ---------------------------------------------------------------- the databases, record by record
def _jobs_in_db(world: "World") -> dict[str, str]:
    """Live records plus the compact columns of the jobs that reached a final state and left them."""
    jobdb = world.wms.jobdb
    finished = jobdb.finished()
    jobs = {f"job:{job_id}": str(status) for job_id, status in zip(finished["job_id"], finished["status"])}
    jobs.update((f"job:{job_id}", job.status) for job_id, job in jobdb.jobs.items())
    return jobs


def _done_task_names(world: "World") -> Counter[str]:
    """JobNames ("%08d_%08d") of the Done jobs, live records and retired columns alike."""
    jobdb = world.wms.jobdb
    finished = jobdb.finished()
    done = finished["status"] == js.DONE
    names: Counter[str] = Counter(f"{group:08d}_{task:08d}" for group, task in zip(finished["job_group"][done], finished["task_id"][done]))
    names.update(job.task_name for job in jobdb.jobs.values() if job.status == js.DONE)
    return names


def _tasks_in_db(world: "World") -> dict[str, str]:
    tasks = world.tsdb.getTransformationTasks({})["Value"]
    return {f"trans:{t['TransformationID']}/task:{t['TaskID']}": t["ExternalStatus"] for t in tasks}


def _files_in_db(world: "World") -> dict[str, str]:
    files = world.tsdb.getTransformationFiles({})["Value"]
    return {f"trans:{f['TransformationID']}/{f['LFN']}": f["Status"] for f in files}


def _requests_in_db(world: "World") -> dict[str, str]:
    db = world.rms.db
    return {f"request:{request_id}": db.status(request_id) for request_id in db.ids()}


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {status: n for status, n in counts.items() if n}


def _recount(records: dict[str, str]) -> dict[str, int]:
    return dict(Counter(records.values()))


def _job_counters_agree(world: "World", jobs: dict[str, str]) -> bool:
    jobdb = world.wms.jobdb
    return _nonzero(jobdb.counters()) == _recount(jobs) and len(jobdb) == len(jobs)


def _task_counters_agree(world: "World", tasks: dict[str, str]) -> bool:
    stats = world.tsdb.getTransformationTaskStats()["Value"]
    total = stats.pop("TotalCreated", 0)
    return _nonzero(stats) == _recount(tasks) and total == len(tasks)


def _file_counters_agree(world: "World", files: dict[str, str]) -> bool:
    recount: Counter[str] = Counter()
    for trans_id in world.runtimes:
        counts = world.tsdb.getTransformationStats(trans_id)["Value"]
        total = counts.pop("Total", 0)
        if sum(counts.values()) != total:
            return False
        recount.update(counts)
    return _nonzero(dict(recount)) == _recount(files)


def _request_counters_agree(world: "World", requests: dict[str, str]) -> bool:
    return _nonzero(dict(world.rms.db.counters)) == _recount(requests)


# ---------------------------------------------------------------- the catalog
def _outputs_belong_to_done_jobs(world: "World") -> bool:
    """Both directions between a job step's directory and its Done jobs: every output there was
    registered by a Done job of that step, at most `outputs per job` of them, and every Done job
    has at least its `output_files` outputs there or removed by a counted removal (cleaning agent,
    RMS RemoveFile), so an output lost from the catalog shows."""
    done = _done_task_names(world)
    done_by_step: dict[str, list[str]] = {}
    for name in done:
        done_by_step.setdefault(name.split("_", 1)[0], []).append(name)
    removed = world.datamanager.removed_per_job
    for trans_id, runtime in world.runtimes.items():
        if runtime.is_request_type:
            continue
        registered = Counter(output_job_name(lfn) for lfn in world.catalog.find_files_by_metadata({}, runtime.output_dir))
        for task_name, n in registered.items():
            if not done.get(task_name) or n > _max_outputs(runtime):
                return False
        expected = runtime.step.job.output_files
        if any(registered[name] + removed[name] < expected for name in done_by_step.get(f"{trans_id:08d}", ())):
            return False
    return True


def _max_outputs(runtime: Any) -> float:
    model = runtime.step.job
    return float("inf") if model.outputs_per_input else model.output_files


# ---------------------------------------------------------------- what would stay unfinished for ever
def jobs_stuck(world: "World") -> int:
    """Jobs whose pilot is gone and that the StalledJobAgent should have finalised by now
    (Stalled after StalledTime, Failed after FailedTime, Matched rescheduled after MatchedTime,
    each within two agent cycles)."""
    wms, now = world.wms, world.sim.now
    cfg = wms.stalled_config
    polling = world.scenario.dirac.stalled_job_agent.polling_time
    bound = max(cfg.stalled_time + cfg.failed_time, cfg.matched_time) + 2 * polling
    return sum(1 for state in PILOT_BOUND_STATES for job in wms.jobdb.jobs_in(state)
               if not (job.pilot is not None and job.pilot.running) and now - latest_update(job) > bound)


def files_stuck_assigned(world: "World") -> int:
    """Files still Assigned to a task that reached a final status longer ago than the monitoring
    (and, if configured, the failover reassignment) could take to release them, in transformations
    that are not finished by status (Completed/Cleaned...). Files of Killed tasks count: DIRAC's
    MonitorFiles leaves them Assigned and only CTADIRAC's failover Reassign frees them."""
    dirac, now = world.scenario.dirac, world.sim.now
    cycle = max(dirac.workflow_task_agent.polling_time, dirac.request_task_agent.polling_time,
                dirac.failover_agent.polling_time if dirac.failover_reassign_types else 0.0)
    older = now - (dirac.monitoring_age + 2 * cycle)
    stuck = 0
    for trans_id in world.runtimes:
        if world.tsdb.getTransformation(trans_id)["Value"]["Status"] in FINAL_TRANSFORMATION_STATES:
            continue
        assigned = world.tsdb.getTransformationFiles({"TransformationID": trans_id, "Status": st.ASSIGNED})["Value"]
        task_ids = sorted({f["TaskID"] for f in assigned})
        if not task_ids:
            continue
        tasks = world.tsdb.getTransformationTasks({"TransformationID": trans_id, "TaskID": task_ids})["Value"]
        ended = {t["TaskID"] for t in tasks if t["ExternalStatus"] in TASK_FINAL and t["LastUpdateTime"] < older}
        stuck += sum(1 for f in assigned if f["TaskID"] in ended)
    return stuck
