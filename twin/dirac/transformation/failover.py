"""CTADIRAC's TransformationFailoverAgent (domain spec §5.4): task/job sync, completion,
flush and forced reassignment, each enabled per transformation type by the CS lists
`dirac.failover_complete_types`, `failover_flush_types`, `failover_reassign_types`.

"Parent" is the production link (ProductionTransformationLinks); the flush and reassign
counters live in agent memory, as in CTADIRAC, and are never reset in a run.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterator

from twin.dirac.transformation import status as st

if TYPE_CHECKING:
    from twin.dirac.context import FailoverContext

NO_INPUT_TYPES = {"MCSimulation"}
TS = "TransformationManager"


class TransformationFailoverAgent:
    def __init__(self, world: "FailoverContext") -> None:
        self.world = world
        cfg = world.scenario.dirac
        self.complete_types = set(cfg.failover_complete_types)
        self.flush_types = set(cfg.failover_flush_types)
        self.reassign_types = set(cfg.failover_reassign_types)
        self.max_flush = cfg.failover_max_flush
        self.max_reassign = cfg.failover_max_reassign
        self.flushes: Counter[int] = Counter()
        self.reassigned: Counter[str] = Counter()  # per LFN, as CTADIRAC's reassign_count

    @property
    def enabled(self) -> bool:
        return bool(self.complete_types or self.flush_types or self.reassign_types)

    def start(self) -> None:
        timing = self.world.scenario.dirac.failover_agent
        self.world.sim.agent("TransformationFailoverAgent", timing.polling_time, self.cycle, 53.0, timing.enabled and self.enabled)

    def cycle(self) -> Iterator[Any]:
        world = self.world
        transformations = world.tsdb.getTransformations({"Status": [st.ACTIVE]}, extraParams=True)["Value"]
        for trans in transformations:
            self._sync_tasks(trans["TransformationID"])
            self._handle(trans)
            yield from world.services.pay(TS)

    def _sync_tasks(self, trans_id: int) -> None:
        """Step 1: copy job statuses onto tasks at once (no 10-minute lag)."""
        for task_id, (status, _) in self.world.ts.task_updates.pop(trans_id, {}).items():
            self.world.tsdb.setTaskStatus(trans_id, task_id, status, now=self.world.sim.now)

    def _handle(self, trans: dict[str, Any]) -> None:
        world = self.world
        trans_id, trans_type = trans["TransformationID"], trans["Type"]
        parents = [world.tsdb.getTransformation(p)["Value"] for p in world.runtime(trans_id).parents]
        processed = self._processed(trans_id)
        if trans_type in self.complete_types and trans_type not in NO_INPUT_TYPES and processed:
            if not parents or all(self._processed(p["TransformationID"]) or p["Type"] in NO_INPUT_TYPES for p in parents):
                world.set_transformation_status(trans_id, st.COMPLETED)
                return
        if processed and trans_type not in NO_INPUT_TYPES:
            return
        if trans_type in self.flush_types and self._should_flush(trans, parents):
            self.flushes[trans_id] += 1
            world.set_transformation_status(trans_id, st.FLUSH)
            return
        if trans_type in self.reassign_types:
            self._reassign(trans_id)

    def _processed(self, trans_id: int) -> bool:
        stats = self.world.tsdb.getTransformationStats(trans_id)["Value"]
        return bool(stats.get("Total")) and stats.get(st.PROCESSED, 0) == stats["Total"]

    def _should_flush(self, trans: dict[str, Any], parents: list[dict[str, Any]]) -> bool:
        """Parent Completed (or none); then fewer Unused than a group, or all tasks final."""
        trans_id = trans["TransformationID"]
        if self.flushes[trans_id] >= self.max_flush or any(p["Status"] != st.COMPLETED for p in parents):
            return False
        unused = self.world.tsdb.getTransformationStats(trans_id)["Value"].get(st.UNUSED, 0)
        group = float(trans["GroupSize"])
        if 0 < unused < group:
            return True
        tasks = self.world.tsdb.getTransformationTaskStats(trans_id)["Value"]
        all_final = all(n == 0 or s in ("TotalCreated", st.TASK_DONE, "Completed", st.TASK_FAILED, st.TASK_KILLED) for s, n in tasks.items())
        return unused >= group and tasks.get("TotalCreated", 0) > 0 and all_final  # "... and tasks_infos"

    def _reassign(self, trans_id: int) -> None:
        """reassign_lfn: the Failed/Killed tasks that still have an Assigned file (get_tasks_by_file_status);
        ALL their files, whatever their status, forced Unused (bypasses MaxReset), each LFN at most
        MaxReassign+1 times over the agent's life (get_lfns_to_assign counts per LFN)."""
        world = self.world
        tsdb = world.tsdb
        assigned = tsdb.getTransformationFiles({"TransformationID": trans_id, "Status": st.ASSIGNED})["Value"]
        holding = sorted({record["TaskID"] for record in assigned})
        if not holding:
            return
        failed = tsdb.getTransformationTasks({"TransformationID": trans_id, "TaskID": holding,
                                              "ExternalStatus": [st.TASK_FAILED, st.TASK_KILLED]})["Value"]
        if not failed:
            return
        files = tsdb.getTransformationFiles({"TransformationID": trans_id, "TaskID": [t["TaskID"] for t in failed]})["Value"]
        lfns = []
        for record in files:
            lfn = record["LFN"]
            if self.reassigned[lfn] <= self.max_reassign:
                self.reassigned[lfn] += 1
                lfns.append(lfn)
        if lfns:
            tsdb.setFileStatusForTransformation(trans_id, st.UNUSED, lfns, force=True, now=world.sim.now)
