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
loading it whole; both sides are held as dense columns of state codes per object (`StateTable`,
two bytes per job, task, file or request), never as per-record dictionaries, so the check stays
bounded for a year of operations. Two more counts name what would stay unfinished for ever: jobs whose pilot is
gone and that no StalledJobAgent cycle has finalised, and files Assigned to a task that ended
long ago.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

from twin.codes import Codes
from twin.dirac.datamanager import output_job_name
from twin.dirac.transformation import status as st
from twin.dirac.transformation.db import DROPPED
from twin.dirac.wms import job_status as js
from twin.dirac.wms.jobdb import RETIRED_STATES
from twin.dirac.wms.stalled import latest_update

if TYPE_CHECKING:
    from twin.world import World

#: Event kinds whose last row per entity is the object's state.
TRAILS = ("job.status", "task.status", "file.status", "request.status", "fts3.operation")
#: The trails of a year's worth of objects, recounted as state-code columns (`StateTable`).
COLUMN_TRAILS = ("job.status", "task.status", "file.status", "request.status")
#: Job IDs put into the recount per slice.
_SLICE = 1 << 20
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


class StateTable:
    """Object -> state as dense columns of state codes, one per (kind, group): a job is its JobID in
    group 0, a task its TaskID in its transformation's group, a transformation file its row in the
    TransformationFiles table, a request its RequestID. Code 0 means "no such object" (also for rows
    that cleanTransformation dropped), so a year of objects costs two bytes each, not a dict entry."""

    def __init__(self) -> None:
        self.states: Codes[str] = Codes([DROPPED])  # code 0: no such object, or a dropped row
        self.columns: dict[tuple[str, int], np.ndarray] = {}
        #: objects the log names but the databases cannot place (e.g. an LFN the TransformationDB lacks)
        self.unplaced: dict[tuple[str, str], int] = {}
        #: trails of few objects (FTS3 operations), kept as {entity: state} for their own checks
        self.by_entity: dict[str, dict[str, str]] = {}

    def get(self, kind: str, default: Any = None) -> Any:
        """{entity: last state} of a kind kept by entity (see `COLUMN_TRAILS`), like the old mapping."""
        return self.by_entity.get(kind, default)

    @property
    def names(self) -> list[str]:
        return self.states.names

    def code(self, state: str) -> int:
        return self.states.code(state)

    def codes(self, states: Iterable[str]) -> np.ndarray:
        return np.array([self.code(str(state)) for state in states], dtype=np.uint16)

    def put(self, kind: str, group: int, keys: np.ndarray, codes: np.ndarray) -> None:
        """Set the states of objects `keys` (distinct) of one group."""
        if not len(keys):
            return
        column = self.columns.get((kind, group), np.zeros(0, dtype=np.uint16))
        top = int(keys.max()) + 1
        if top > len(column):
            column = np.concatenate([column, np.zeros(max(top, 2 * len(column)) - len(column), dtype=np.uint16)])
        column[keys] = codes
        self.columns[(kind, group)] = column

    def of(self, kind: str) -> dict[int, np.ndarray]:
        return {group: column for (k, group), column in self.columns.items() if k == kind}

    def recount(self, kind: str) -> dict[str, int]:
        """{state: objects in it} over every group of `kind`."""
        counts = np.zeros(len(self.names), dtype=np.int64)
        for column in self.of(kind).values():
            counts += np.bincount(column, minlength=len(self.names))[:len(self.names)]
        return {self.names[code]: int(n) for code, n in enumerate(counts) if code and n}  # type: ignore[misc]

    def same(self, other: "StateTable", kind: str) -> bool:
        """Object by object, with `other` coding states the same way (see `aligned`)."""
        if any(code for (k, _), code in self.unplaced.items() if k == kind):
            return False
        mine, theirs = self.of(kind), other.of(kind)
        for group in set(mine) | set(theirs):
            a, b = mine.get(group, np.zeros(0, np.uint16)), theirs.get(group, np.zeros(0, np.uint16))
            n = max(len(a), len(b))
            if not np.array_equal(np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b)))):
                return False
        return True


