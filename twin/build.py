"""Scenario -> World: instantiate the grid and the DIRAC systems for one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from twin.dirac.catalog import FILE_META, FileCatalog, FileCatalogClient
from twin.dirac.datamanager import DataManager
from twin.dirac.operator import Operator
from twin.dirac.resources import GridResources, ScenarioOperations
from twin.dirac.rms_system import RequestManagement
from twin.dirac.services import ServiceLayer
from twin.dirac.transformation.agents import TransformationAgents
from twin.dirac.transformation.db import TransformationClient, TransformationDB
from twin.dirac.transformation.cleaning import TransformationCleaningAgent
from twin.dirac.transformation.failover import TransformationFailoverAgent
from twin.dirac.transformation.supply import OperatorExtensions
from twin.dirac.wms.system import WorkloadManagement
from twin.engine.simulation import Simulation
from twin.errors import ScenarioErrors, ScenarioError
from twin.grid.grid import build_grid
from twin.scenario.schema import Scenario
from twin.world import World

#: File-level metadata the jobs always set (cta-prod-managedata: runNumber, jobID).
JOB_FILE_FIELDS = {"runNumber": int}


def build_world(scenario: Scenario, events_path: Path | None = None, keep_events: bool = True) -> World:
    """A ready-to-run World; faults are checked against the built grid and scheduled.

    `events_path`: the event log streams there (see `Simulation`)."""
    run = scenario.run
    sim = Simulation(run.seed, run.sample_interval, event_log=run.event_log, events_path=events_path, keep_events=keep_events)
    grid = build_grid(sim, scenario.topology)
    problems = sim.faults.check(scenario.faults)
    if problems:
        raise ScenarioErrors([ScenarioError(scenario.name, *p.split(": ", 1)) for p in problems])
    cfg = scenario.dirac
    services = ServiceLayer(grid, cfg.service_cpu_ms, cfg.service_cpu_us_per_row, max_threads=cfg.service_max_threads,
                            rpc_timeout=cfg.rpc_timeout, flow=cfg.service_model == "flow",
                            connection_timeout=cfg.rpc_connection_timeout, max_waiting=cfg.service_max_waiting)
    catalog = FileCatalog(meter=services.meter)
    file_fields = declare_metadata_fields(catalog, scenario)
    fc = FileCatalogClient(catalog)
    tsdb = TransformationDB(meter=services.meter, clock=lambda: sim.now, catalog=fc,
                            files_max_reset_counter=scenario.dirac.files_max_reset_counter,
                            extendable_types=scenario.dirac.extendable_types)
    operations = ScenarioOperations(scenario.dirac.operations)
    resources = GridResources(grid, {site.name: site.cpu_share for site in scenario.topology.sites if site.cpu_share}, operations)
    world = World(scenario, sim, grid, services, catalog, fc, tsdb, TransformationClient(tsdb), resources, operations)
    world._file_fields = file_fields
    tsdb.on_file_status = world.trail.on_file_status
    tsdb.on_task_status = world.trail.on_task_status
    _size_databases(world)
    world.ts = TransformationAgents(world)
    world.datamanager = DataManager(world)
    world.wms = WorkloadManagement(world)
    world.rms = RequestManagement(world)
    world.operator = Operator(world)
    world.failover = TransformationFailoverAgent(world)
    world.cleaning = TransformationCleaningAgent(world)
    with services.unmetered():
        _register_initial_data(world)
    _register_gauges(world)
    services.start_background(scenario.dirac.background_rpcs)
    world.ts.start()
    world.failover.start()
    world.cleaning.start()
    world.wms.start()
    world.rms.start()
    world.operator.start()
    OperatorExtensions(world).start()
    world.start_monitor()
    sim.faults.schedule(scenario.faults)
    return world


def declare_metadata_fields(catalog: FileCatalog, scenario: Scenario) -> set[str]:
    """Declare every metadata key the scenario uses, typed from its values.

    Keys that vary per output file (a step's `job.file_metadata`) are file fields, as CTA sets
    nsb/split at upload; every other key is a directory field set on the transformation's
    output directory, as ProdDataManager does.
    """
    file_keys: dict[str, type] = dict(JOB_FILE_FIELDS)
    dir_keys: dict[str, type] = {}
    steps = [step for production in scenario.workload.productions for step in production.steps]
    initial = scenario.workload.initial_data
    for meta in [m for step in steps for m in step.job.file_metadata] + [m for data in initial for m in data.file_metadata]:
        _collect(file_keys, meta.items())
    sources = [s for step in steps for s in (step.output_metadata, step.input_query, step.job.model_query)]
    for source in sources + [data.metadata for data in initial]:
        _collect(dir_keys, ((k, v) for k, v in source.items() if k not in file_keys))
    for name, ftype in file_keys.items():
        catalog.add_metadata_field(name, ftype, FILE_META)
    for name, ftype in dir_keys.items():
        catalog.add_metadata_field(name, ftype)
    return set(file_keys)


def _register_initial_data(world: World) -> None:
    """Files present before the run: spread round-robin over their SEs, bytes accounted on the SEs."""
    catalog = world.catalog
    for data in world.scenario.workload.initial_data:
        directory = f"/ctao/data/{data.name}"
        world.make_directory(directory, data.metadata)
        size = int(data.size_mb * 1e6)
        for i in range(data.count):
            se = data.ses[i % len(data.ses)]
            meta = dict(data.file_metadata[i % len(data.file_metadata)]) if data.file_metadata else {}
            meta["runNumber"] = i
            catalog.add_file(f"{directory}/{i // 1000:03d}xxx/{data.name}_{i:07d}.dat", size, se, meta)
            world.grid.ses[se].add_replica_bytes(size)


def _collect(into: dict[str, type], items: Iterable[tuple[str, Any]]) -> None:
    for key, value in items:
        ftype = _value_type(value)
        if key not in into or (into[key] is int and ftype is float):
            into[key] = ftype
        elif into[key] is not ftype and {into[key], ftype} != {int, float}:
            into[key] = str


def _value_type(value: Any) -> type:
    if isinstance(value, dict):
        inner = [v for vs in value.values() for v in (vs if isinstance(vs, list) else [vs])]
        return _common_type(inner)
    if isinstance(value, list):
        return _common_type(value)
    return _common_type([value])


def _common_type(values: list[Any]) -> type:
    kinds = {type(v) for v in values if not isinstance(v, bool)}
    if kinds <= {int}:
        return int
    if kinds <= {int, float}:
        return float
    return str


def _size_databases(world: World) -> None:
    """Query cost grows with the tables the DB holds: catalog files, TS files, jobs, requests."""
    sizes = {
        "FileCatalogDB": lambda op: float(len(world.catalog)),
        "TransformationDB": lambda op: float(world.trail.file_rows),
        "JobDB": lambda op: float(world.wms.jobdb.rows),
        "ReqDB": lambda op: float(len(world.rms.db)),
    }
    for name, size_of in sizes.items():
        database = world.grid.databases.get(name)
        if database is not None:
            database.set_size_of(size_of, by_op=False)


def _register_gauges(world: World) -> None:
    metrics = world.sim.metrics
    metrics.gauge("catalog.files", lambda: float(len(world.catalog)))
    metrics.gauge("ts.tasks_created", lambda: float(world.ts.tasks_created))
    world.services.register_gauges(world.sim)
    for agent_name in ("TransformationAgent", "InputDataAgent", "WorkflowTaskAgent"):
        metrics.gauge(f"agent.cycles[{agent_name}]", lambda n=agent_name: float(next((a.cycles for a in world.sim.agents if a.name == n), 0)))
