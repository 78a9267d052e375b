"""The built model of one run: the simulated grid plus the DIRAC systems running on it.

`twin.build.build_world` assembles a World from a validated Scenario; `World.run`
advances it. Everything a report needs afterwards is read from the World by
`twin.summary` (the simulation never reads a report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from twin.dirac.transformation import status as st
from twin.dirac.transformation.runtime import TransformationRuntime
from twin.dirac.transformation.trail import StatusTrail
from twin.scenario.schema import Production, Scenario, Step

if TYPE_CHECKING:
    from twin.dirac.catalog import FileCatalog, FileCatalogClient
    from twin.dirac.datamanager import DataManager
    from twin.dirac.operator import Operator
    from twin.dirac.resources import GridResources, ScenarioOperations
    from twin.dirac.rms_system import RequestManagement
    from twin.dirac.services import ServiceLayer
    from twin.dirac.transformation.agents import TransformationAgents
    from twin.dirac.transformation.db import TransformationClient, TransformationDB
    from twin.dirac.transformation.cleaning import TransformationCleaningAgent
    from twin.dirac.transformation.failover import TransformationFailoverAgent
    from twin.dirac.wms.system import WorkloadManagement
    from twin.engine.simulation import Simulation
    from twin.grid.grid import Grid

OUTPUT_BASE = "/ctao/MC"


@dataclass
class World:
    scenario: Scenario
    sim: "Simulation"
    grid: "Grid"
    services: "ServiceLayer"
    catalog: "FileCatalog"
    fc: "FileCatalogClient"
    tsdb: "TransformationDB"
    tclient: "TransformationClient"
    resources: "GridResources"
    operations: "ScenarioOperations"
    runtimes: dict[int, TransformationRuntime] = field(default_factory=dict)
    ts: "TransformationAgents" = None  # type: ignore[assignment]
    datamanager: "DataManager" = None  # type: ignore[assignment]
    wms: "WorkloadManagement" = None  # type: ignore[assignment]
    rms: "RequestManagement" = None  # type: ignore[assignment]
    operator: "Operator" = None  # type: ignore[assignment]
    failover: "TransformationFailoverAgent" = None  # type: ignore[assignment]
    cleaning: "TransformationCleaningAgent" = None  # type: ignore[assignment]
    _dirac_host: Any = None
    _file_fields: set[str] = field(default_factory=set)
    finished_at: dict[int, float] = field(default_factory=dict)
    trail: StatusTrail = field(init=False)

    def __post_init__(self) -> None:
        self.trail = StatusTrail(self.sim.log)

    # ------------------------------------------------------------------ transformations
    def runtime(self, trans_id: int) -> TransformationRuntime:
        return self.runtimes[trans_id]

    def create_transformation(self, production: Production, step: Step, fields: dict[str, Any]) -> int:
        """addTransformation + the twin's runtime record + the output directory and its metadata."""
        now = self.sim.now
        fields = dict(fields)
        fields["groupSize"] = int(step.group_size) if float(step.group_size).is_integer() else step.group_size
        res = self.tsdb.addTransformation(**fields, now=now)
        if not res["OK"]:
            raise ValueError(res["Message"])
        trans_id = res["Value"]
        for key, value in self._additional_parameters(step).items():
            self.tsdb.setTransformationParameter(trans_id, key, value)
        out_dir = f"{OUTPUT_BASE}/{production.name}/{trans_id:08d}"
        self.make_directory(out_dir, step.output_metadata)
        parents = [self.operator.trans_ids[(production.name, p)] for p in step.parents if (production.name, p) in self.operator.trans_ids]
        self.runtimes[trans_id] = TransformationRuntime(self, trans_id, production, step, out_dir, parents)
        if step.input_query:
            initial = self.tsdb.getCounters("TransformationFiles", ["TransformationID"], {"TransformationID": trans_id})["Value"]
            self.ts.register_input_query(trans_id, dict(step.input_query), sum(n for _, n in initial))
        self.sim.log.log(now, "transformation.status", f"trans:{trans_id}", st.NEW, f"{production.name}/{step.name}")
        return trans_id

    def make_directory(self, path: str, metadata: dict[str, Any]) -> None:
        """A catalog directory carrying the directory-level part of `metadata` (file fields are set per file)."""
        self.catalog.create_directory(path)
        dir_meta = {k: v for k, v in metadata.items() if k not in self.file_fields}
        if dir_meta:
            self.catalog.set_metadata(path, dir_meta)

    @staticmethod
    def _additional_parameters(step: Step) -> dict[str, Any]:
        params = dict(step.plugin_params)
        if step.source_se:
            params["SourceSE"] = str(step.source_se)
        if step.target_se:
            params["TargetSE"] = str(step.target_se)
        return params

    def start_transformation(self, trans_id: int) -> dict[str, Any]:
        """startTransformation: Active and AgentType Automatic."""
        res = self.tsdb.startTransformation(trans_id, now=self.sim.now)
        if res["OK"]:
            self.runtimes[trans_id].started_at = self.sim.now
            self.sim.log.log(self.sim.now, "transformation.status", f"trans:{trans_id}", st.ACTIVE, self.runtimes[trans_id].name)
        return res

    def set_transformation_status(self, trans_id: int, status: str) -> None:
        self.tsdb.setTransformationParameter(trans_id, "Status", status, now=self.sim.now)
        self.sim.log.log(self.sim.now, "transformation.status", f"trans:{trans_id}", status, self.runtimes[trans_id].name)
        if status in st.TRANSFORMATION_FINAL_STATES and status != st.CLEANING:
            self.ts.forget(trans_id)

    @property
    def file_fields(self) -> set[str]:
        return self._file_fields

    @property
    def ts_file_rows(self) -> int:
        """TransformationFiles rows created so far (the TSDB size its query cost reads)."""
        return self.trail.file_rows

    # ------------------------------------------------------------------ completion
    def transformation_finished(self, trans_id: int) -> bool:
        """Finished now: no more work can appear (see `is_finished`). The first time it holds its time is
        recorded for the reports; a transformation that gets work again loses its finish time."""
        finished = self.is_finished(trans_id)
        if finished and trans_id not in self.finished_at:
            self.finished_at[trans_id] = self.sim.now
            self._log_completion(trans_id, "transformation.finished")
        elif not finished and trans_id in self.finished_at:
            del self.finished_at[trans_id]
            self._log_completion(trans_id, "transformation.reopened")
        return finished

    def is_finished(self, trans_id: int) -> bool:
        """No more work can appear, judged now: final status, or parents finished, no pending input, every
        task final, nothing to extend, no file Assigned (or Unused while a Flush is to come). Not sticky:
        leftover files regrouped after a move, or new input, make a finished transformation busy again."""
        runtime = self.runtimes[trans_id]
        trans = self.tsdb.getTransformation(trans_id, extraParams=True)["Value"]
        if trans["Status"] in (st.COMPLETED, st.CLEANED, st.ARCHIVED, st.TRANSFORMATION_CLEANED, st.DELETED):
            return True
        if runtime.started_at is None or trans["Status"] == st.FLUSH:
            return False
        if any(not self.is_finished(p) for p in runtime.parents):
            return False
        if self.ts.pending_inputs.get(trans_id):
            return False
        stats = self.tsdb.getTransformationTaskStats(trans_id)["Value"]
        if any(n for status, n in stats.items() if status != "TotalCreated" and status not in st.TASK_FINAL_STATES):
            return False
        if trans["Type"] in self.scenario.dirac.extendable_types:
            if self.ts.tasks_to_extend(trans) > 0 or (runtime.step.max_tasks and stats.get("TotalCreated", 0) == 0):
                return False
        elif not self.ts.idle.get(trans_id, False):
            return False
        return not self._unsettled_files(trans_id)

    def reopen(self, trans_id: int) -> None:
        """An operator action revives a transformation: the agents look at it (and its children) again."""
        self.ts.idle[trans_id] = False
        for child, runtime in self.runtimes.items():
            if trans_id in runtime.parents:
                self.reopen(child)

    def _log_completion(self, trans_id: int, kind: str) -> None:
        trans = self.tsdb.getTransformation(trans_id)["Value"]
        self.sim.log.log(self.sim.now, kind, f"trans:{trans_id}", trans["Status"], self.runtimes[trans_id].name)

    def _unsettled_files(self, trans_id: int) -> int:
        """Files still Assigned (outcome not yet written back), or Unused while a Flush is still to come."""
        counts = self.tsdb.getTransformationStats(trans_id)["Value"]
        unused = counts.get(st.UNUSED, 0) if self.runtimes[trans_id].awaits_flush() else 0
        return counts.get(st.ASSIGNED, 0) + unused

    def check_finished(self) -> None:
        """The FinishMonitor's cycle: evaluate every transformation, recording finish times on a fixed grid."""
        with self.services.unmetered():
            for trans_id in self.runtimes:
                self.transformation_finished(trans_id)

    def all_finished(self) -> bool:
        """Every submission made, no scheduled action left, every transformation recorded finished by the
        monitor *and* still finished now. Records nothing, so finish times do not depend on when the caller
        looks (e.g. run slices)."""
        operator = self.operator
        if not (self.runtimes and operator.unsubmitted == 0 and operator.pending_actions == 0
                and all(t in self.finished_at for t in self.runtimes)):
            return False
        with self.services.unmetered():
            return all(self.is_finished(t) for t in self.runtimes)

    def start_monitor(self, period: float = 600.0) -> None:
        """The twin's own observer (not a DIRAC agent): records when each transformation finishes."""
        self.sim.agent("twin.FinishMonitor", period, self.check_finished, period)

    # ------------------------------------------------------------------ run
    def dirac_host(self) -> Any:
        if self._dirac_host is None:
            from twin.dirac.host import GenuinePluginHost, Topology

            self._dirac_host = GenuinePluginHost(Topology.from_resources(self.resources, self.operations))
        return self._dirac_host

    def run(self, progress: Callable[[float], None] | None = None) -> float:
        run = self.scenario.run
        stop = self.all_finished if run.stop_when_done else None
        return self.sim.run(run.duration, progress=progress, stop_when=stop)