def logged_states(chunks: Iterable[pd.DataFrame], world: "World", table: StateTable | None = None) -> StateTable:
    """Each object's last logged state, from time-ordered chunks, one chunk in memory at a time."""
    table = table or StateTable()
    for chunk in chunks:
        if chunk.empty:
            continue
        for kind, rows in chunk.groupby("kind", observed=True, sort=False):
            if kind not in TRAILS:
                continue
            last = rows.drop_duplicates("entity", keep="last")
            if kind in COLUMN_TRAILS:
                _put_logged(table, str(kind), last["entity"].astype(str), table.codes(last["state"]), world)
            else:
                table.by_entity.setdefault(str(kind), {}).update(zip(last["entity"].astype(str), last["state"].astype(str)))
    return table


def _put_logged(table: StateTable, kind: str, entity: pd.Series, codes: np.ndarray, world: "World") -> None:
    if kind in ("job.status", "request.status"):
        table.put(kind, 0, entity.str.slice(len(kind.split(".")[0]) + 1).astype(np.int64).to_numpy(), codes)
        return
    head = entity.str.split("/", n=1, expand=True)
    groups = head[0].str.slice(len("trans:")).astype(np.int64).to_numpy()
    for group in np.unique(groups).tolist():
        at = groups == group
        names = head[1][at]
        if kind == "task.status":
            keys = names.str.slice(len("task:")).astype(np.int64).to_numpy()
        else:
            keys = world.tsdb.file_rows(group, ["/" + n if not n.startswith("/") else n for n in names])
        known = keys >= 0
        table.put(kind, group, keys[known], codes[at][known])
        for name, code in zip(names[~known], codes[at][~known]):  # the log names a file the DB lacks
            table.unplaced[(kind, f"{group}/{name}")] = int(code)


def conservation(world: "World") -> dict[str, Any]:
    """The `*_conserved` flags (None when the event log is off), plus the stuck counts."""
    db = StateTable()
    with world.services.unmetered():
        _jobs_in_db(world, db)
        _tasks_and_files_in_db(world, db)
        _requests_in_db(world, db)
        counters_ok = {"jobs": _job_counters_agree(world, db), "tasks": _task_counters_agree(world, db),
                       "files": _file_counters_agree(world, db), "requests": _request_counters_agree(world, db)}
        outputs_ok = _outputs_belong_to_done_jobs(world)
        stuck_files = files_stuck_assigned(world)
    chunks = event_chunks(world, TRAILS)
    logged = logged_states(chunks, world, _sharing_codes(db)) if chunks is not None else None

    def flag(name: str, kind: str) -> bool | None:
        if logged is None:
            return None
        return counters_ok[name] and logged.same(db, kind)

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


def _sharing_codes(db: StateTable) -> StateTable:
    """An empty table whose state codes are `db`'s, so that columns compare code for code."""
    table = StateTable()
    for name in db.names[1:]:
        table.code(name)  # type: ignore[arg-type]
    return table


# ---------------------------------------------------------------- the databases, record by record
def _jobs_in_db(world: "World", db: StateTable) -> None:
    """Live records plus the compact columns of the jobs that reached a final state and left them."""
    jobdb = world.wms.jobdb
    codes, first = jobdb.finished_codes()
    to_db = np.array([0, *(db.code(state) for state in RETIRED_STATES)], dtype=np.uint16)
    for start in range(0, len(codes), _SLICE):  # by slices: no 10^7-row temporaries at 10^7 jobs
        at = np.flatnonzero(codes[start:start + _SLICE])
        db.put("job.status", 0, at + (start + first), to_db[codes[start + at]])
    live = list(jobdb.jobs.items())
    db.put("job.status", 0, np.array([job_id for job_id, _ in live], dtype=np.int64), db.codes(job.status for _, job in live))


