"""What the twin knows about one transformation beyond its TransformationDB row.

The TransformationDB holds DIRAC's view (type, plugin, status, files, tasks). The
runtime adds what the real system keeps in the job body and the CS: the step it came
from (job cost model, output metadata, data type), how its plugin is built (native or
genuine DIRAC), its output directory, and the readiness gate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from twin.dirac.catalog import LfnList
from twin.dirac.transformation import status as st
from twin.dirac.transformation.plugins import load_plugin_class
from twin.scenario.schema import Production, Scenario, Step

if TYPE_CHECKING:
    from twin.dirac.catalog import FileCatalogClient
    from twin.dirac.resources import GridResources, ScenarioOperations
    from twin.dirac.transformation.db import TransformationClient
    from twin.engine.simulation import Simulation


class FlushPolicy(Protocol):
    """What the TransformationFailoverAgent tells a runtime about flushes still to come."""

    flush_types: Any
    flushes: dict[int, int]
    max_flush: int


class RuntimeContext(Protocol):
    """What a transformation's runtime needs to build its plugin and answer its gates (declared here,
    beside its one user, so that twin.dirac.context can name TransformationRuntime without a circle)."""

    scenario: Scenario
    sim: Simulation
    fc: FileCatalogClient
    tclient: TransformationClient
    resources: GridResources
    operations: ScenarioOperations
    failover: FlushPolicy

    def dirac_host(self) -> Any: ...

DONE_STATES = {"Done", "Completed"}


@dataclass
class TransformationRuntime:
    world: "RuntimeContext"
    trans_id: int
    production: Production
    step: Step
    output_dir: str
    parents: list[int] = field(default_factory=list)
    started_at: float | None = None
    flushed: bool = False
    outputs: LfnList = None  # type: ignore[assignment]  # what its jobs registered (set below)
    _plugin_class: Any = None

    def __post_init__(self) -> None:
        if self.outputs is None:
            self.outputs = LfnList(self.world.fc.catalog)

    @functools.cached_property
    def name(self) -> str:
        """"production/step" (both names are fixed once the scenario is loaded; asked once per job)."""
        return f"{self.production.name}/{self.step.name}"

    @property
    def job_type(self) -> str:
        return self.step.job_type or self.step.type

    @property
    def is_request_type(self) -> bool:
        return self.step.type in self.world.scenario.dirac.data_manipulation_types

    def make_plugin(self) -> Any:
        """A fresh plugin object per cycle, as the TransformationAgent builds one per transformation."""
        world = self.world
        rng = world.sim.streams.python(f"plugin.{self.trans_id}")
        if self.step.plugin_source == "dirac":
            # CTADIRAC's class: it subclasses DIRAC's, so every DIRAC plugin is there too.
            return world.dirac_host().make_plugin(self.step.plugin, "ctadirac", transClient=world.tclient, fc=world.fc,
                                                  resources=world.resources, operations=world.operations, rng=rng)
        if self._plugin_class is None:
            self._plugin_class = load_plugin_class(self.step.plugin_class)
        return self._plugin_class(self.step.plugin, transClient=world.tclient, dataManager=None, fc=world.fc,
                                  resources=world.resources, operations=world.operations, rng=rng)

    def ready_to_create_tasks(self) -> bool:
        """The optional readiness gate: no task until the model this step needs is in the catalog."""
        query = self.step.job.model_query
        if not (self.step.readiness_gate and query):
            return True
        return bool(self.world.fc.findFilesByMetadata(query)["Value"])

    def awaits_flush(self) -> bool:
        """A Flush is still to come (operator or failover agent), so held partial groups are not final."""
        if self.production.flushes(self.step):
            return not self.flushed or self.production.operator_reflush
        failover = self.world.failover
        return self.step.type in failover.flush_types and failover.flushes[self.trans_id] < failover.max_flush

    def file_status_for_final(self, external_status: str) -> str | None:
        """MonitorFiles: job Done -> Processed, Failed -> Unused, Killed -> left Assigned (None), as
        WorkflowTasks.getSubmittedFileStatus maps them; request Done -> Processed, else Problematic."""
        if external_status in DONE_STATES:
            return st.PROCESSED
        if self.is_request_type:
            return st.PROBLEMATIC
        return st.UNUSED if external_status == st.TASK_FAILED else None
