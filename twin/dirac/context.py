"""What each DIRAC component may see of the run: narrow, structural views of the World.

The World (the built model of a run) assembles the DIRAC systems and hands each one itself; each
system declares here only what it uses (the clock and logs, the service layer, the DBs and the
catalog, its sibling systems), so no DIRAC module imports the World's module and the World can
change without the DIRAC components depending on all of it. The World satisfies every view
structurally (typing.Protocol).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from twin.dirac.catalog import FileCatalog, FileCatalogClient
    from twin.dirac.datamanager import DataManager
    from twin.dirac.operator import Operator
    from twin.dirac.resources import GridResources, ScenarioOperations
    from twin.dirac.rms_system import RequestManagement
    from twin.dirac.services import ServiceLayer
    from twin.dirac.transformation.agents import TransformationAgents
    from twin.dirac.transformation.db import TransformationClient, TransformationDB
    from twin.dirac.transformation.failover import TransformationFailoverAgent
    from twin.dirac.transformation.runtime import TransformationRuntime
    from twin.dirac.wms.system import WorkloadManagement
    from twin.engine.simulation import Simulation
    from twin.grid.grid import Grid
    from twin.scenario.schema import Production, Scenario, Step


class Run(Protocol):
    """The scenario, the simulation (clock, streams, event log, agents) and the service costs."""

    scenario: Scenario
    sim: Simulation
    services: ServiceLayer


class Transformations(Protocol):
    """The TransformationDB and the twin's per-transformation runtime records."""

    tsdb: TransformationDB

    def runtime(self, trans_id: int) -> TransformationRuntime: ...

    def set_transformation_status(self, trans_id: int, status: str) -> None: ...


class DataManagerContext(Protocol):
    scenario: Scenario
    catalog: FileCatalog
    grid: Grid
    resources: GridResources

    def runtime(self, trans_id: int) -> TransformationRuntime: ...


class RequestContext(Run, Protocol):
    catalog: FileCatalog
    datamanager: DataManager
    grid: Grid
    resources: GridResources
    ts: TransformationAgents


class WorkloadContext(Run, Protocol):
    catalog: FileCatalog
    fc: FileCatalogClient
    grid: Grid
    operations: ScenarioOperations
    resources: GridResources
    datamanager: DataManager
    ts: TransformationAgents
    tsdb: TransformationDB

    @property
    def file_fields(self) -> set[str]: ...

    def runtime(self, trans_id: int) -> TransformationRuntime: ...


class AgentsContext(Run, Transformations, Protocol):
    catalog: FileCatalog
    datamanager: DataManager
    wms: WorkloadManagement
    rms: RequestManagement


class CleaningContext(Run, Transformations, Protocol):
    datamanager: DataManager
    wms: WorkloadManagement
    rms: RequestManagement


class FailoverContext(Run, Transformations, Protocol):
    ts: TransformationAgents


class OperatorContext(Run, Transformations, Protocol):
    def create_transformation(self, production: Production, step: Step, fields: dict[str, Any]) -> int: ...

    def start_transformation(self, trans_id: int) -> dict[str, Any]: ...

    def transformation_finished(self, trans_id: int) -> bool: ...

    def reopen(self, trans_id: int) -> None: ...


class SupplyContext(Run, Protocol):
    tsdb: TransformationDB
    ts: TransformationAgents
    operator: Operator
    runtimes: dict[int, TransformationRuntime]

    def reopen(self, trans_id: int) -> None: ...


class RuntimeContext(Protocol):
    """What a transformation's runtime needs to build its plugin and answer its gates."""

    scenario: Scenario
    sim: Simulation
    fc: FileCatalogClient
    tclient: TransformationClient
    resources: GridResources
    operations: ScenarioOperations
    failover: TransformationFailoverAgent

    def dirac_host(self) -> Any: ...
