"""The Transformation System's agents as periodic simulated processes.

InputDataAgent, TransformationAgent, the task-manager agents (WorkflowTaskAgent for jobs,
RequestTaskAgent for requests) and MCExtensionAgent, with DIRAC 9.1.22's defaults
(domain spec §1.6). Each cycle is a generator: the pure TransformationDB/FileCatalog
calls are metered, then the cycle pays for them on the core servers and databases, so a
slow TransformationDB makes every cycle longer exactly where DIRAC would feel it.

Scale choices (documented in docs/fidelity.md):
- InputDataAgent: DIRAC re-adds the *full* match set every cycle. The twin charges the
  DB for exactly that (rows = all matching files) but computes the result incrementally
  from catalog registrations, so a 10^6-file catalog is never rescanned.
- Task and file monitoring are driven by job/request status changes ("dirty" sets)
  instead of polling every task; the 10-minute age filter and the DB cost of the
  equivalent polling query are kept.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Final, Generator, Mapping

from twin.dirac.transformation import status as st
from twin.engine.queueing import run_in_threads
from twin.dirac.transformation.supply import supply_mode, tasks_to_create

if TYPE_CHECKING:
    from twin.dirac.context import AgentsContext

TS: Final = "TransformationManager"
FC: Final = "FileCatalog"
#: An agent cycle or one of its steps: a simulated process (yields simpy events, returns nothing)
Steps = Generator[Any, Any, None]
#: WorkflowTasks / RequestTasks `submit_task`: a process returning the JobID / RequestID (None: not submitted)
Submit = Callable[[dict[str, Any], dict[str, Any]], Generator[Any, Any, "int | None"]]


class TransformationAgents:
    """State shared by the TS agents of one run (what DIRAC keeps in agent memory)."""

    def __init__(self, world: "AgentsContext") -> None:
        self.world = world
        cfg = world.scenario.dirac
        self.cfg = cfg
        self.job_types = set(cfg.data_processing_types)
        self.dm_types = set(cfg.data_manipulation_types)
        self.input_types = (self.job_types | self.dm_types) - set(cfg.extendable_types)
        #: InputDataAgent: LFNs registered since the last cycle that match each Input query
        self.pending_inputs: dict[int, list[str]] = defaultdict(list)
        self.matching: dict[int, int] = defaultdict(int)
        self.queries: dict[int, Callable[[Mapping[str, Any]], bool]] = {}
        #: TransformationAgent memory: Unused left after the last cycle and when it ran
        self.leftover: dict[int, int] = {}
        self.last_run: dict[int, float] = {}
        self.idle: dict[int, bool] = defaultdict(bool)
        #: task-manager memory: transID -> {taskID: (latest external status, when)}, oldest first
        self.task_updates: dict[int, dict[int, tuple[str, float]]] = {}
        self.finished_jobs: dict[int, dict[int, tuple[str, float]]] = {}
        self.tasks_created = 0
        world.catalog.on_file_registered.append(self._on_file_registered)

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        sim, cfg = self.world.sim, self.cfg
        sim.agent("InputDataAgent", cfg.input_data_agent.polling_time, self.input_data_cycle, 7.0, cfg.input_data_agent.enabled)
        sim.agent("TransformationAgent", cfg.transformation_agent.polling_time, self.transformation_cycle, 17.0,
                  cfg.transformation_agent.enabled)
        sim.agent("WorkflowTaskAgent", cfg.workflow_task_agent.polling_time, self.workflow_task_cycle, 29.0,
                  cfg.workflow_task_agent.enabled)
        sim.agent("RequestTaskAgent", cfg.request_task_agent.polling_time, self.request_task_cycle, 41.0,
                  cfg.request_task_agent.enabled)
        sim.agent("MCExtensionAgent", cfg.mc_extension_agent.polling_time, self.mc_extension_cycle, 3.0,
                  cfg.mc_extension_agent.enabled)

    def register_input_query(self, trans_id: int, query: dict[str, Any], initial: int) -> None:
        """Called when a transformation with an Input query is created (after its one-off query)."""
        self.queries[trans_id] = self.world.catalog.compile_query(query)
        self.matching[trans_id] = initial

    def _on_file_registered(self, lfn: str) -> None:
        if not self.queries:
            return
        meta = self.world.catalog.effective_metadata(lfn)
        for trans_id, matches in self.queries.items():
            if matches(meta):
                self.pending_inputs[trans_id].append(lfn)
                self.matching[trans_id] += 1

    def _transformations(self, statuses: list[str], types: set[str], automatic: bool = False) -> list[dict[str, Any]]:
        res = self.world.tsdb.getTransformations({"Status": statuses}, extraParams=True)
        return [t for t in res["Value"] if t["Type"] in types and (not automatic or t["AgentType"] == st.AGENT_TYPE_AUTOMATIC)]

    # ------------------------------------------------------------------ InputDataAgent
    def input_data_cycle(self) -> Steps:
        world = self.world
        for trans in self._transformations([st.ACTIVE], self.input_types):
            trans_id = trans["TransformationID"]
            if trans_id not in self.queries:
                continue
            world.services.meter("FileCatalogDB", "findFilesByMetadata", self.matching[trans_id])
            yield from world.services.pay(FC)
            new = self.pending_inputs.pop(trans_id, [])
            present = self.matching[trans_id] - len(new)
            if present:
                world.services.meter("TransformationDB", "addFilesToTransformation", present)
            if new:
                world.tsdb.addFilesToTransformation(trans_id, sorted(new), now=world.sim.now)
                self.idle[trans_id] = False
            yield from world.services.pay(TS)

    # ------------------------------------------------------------------ TransformationAgent
    def transformation_cycle(self) -> Steps:
        transformations = self._transformations([st.ACTIVE, st.COMPLETING, st.FLUSH], self.job_types | self.dm_types)
        yield from run_in_threads(self.world.sim.env, map(self._process_transformation, transformations), self.cfg.agent_threads)

    def _process_transformation(self, trans: dict[str, Any]) -> Steps:
        world, now = self.world, self.world.sim.now
        trans_id = trans["TransformationID"]
        tsdb = world.tsdb
        files = tsdb.getTransformationFiles({"TransformationID": trans_id, "Status": list(st.FILES_TO_PROCESS_STATES)})["Value"]
        yield from world.services.pay(TS)
        flush = trans["Status"] == st.FLUSH
        if not files:
            if flush:
                world.set_transformation_status(trans_id, st.ACTIVE)
            self.idle[trans_id] = True
            return
        if self._skip(trans, len(files), now):
            return
        self.last_run[trans_id] = now
        prob = [f["LFN"] for f in files if f["Status"] != st.UNUSED]
        if prob:
            tsdb.setFileStatusForTransformation(trans_id, st.UNUSED, prob, force=True, now=now)
        if not world.runtime(trans_id).ready_to_create_tasks():
            self.leftover[trans_id] = len(files)
            return
        lookup = world.datamanager.replicas_for(trans, [f["LFN"] for f in files])
        yield from world.services.pay(FC)
        lost = self._mark_not_in_catalog(trans_id, lookup)
        if lost:
            yield from world.services.pay(TS)
        data = lookup.replicas
        tasks = self._run_plugin(trans, data, files) if data else []
        if tasks is not None:  # a failed plugin (None, logged) makes no addTaskForTransformation call
            world.services.meter("TransformationDB", "addTaskForTransformation", len(tasks))
        yield from world.services.pay(TS)
        assigned, all_created = self._create_tasks(trans_id, tasks) if tasks is not None else (0, False)
        self.leftover[trans_id] = len(files) - lost - assigned
        self.idle[trans_id] = assigned == 0
        if flush and all_created:
            world.set_transformation_status(trans_id, st.ACTIVE)

    def _mark_not_in_catalog(self, trans_id: int, lookup: Any) -> int:
        """_getDataReplicasDM: files the catalog answered neither way -> ProbInFC (tried again next cycle),
        files it does not know ("No such file or directory") -> MissingInFC (never again). Not forced."""
        tsdb, now = self.world.tsdb, self.world.sim.now
        for status, lfns in ((st.PROB_IN_FC, lookup.problematic), (st.MISSING_IN_FC, lookup.missing)):
            if lfns:
                tsdb.setFileStatusForTransformation(trans_id, status, lfns, now=now)
        return len(lookup.missing) + len(lookup.problematic)

    def _skip(self, trans: dict[str, Any], unused: int, now: float) -> bool:
        """DIRAC's NoUnusedDelay rule: nothing new since last cycle, not Flush, < 6 h since last run."""
        trans_id = trans["TransformationID"]
        applies = trans["Type"] in self.job_types or "NoUnusedDelay" in trans
        return (applies and trans["Status"] != st.FLUSH and self.leftover.get(trans_id) == unused
                and now - self.last_run.get(trans_id, -1e18) < self.cfg.no_unused_delay)

    def _run_plugin(self, trans: dict[str, Any], data: dict[str, list[str]],
                    files: list[dict[str, Any]]) -> list[tuple[Any, list[str]]] | None:
        """The plugin's (SE, LFNs) tasks; None when it failed (logged). A plugin may hand any 2-sequences with
        any iterable of LFNs (DIRAC's TaskManager takes them so): they become (SE, list) here, once, so that
        the compiled agents' typed tasks accept what the interpreted ones did."""
        world = self.world
        trans_id = trans["TransformationID"]
        plugin = world.runtime(trans_id).make_plugin()
        plugin.setParameters(trans)
        plugin.setInputData(data)
        plugin.setTransformationFiles(files)
        result = plugin.run()
        if not result["OK"]:
            world.sim.log.log(world.sim.now, "plugin.error", f"trans:{trans_id}", trans["Plugin"], result["Message"][:200])
            return None
        return [(se, list(lfns)) for se, lfns in result["Value"]]

    def _create_tasks(self, trans_id: int, tasks: list[tuple[Any, list[str]]]) -> tuple[int, bool]:
        """addTaskForTransformation for each task, applied once the calls (already paid) have returned:
        a task whose files changed meanwhile is refused by the DB, as in DIRAC."""
        world = self.world
        assigned, all_created = 0, True
        with world.services.unmetered():
            for se, lfns in tasks:
                res = world.tsdb.addTaskForTransformation(trans_id, lfns, se, now=world.sim.now)
                if res["OK"]:
                    assigned += len(lfns)
                    self.tasks_created += 1
                else:
                    all_created = False
                    world.sim.log.log(world.sim.now, "task.refused", f"trans:{trans_id}", res["Message"][:80], se, float(len(lfns)))
        return assigned, all_created

    # ------------------------------------------------------------------ task managers
    def workflow_task_cycle(self) -> Steps:
        yield from self._task_manager_cycle(self.job_types, self.world.wms.submit_task)

    def request_task_cycle(self) -> Steps:
        yield from self._task_manager_cycle(self.dm_types, self.world.rms.submit_task)

    def _task_manager_cycle(self, types: set[str], submit: Submit) -> Steps:
        world = self.world
        cfg = self.cfg
        monitored = self._transformations([st.ACTIVE, st.COMPLETING, st.STOPPED], types)
        ids = {t["TransformationID"] for t in monitored}
        yield from self._update_task_status(ids)
        yield from self._update_file_status(ids)
        yield from self._check_reserved(ids)
        to_submit = [t for t in monitored if t["Status"] in (st.ACTIVE, st.COMPLETING) and t["AgentType"] == st.AGENT_TYPE_AUTOMATIC]
        yield from run_in_threads(world.sim.env, (self._submit_tasks(trans, submit) for trans in to_submit), cfg.agent_threads)

    def _submit_tasks(self, trans: dict[str, Any], submit: Submit) -> Steps:
        """TaskManagerAgentBase.submitTasks for one transformation (one thread of the agent's pool)."""
        world = self.world
        trans_id = trans["TransformationID"]
        res = world.tsdb.getTasksToSubmit(trans_id, self.cfg.tasks_per_loop, now=world.sim.now)
        submitted: list[tuple[int, int]] = []
        for task in res["Value"]["JobDictionary"].values():
            external_id = yield from submit(trans, task)
            if external_id is not None:
                submitted.append((task["TaskID"], external_id))
        yield from self._update_db_after_submission(trans_id, submitted)

    def _update_db_after_submission(self, trans_id: int, submitted: list[tuple[int, int]]) -> Steps:
        """updateDBAfterTaskSubmission: Submitted + ExternalID per task, visible when the calls return."""
        world = self.world
        if submitted:
            world.services.meter("TransformationDB", "setTaskStatusAndWmsID", len(submitted))
        yield from world.services.pay(TS)
        if submitted:  # one setTaskStatusAndWmsID per task, applied together (metered just above)
            with world.services.unmetered():
                world.tsdb.set_tasks_status_and_wms_ids(trans_id, submitted, st.TASK_SUBMITTED, now=world.sim.now)

    def note_external_status(self, trans_id: int, task_id: int, status: str, final: bool, now: float) -> None:
        """Job/request status changed at ``now``: remember it for the next MonitorTasks/MonitorFiles pass.

        Re-inserting keeps each queue in time order, so a pass pops due entries from the front only.
        """
        seen = (status, now)
        pending = self.task_updates.get(trans_id)  # _requeue, inlined: once per job status change
        if pending is None:
            pending = self.task_updates[trans_id] = {}
        else:
            pending.pop(task_id, None)
        pending[task_id] = seen
        if final and self.cfg.monitor_files:  # nobody drains this queue when MonitorFiles is off
            _requeue(self.finished_jobs, trans_id, task_id, seen)

    def forget(self, trans_id: int) -> None:
        """A transformation reached a final status: no agent looks at it again, drop its agent memory."""
        for memory in (self.queries, self.pending_inputs, self.matching, self.task_updates, self.finished_jobs,
                       self.leftover, self.last_run):
            memory.pop(trans_id, None)

    def _due(self, pending: dict[int, dict[int, tuple[str, float]]], ids: set[int]) -> dict[int, dict[int, str]]:
        """The entries older than the monitoring age, taken off their queues: by TransformationID (ascending),
        {TaskID: latest status} in queue order."""
        cutoff = self.world.sim.now - self.cfg.monitoring_age
        due: dict[int, dict[int, str]] = {}
        for trans_id in sorted(ids):
            queue = pending.get(trans_id)
            if not queue:
                continue
            taken: dict[int, str] = {}  # one pass over the front (a fresh iterator per entry rescans the deleted ones)
            for task_id, (status, when) in queue.items():
                if when > cutoff:
                    break
                taken[task_id] = status
            if taken:
                for task_id in taken:
                    del queue[task_id]
                due[trans_id] = taken
        return due

    def _update_task_status(self, ids: set[int]) -> Steps:
        """MonitorTasks: copy job/request statuses older than 10 min onto the tasks, as
        TaskManagerAgentBase.updateTaskStatus does: one setTaskStatus call per transformation and
        new status with all its TaskIDs, which makes one UPDATE per task (TransformationDB.setTaskStatus)."""
        world = self.world
        services = world.services
        due = self._due(self.task_updates, ids)
        waiting = sum(len(self.task_updates.get(t, ())) for t in ids)
        services.meter("TransformationDB", "getTransformationTasks", max(1, waiting + sum(map(len, due.values()))))
        for trans_id, statuses in due.items():
            by_status: dict[str, list[int]] = {}
            for task_id, status in statuses.items():
                by_status.setdefault(status, []).append(task_id)
            for status, task_ids in by_status.items():
                with services.unmetered():
                    world.tsdb.setTaskStatus(trans_id, task_ids, status, now=world.sim.now)
                services.meter("TransformationDB", "setTaskStatus", len(task_ids), queries=len(task_ids))
        yield from services.pay(TS)

    def _update_file_status(self, ids: set[int]) -> Steps:
        """MonitorFiles: files still Assigned to a finished task -> Processed (Done) or Unused (Failed);
        a Killed job's files stay Assigned (only the CTA failover agent's Reassign frees them).
        As TaskManagerAgentBase.updateFileStatus: one getTransformationFiles per transformation (its
        finished tasks' Assigned files), then one setFileStatusForTransformation per new status."""
        world = self.world
        if not self.cfg.monitor_files:
            return
        for trans_id, statuses in self._due(self.finished_jobs, ids).items():
            files = world.tsdb.getTransformationFiles(
                {"TransformationID": trans_id, "TaskID": list(statuses), "Status": st.ASSIGNED})["Value"]
            runtime = world.runtime(trans_id)
            by_new: dict[str, list[str]] = {}
            for record in files:
                new = runtime.file_status_for_final(statuses[record["TaskID"]])
                if new is not None:
                    by_new.setdefault(new, []).append(record["LFN"])
            for new, lfns in by_new.items():
                world.tsdb.setFileStatusForTransformation(trans_id, new, lfns, now=world.sim.now)
        yield from world.services.pay(TS)

    def _check_reserved(self, ids: set[int]) -> Steps:
        """CheckReserved: tasks Reserved for over 1 h and never submitted go back to Created."""
        world = self.world
        older = world.sim.now - self.cfg.check_reserved_age
        for trans_id in ids:
            res = world.tsdb.getTransformationTasks({"TransformationID": trans_id, "ExternalStatus": st.TASK_RESERVED}, older=older,
                                                    timeStamp="LastUpdateTime")
            stale = [task["TaskID"] for task in res["Value"]]
            if stale:
                world.tsdb.setTaskStatus(trans_id, stale, st.TASK_CREATED, now=world.sim.now)
        yield from world.services.pay(TS)

    # ------------------------------------------------------------------ MCExtensionAgent
    def mc_extension_cycle(self) -> Steps:
        world, cfg = self.world, self.cfg
        for trans in self._transformations([st.ACTIVE], set(cfg.extendable_types)):
            n = self.tasks_to_extend(trans)
            if n > 0:
                world.services.meter("TransformationDB", "extendTransformation", n)
            yield from world.services.pay(TS)
            if n > 0:  # the new tasks exist once the call has returned
                with world.services.unmetered():
                    world.tsdb.extendTransformation(trans["TransformationID"], n, now=world.sim.now)
                self.tasks_created += n

    def tasks_to_extend(self, trans: dict[str, Any]) -> int:
        """MCExtensionAgent's rule: MaxNumberOfTasks - (Total - Failed), clamped to [0, TasksPerIteration]."""
        cfg = self.cfg
        max_tasks = int(trans.get("MaxNumberOfTasks") or 0)
        if max_tasks <= 0:
            return 0
        stats = self.world.tsdb.getTransformationTaskStats(trans["TransformationID"])["Value"]
        fixed = tasks_to_create(supply_mode(self.world.scenario.supply, self.world.runtime(trans["TransformationID"]).name),
                                max_tasks, stats)
        if fixed is not None:  # fixed supply (issue 15): MaxNumberOfTasks once, failures not replaced
            return fixed
        total, failed = stats.get("TotalCreated", 0), stats.get(st.TASK_FAILED, 0)
        if total and failed / total > cfg.mc_max_failure_rate:
            return 0
        if stats.get(st.TASK_DONE, 0) >= max_tasks or stats.get(st.TASK_WAITING, 0) > cfg.mc_max_waiting_jobs:
            return 0
        return max(0, min(cfg.mc_tasks_per_iteration, max_tasks - (total - failed)))


def _requeue(queues: dict[int, dict[int, tuple[str, float]]], trans_id: int, task_id: int, seen: tuple[str, float]) -> None:
    """Put a task's latest (status, time) at the end of its transformation's queue (one entry per task)."""
    pending = queues.get(trans_id)
    if pending is None:
        pending = queues[trans_id] = {}
    elif task_id in pending:
        del pending[task_id]
    pending[task_id] = seen