def _done_task_keys(world: "World") -> np.ndarray:
    """(JobGroup << 32 | TaskID) of the Done jobs, retired columns and live records alike."""
    jobdb = world.wms.jobdb
    live = [_task_key(job.task_name) for job in jobdb.jobs.values() if job.status == js.DONE]
    return np.concatenate([jobdb.finished_done_tasks(), np.array(live, dtype=np.int64)])


def _task_key(task_name: str) -> int:
    """"%08d_%08d" (JobGroup_TaskID) as one int; -1 for any other name."""
    group, _, task = task_name.partition("_")
    return int(group) << 32 | int(task) if group.isdigit() and task.isdigit() else -1


def _tasks_and_files_in_db(world: "World", db: StateTable) -> None:
    for kind, table in (("task.status", "TransformationTasks"), ("file.status", "TransformationFiles")):
        for trans_id, codes, names in world.tsdb.status_columns(table):
            db.put(kind, trans_id, np.arange(len(codes)) + (kind == "task.status"), db.codes(names)[codes])


def _requests_in_db(world: "World", db: StateTable) -> None:
    rms = world.rms.db
    ids = rms.ids()
    db.put("request.status", 0, np.array(ids, dtype=np.int64), db.codes(rms.status(request_id) for request_id in ids))


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {status: n for status, n in counts.items() if n}


def _job_counters_agree(world: "World", db: StateTable) -> bool:
    jobdb = world.wms.jobdb
    recount = db.recount("job.status")
    return _nonzero(jobdb.counters()) == recount and len(jobdb) == sum(recount.values())


def _task_counters_agree(world: "World", db: StateTable) -> bool:
    stats = world.tsdb.getTransformationTaskStats()["Value"]
    total = stats.pop("TotalCreated", 0)
    recount = db.recount("task.status")
    return _nonzero(stats) == recount and total == sum(recount.values())


def _file_counters_agree(world: "World", db: StateTable) -> bool:
    counted: Counter[str] = Counter()
    for trans_id in world.runtimes:
        counts = world.tsdb.getTransformationStats(trans_id)["Value"]
        total = counts.pop("Total", 0)
        if sum(counts.values()) != total:
            return False
        counted.update(counts)
    return _nonzero(dict(counted)) == db.recount("file.status")


def _request_counters_agree(world: "World", db: StateTable) -> bool:
    return _nonzero(dict(world.rms.db.counters)) == db.recount("request.status")


# ---------------------------------------------------------------- the catalog
def _outputs_belong_to_done_jobs(world: "World") -> bool:
    """Both directions between a job step's directory and its Done jobs: every output there was
    registered by a Done job of that step, at most `outputs per job` of them, and every Done job
    has at least its `output_files` outputs there or removed by a counted removal (cleaning agent,
    RMS RemoveFile), so an output lost from the catalog shows."""
    done = np.unique(_done_task_keys(world))
    removed = world.datamanager.removed_per_job
    for trans_id, runtime in world.runtimes.items():
        if runtime.is_request_type:
            continue
        keys = np.fromiter((_task_key(output_job_name(lfn)) for lfn in world.catalog.lfns(runtime.output_dir)), np.int64)
        names, counts = np.unique(keys, return_counts=True)
        if not np.isin(names, done).all() or (len(counts) and counts.max() > _max_outputs(runtime)):
            return False
        expected = runtime.step.job.output_files
        step_done = done[(done >> 32) == trans_id]
        registered = np.zeros(len(step_done), dtype=np.int64)
        at = np.searchsorted(names, step_done)
        found = at < len(names)
        found[found] = names[at[found]] == step_done[found]
        registered[found] = counts[at[found]]
        short = step_done[registered < expected]  # only these need the removals counted per job
        if any(registered[i] + removed[f"{int(k) >> 32:08d}_{int(k) & 0xFFFFFFFF:08d}"] < expected
               for i, k in zip(np.flatnonzero(registered < expected).tolist(), short.tolist())):
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
