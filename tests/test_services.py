"""Service calls cost server CPU and database time; metered work is aggregated per (database, operation)."""

from __future__ import annotations

import pytest

from conftest import minimal
from twin.dirac.services import ServiceLayer
from twin.engine.simulation import Simulation
from twin.grid.grid import build_grid


@pytest.fixture
def layer():
    sim = Simulation(seed=1)
    grid = build_grid(sim, minimal().topology)
    for db in grid.databases.values():
        db.service_cv = 0.0  # fixed service times: the arithmetic below is exact
    return sim, grid, ServiceLayer(grid, cpu_ms_per_call=10.0, cpu_us_per_row=0.0)


def test_metered_rows_are_paid_as_one_query_per_operation(layer):
    sim, grid, services = layer
    for _ in range(1000):
        services.meter("TransformationDB", "getTransformationFiles", 1)
    services.meter("TransformationDB", "setFileStatusForTransformation", 5)

    def agent():
        yield from services.pay("TransformationManager")

    sim.env.process(agent())
    sim.env.run()
    db = grid.databases["TransformationDB"]
    assert db.queries == 2 and db.queries_by_op["getTransformationFiles"] == 1
    expected = 0.010 + db.service_mean("getTransformationFiles", 1000) + db.service_mean("setFileStatusForTransformation", 5)
    assert sim.env.now == pytest.approx(expected)
    assert grid.servers["dirac-ts"].calls >= 1


def test_unmetered_bookkeeping_costs_nothing(layer):
    sim, grid, services = layer
    with services.unmetered():
        services.meter("JobDB", "selectJobs", 100)

    def agent():
        yield from services.pay("JobMonitoring")

    sim.env.process(agent())
    sim.env.run()
    assert grid.databases["JobDB"].queries == 0 and sim.env.now == 0.0


def test_slow_database_slows_the_caller(layer):
    sim, grid, services = layer
    base = grid.databases["JobDB"].service_mean("setJobStatus", 1)
    grid.databases["JobDB"].on_slow({"factor": 10}, True)

    def call():
        yield from services.call("JobStateUpdate", "setJobStatus")

    sim.env.process(call())
    sim.env.run()
    assert sim.env.now == pytest.approx(0.010 + 10 * base)


def test_work_deferred_from_a_callback_is_billed_to_its_service(layer):
    sim, grid, services = layer
    services.meter("FileCatalogDB", "getReplicas", 10)
    services.defer("Optimizers")
    assert services._pending == {}

    def executor_host_cycle():
        yield from services.pay("Optimizers")

    sim.env.process(executor_host_cycle())
    sim.env.run()
    assert grid.databases["FileCatalogDB"].queries_by_op["getReplicas"] == 1
