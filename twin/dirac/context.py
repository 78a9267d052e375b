"""What each DIRAC component may see of the run: narrow, structural views of the World.

The World (the built model of a run) assembles the DIRAC systems and hands each one itself; each
system declares here only what it uses (the clock and logs, the service layer, the DBs and the
catalog, its sibling systems), so no DIRAC module imports the World's module and the World can
change without the DIRAC components depending on all of it. The World satisfies every view
structurally (typing.Protocol). A sibling system is seen through a port (the few members its
neighbours use), not its class, so this module imports no DIRAC component that imports it back:
no import circle, not even a type-only one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator, Protocol

if TYPE_CHECKING:
    from twin.dirac.catalog import FileCatalog, FileCatalogClient
    from twin.dirac.resources import GridResources, ScenarioOperations
    from twin.dirac.rms import RequestDB
    from twin.dirac.services import ServiceLayer
    from twin.dirac.transformation.db import TransformationDB
    from twin.dirac.transformation.runtime import TransformationRuntime
    from twin.engine.simulation import Simulation
    from twin.grid.grid import Grid
    from twin.scenario.schema import Production, Scenario, Step


# ---------------------------------------------------------------- ports of the sibling systems
class ReplicaAnswer(Protocol):
    """One replica look-up as the TransformationAgent sees it (twin.dirac.datamanager.ReplicaLookup)."""

    replicas: dict[str, list[str]]
    missing: list[str]
    problematic: list[str]


class DataManager(Protocol):
    """twin.dirac.datamanager.DataManager: replica look-ups, the SEs a job may read, file removal."""

    def job_view(self, ses: Any) -> list[str]: ...

    def lookup(self, lfn: str) -> tuple[dict[str, str] | None, float]: ...

    def remove_file(self, lfn: str) -> None: ...

    def replicas_for(self, trans: dict[str, Any], lfns: list[str]) -> ReplicaAnswer: ...


class TaskSubmitter(Protocol):
    """The WMS (WorkflowTasks) or the RMS (RequestTasks): turn a task into a job or a request (a process
    returning the JobID / RequestID, None when not submitted)."""

    def submit_task(self, trans: dict[str, Any], task: dict[str, Any]) -> Generator[Any, Any, int | None]: ...


class Workload(TaskSubmitter, Protocol):
    """twin.dirac.wms.system.WorkloadManagement as the cleaning agent sees it (JobManager.killJob)."""

    def jobs_of(self, trans_id: int) -> list[Any]: ...

    def kill(self, job: Any, reason: str) -> None: ...


class Requests(TaskSubmitter, Protocol):
    """twin.dirac.rms_system.RequestManagement as the cleaning agent sees it (the requests of a task)."""

    db: RequestDB
    task_of: dict[int, tuple[int, int]]


class TransformationAgents(Protocol):
    """twin.dirac.transformation.agents.TransformationAgents: what the monitors and the supply see."""

    task_updates: dict[int, dict[int, tuple[str, float]]]
    tasks_created: int

    def note_external_status(self, trans_id: int, task_id: int, status: str, final: bool, now: float) -> None: ...


class Operator(Protocol):
    """twin.dirac.operator.Operator: the count of operator actions still to come."""

    pending_actions: int


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
    wms: TaskSubmitter
    rms: TaskSubmitter


class CleaningContext(Run, Transformations, Protocol):
    datamanager: DataManager
    wms: Workload
    rms: Requests


class FailoverContext(Run, Transformations, Protocol):
    ts: TransformationAgents


class OperatorContext(Run, Transformations, Protocol):
    def create_transformation(self, production: Production, step: Step, fields: dict[str, Any]) -> int: ...

    def start_transformation(self, trans_id: int) -> dict[str, Any]: ...

    def transformation_finished(self, trans_id: int) -> bool: ...

    def is_finished(self, trans_id: int) -> bool: ...

    def reopen(self, trans_id: int) -> None: ...


class SupplyContext(Run, Protocol):
    tsdb: TransformationDB
    ts: TransformationAgents
    operator: Operator
    runtimes: dict[int, TransformationRuntime]

    def reopen(self, trans_id: int) -> None: ...
