"""Service calls cost server CPU and database time; metered work is aggregated per (database, operation)."""

from __future__ import annotations

import math

import pytest

from conftest import minimal
from twin.dirac.services import ABANDONED_HANDSHAKE_S, ServiceLayer
from twin.engine.simulation import Simulation
from twin.grid.grid import build_grid


@pytest.fixture
def layer():
    sim = Simulation(seed=1)
    grid = build_grid(sim, minimal().topology)
    for db in grid.databases.values():
        db.service_cv = 0.0  # fixed service times: the arithmetic below is exact
    return sim, grid, ServiceLayer(grid, cpu_ms_per_call=10.0, cpu_us_per_row=0.0)


def test_each_metered_call_is_one_round_trip(layer):
    """N single calls of a cycle are N RPCs and N queries (DIRAC makes N round trips), not one N-row query."""
    sim, grid, services = layer
    for _ in range(1000):
        services.meter("TransformationDB", "getTransformationFiles", 1)
    services.meter("TransformationDB", "setFileStatusForTransformation", 5)

    def agent():
        yield from services.pay("TransformationManager")

    sim.env.process(agent())
    sim.env.run()
    db = grid.databases["TransformationDB"]
    assert db.queries == 1001 and db.queries_by_op["getTransformationFiles"] == 1000
    assert services.calls["TransformationManager"] == 1001
    # the pools start cold and empty: no wait, the caller pays service times one after the other
    expected = 1001 * 0.010 + 1000 * db.service_mean("getTransformationFiles", 1) + db.service_mean("setFileStatusForTransformation", 5)
    assert sim.env.now == pytest.approx(expected)
    assert services.instances["TransformationManager"][0].calls == 1001


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


# ---------------------------------------------------------------- flow-level model vs exact queueing
from twin.dirac import footprint as fp  # noqa: E402
from twin.engine.queueing import FlowPool, ServerPool, erlang_c, mmc_wait  # noqa: E402
from twin.scenario import schema  # noqa: E402


def closed_form_wq(lam: float, mu: float, c: int) -> float:
    a = lam / mu
    tail = a**c / math.factorial(c) * c / (c - a)
    return tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail) / (c * mu - lam)


@pytest.mark.parametrize("c,a", [(1, 0.5), (4, 3.2), (16, 12.0), (40, 30.0), (4, 0.01)])
def test_erlang_c_recursion_matches_the_closed_form(c, a):
    assert mmc_wait(c, a, 1.0) == pytest.approx(closed_form_wq(a, 1.0, c), rel=1e-9)
    assert erlang_c(c, c + 1) == 1.0 and mmc_wait(c, c, 1.0) == math.inf


def db_layer(flow: bool, connections: int = 4, seed: int = 3):
    """One DB (4 connections, 10 ms queries, exponential) on a 64-core host, no service CPU."""
    sim = Simulation(seed=seed)
    topology = schema.Topology.model_validate({
        "sites": [{"name": "S", "ces": [{"name": "ce", "slots": 1}]}],
        "servers": [{"name": "h", "cores": 64, "ram_gb": 64, "services": ["TransformationManager"]}],
        "databases": [{"name": "TransformationDB", "server": "h", "connections": connections, "base_query_ms": 10,
                       "ms_per_million_rows": 0}]})
    grid = build_grid(sim, topology)
    return sim, grid, ServiceLayer(grid, cpu_ms_per_call=0.0, cpu_us_per_row=0.0, max_threads=500, flow=flow)


def poisson_calls(sim, services, rho: float, calls: int, connections: int = 4) -> list[float]:
    """Poisson RPCs, each one 10 ms query, offered load rho on the connections; returns latencies."""
    lam = rho * connections / 0.010
    gaps = sim.streams.get("test.arrivals").exponential(1 / lam, calls).tolist()
    out: list[float] = []

    def one():
        start = sim.env.now
        yield from services.call("TransformationManager", "getTransformationFiles")
        out.append(sim.env.now - start)

    def source():
        for gap in gaps:
            yield sim.env.timeout(gap)
            sim.env.process(one())

    sim.env.process(source())
    sim.env.run()
    return out


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_flow_latency_matches_exact_queueing_below_saturation(rho):
    """Cold pools: flow-level latency = service + Erlang-C wait, within 5 % of the exact per-call M/M/4 run."""
    exact = poisson_calls(*db_layer(flow=False)[::2], rho, 60_000)
    sim, grid, services = db_layer(flow=True)
    flow = poisson_calls(sim, services, rho, 60_000)
    analytic = 0.010 + closed_form_wq(rho * 400, 100.0, 4)
    mean_exact, mean_flow = sum(exact) / len(exact), sum(flow) / len(flow)
    print(f"rho {rho}: exact {mean_exact * 1e3:.2f} ms flow {mean_flow * 1e3:.2f} ms analytic {analytic * 1e3:.2f} ms")
    assert mean_exact == pytest.approx(analytic, rel=0.05)
    assert mean_flow == pytest.approx(analytic, rel=0.05)
    pool = grid.databases["TransformationDB"].flow
    assert pool.hot_switches == 0  # never needed the exact queue
    now = sim.env.now
    # Little's law on the fluid pool: mean busy connections = lambda x service, mean queue = lambda x Wq
    assert pool.busy_seconds() / now == pytest.approx(rho * 4, rel=0.03)
    assert pool.queue_seconds() / now == pytest.approx(len(flow) / now * (mean_flow - 0.010), rel=0.03)


def test_near_saturation_the_pool_queues_exactly():
    """At rho = 0.95 the flow pool turns hot and queues call by call: same mean latency as the exact model."""
    exact = poisson_calls(*db_layer(flow=False)[::2], 0.95, 40_000)
    sim, grid, services = db_layer(flow=True)
    flow = poisson_calls(sim, services, 0.95, 40_000)
    pool = grid.databases["TransformationDB"].flow
    assert pool.hot_switches >= 1 and pool.hot_seconds() > 0.5 * sim.env.now
    mean_exact, mean_flow = sum(exact) / len(exact), sum(flow) / len(flow)
    print(f"rho 0.95: exact {mean_exact * 1e3:.1f} ms flow {mean_flow * 1e3:.1f} ms")
    assert mean_flow == pytest.approx(mean_exact, rel=0.15)


def test_a_fault_makes_the_pool_exact_and_callers_wait_for_it():
    sim, grid, services = db_layer(flow=True)
    db = grid.databases["TransformationDB"]
    db.on_down({}, True)
    done: list[float] = []

    def caller():
        yield from services.call("TransformationManager", "getTransformationFiles")
        done.append(sim.env.now)

    sim.env.process(caller())
    sim.env.run(until=100)
    assert not done and db.flow.hot
    db.on_down({}, False)
    sim.env.run()
    assert done and done[0] == pytest.approx(100.0, abs=1.0)


def test_a_capacity_change_mid_slice_refreshes_the_flow_wait():
    """A fault that removes servers mid-slice must not leave the wait of the old servers cached."""
    sim = Simulation(seed=1)
    flow = FlowPool(ServerPool(sim.env, 10, "db"), slice_s=60.0)
    flow.charge(7.5 * 60.0, calls=6000)  # offered load 7.5 of 10 in the first slice
    sim.env.run(until=61.0)  # the next slice: its wait reads the previous one
    before = flow.charge(0.0, calls=0)
    assert 0 < flow.wait() < math.inf and before == 0.0
    flow.set_capacity(6)  # 7.5 erlangs on 6 servers: no finite M/M/c wait
    assert flow.wait() == math.inf
    flow.set_capacity(10)
    assert flow.wait() == pytest.approx(0.075 * erlang_c(10, 7.5) / (10 - 7.5))  # s = 450 s / 6000 calls


def test_a_repeated_flow_entry_is_repriced_when_the_table_grows_or_the_db_slows(layer):
    """A route's FlowOps keeps its last price only while the table size and the db_slow factor stay put."""
    from twin.grid.servers import FlowOps

    sim, grid, services = layer
    db = grid.databases["JobDB"]
    jobs = [0.0]
    db.set_size_of(lambda op: jobs[0], by_op=False)  # one size per database, as the built twin's
    flow = FlowOps([("Jobs", 2, 2), ("LoggingInfo", 1, 1)], 3, 0)
    first = db.flow_entry(flow)
    assert first == pytest.approx(3 * db.service_mean("Jobs"), rel=1e-9)
    assert db.flow_entry(flow) == pytest.approx(first, rel=1e-9)
    jobs[0] = 4e6
    grown = db.flow_entry(flow)
    assert grown == pytest.approx(3 * db.service_mean("Jobs"), rel=1e-9) and grown > first
    db.on_slow({"factor": 3.0}, True)
    assert db.flow_entry(flow) == pytest.approx(3 * grown, rel=1e-9)
    assert db.queries == 12 and db.queries_by_op["Jobs"] == 8 and db.queries_by_op["LoggingInfo"] == 4


def test_a_pay_not_iterated_keeps_its_work_pending(layer):
    """`pay` takes the pending work only when the caller runs it: forgetting `yield from` loses nothing."""
    sim, grid, services = layer
    services.meter("JobDB", "setJobStatus", 1)
    services.pay("JobStateUpdate")  # not iterated: charges nothing, keeps the work

    def agent():
        yield from services.pay("JobStateUpdate")

    sim.env.process(agent())
    sim.env.run()
    assert grid.databases["JobDB"].queries == 1 and services.calls["JobStateUpdate"] == 1


def test_a_pay_iterated_late_takes_only_the_work_pending_then(layer):
    """When it is iterated, a `pay` takes the pending work (what was deferred to its service joined it when
    `pay` was called), not what was deferred since, and it is one RPC even if the work has gone meanwhile:
    what it charges does not depend on when its caller iterates."""
    sim, grid, services = layer
    db = grid.databases["JobDB"]
    services.meter("JobDB", "setJobStatus", 1)
    late = services.pay("JobStateUpdate")
    services.defer("JobStateUpdate")  # a callback moves the pending work aside, for the service's next pay

    def agent(payment):
        yield from payment

    sim.env.process(agent(late))
    sim.env.run()
    assert (services.calls["JobStateUpdate"], db.queries) == (1, 0)
    sim.env.process(agent(services.pay("JobStateUpdate")))
    sim.env.run()
    assert (services.calls["JobStateUpdate"], db.queries) == (2, 1)


def _exact_layer(hosts: int = 1, threads: int = 15, cpu_s: float = 100.0, **kwargs):
    """`hosts` copies of JobMonitoring, exact queueing, every call `cpu_s` of host CPU (no DB)."""
    sim = Simulation(seed=1)
    topology = schema.Topology.model_validate({
        "sites": [{"name": "S", "ces": [{"name": "ce", "slots": 1}]}],
        "servers": [{"name": f"h{i}", "cores": 64, "ram_gb": 64, "services": ["JobMonitoring"]} for i in range(hosts)]})
    grid = build_grid(sim, topology)
    services = ServiceLayer(grid, cpu_ms_per_call=cpu_s * 1000.0, cpu_us_per_row=0.0, max_threads=threads, flow=False, **kwargs)
    return sim, services, services.instances["JobMonitoring"]


def test_service_threads_bound_concurrency_and_the_client_retries():
    """MaxThreads = 15: 30 simultaneous 100 s calls. The second wave's connections time out after 10 s
    (DEFAULT_CONNECTION_TIMEOUT) and are re-sent twice (3 attempts to one URL), then the callers wait;
    the 45 abandoned connections cost the threads one failed handshake each (3 rounds of 2 ms) before them."""
    sim, services, (inst,) = _exact_layer()
    for _ in range(30):
        sim.env.process(services.call("JobMonitoring", "getJobs"))
    sim.env.run()
    assert sim.env.now == pytest.approx(200.0 + 3 * ABANDONED_HANDSHAKE_S)
    assert (inst.retries, inst.failed, inst.timeouts) == (30, 15, 0)
    assert inst.threads.pool.arrivals == 15 + 15 * 3 + 15  # first wave, three attempts each, the last wait


def test_a_handler_slower_than_the_rpc_timeout_is_counted_not_resent():
    """InnerRPCClient.executeRPC: receiveData times out after the RPC timeout; no re-send, the server finishes."""
    sim, services, (inst,) = _exact_layer(rpc_timeout=150.0, cpu_s=200.0)
    for _ in range(3):
        sim.env.process(services.call("JobMonitoring", "getJobs"))
    sim.env.run()
    assert (inst.calls, inst.timeouts, inst.retries) == (3, 3, 0) and sim.env.now == pytest.approx(200.0)


@pytest.mark.parametrize("hosts, attempts, sleeps", [(1, 3, 2 * 2.0), (2, 6, 2 * 1.5), (3, 6, 1 * 1.0)])
def test_resends_follow_baseclient_connect(hosts, attempts, sleeps):
    """BaseClient._connect: nbOfRetry (3, or 2 beyond 2 URLs) x nbOfUrls attempts, each URL banned in turn, a
    sleep of 3 s / nbOfUrls (2 s for one URL) each time every URL is banned; then the call fails."""
    sim, services, instances = _exact_layer(hosts=hosts, threads=1, cpu_s=1000.0)
    for _ in range(hosts):  # one long call on every copy: their only thread is busy
        sim.env.process(services.call("JobMonitoring", "getJobs"))
    sim.env.run(until=1.0)
    gave_up = []

    def caller():
        yield from services.call("JobMonitoring", "getJobs")

    def watch():
        while not sum(i.failed for i in instances):
            yield sim.env.timeout(0.5)
        gave_up.append(sim.env.now)

    sim.env.process(caller())
    sim.env.process(watch())
    sim.env.run()
    assert sum(i.retries for i in instances) == attempts - 1
    assert sum(i.failed for i in instances) == 1
    assert sorted(i.threads.pool.arrivals for i in instances)[-1] >= 2  # every URL was tried (arrivals per copy)
    assert sum(i.threads.pool.arrivals for i in instances) == hosts + attempts + 1
    assert gave_up[0] == pytest.approx(1.0 + attempts * 10.0 + sleeps, abs=0.5)


def test_retries_amplify_the_load_near_saturation():
    """One thread, a burst of 20 one-second calls: without retries it ends at 20 s; with DIRAC's 10 s connect
    timeout the callers that waited too long re-send, their abandoned connections hold the thread for a failed
    handshake each and the re-sent ones queue behind later work, so the burst ends later and waits longer."""
    def burst(**kwargs):
        sim, services, (inst,) = _exact_layer(threads=1, cpu_s=1.0, **kwargs)
        ends = []

        def caller():
            yield from services.call("JobMonitoring", "getJobs")
            ends.append(sim.env.now)

        for _ in range(20):
            sim.env.process(caller())
        sim.env.run()
        return inst, ends

    patient, ends_patient = burst(connection_timeout=1e9)
    impatient, ends_impatient = burst()
    assert patient.retries == 0 and max(ends_patient) == pytest.approx(20.0)
    assert patient.threads.pool.arrivals == patient.threads.pool.granted == 20
    pool = impatient.threads.pool
    assert impatient.retries > 0
    assert pool.arrivals == 20 + impatient.retries + impatient.failed  # re-sends and the callers' last waits
    abandoned = pool.granted - 20  # every connection got a thread: the 20 calls and the abandoned ones
    assert abandoned == impatient.retries + impatient.failed  # each timed-out attempt left one behind
    # the thread idles while the callers sleep before re-sending: the same 20 s of work ends later
    assert max(ends_impatient) > 20.0 + abandoned * ABANDONED_HANDSHAKE_S
    assert sum(ends_impatient) > sum(ends_patient)


def test_a_throttled_service_refuses_connections():
    """ServiceReactor: a queue longer than MaxWaitingPetitions refuses new connections (the client re-sends)."""
    sim, services, (inst,) = _exact_layer(threads=1, cpu_s=100.0, max_waiting=3)
    for _ in range(8):
        sim.env.process(services.call("JobMonitoring", "getJobs"))
    sim.env.run(until=1.0)
    assert inst.threads.pool.queue_length == 4 and inst.retries == 0  # 1 running, 4 queued; 3 refused, asleep
    sim.env.run(until=5.0)
    assert inst.retries == 3 * 2 and inst.failed == 3  # refused again at 2 s and 4 s, then the callers wait
    assert inst.threads.pool.queue_length == 4 + 3


def test_duplicated_service_round_robin_and_failover():
    sim = Simulation(seed=1)
    topology = schema.Topology.model_validate({
        "sites": [{"name": "S", "ces": [{"name": "ce", "slots": 1}]}],
        "servers": [{"name": "a", "cores": 8, "ram_gb": 8, "services": ["FileCatalog"]},
                    {"name": "b", "cores": 8, "ram_gb": 8, "services": ["FileCatalog"]}]})
    grid = build_grid(sim, topology)
    services = ServiceLayer(grid)
    for _ in range(10):
        sim.env.process(services.call("FileCatalog", "exists"))
    sim.env.run()
    a, b = services.instances["FileCatalog"]
    assert a.calls == b.calls == 5
    grid.servers["a"].on_down({}, True)
    for _ in range(10):
        sim.env.process(services.call("FileCatalog", "exists"))
    sim.env.run()
    assert a.calls == 5 and b.calls == 15


def test_heartbeat_stream_loads_the_pools_without_events():
    sim, grid, services = layer_with_jobdb()
    db = grid.databases["JobDB"]
    before = next(sim.env._eid)
    streams = [services.start_stream(fp.HEARTBEAT, 1800.0) for _ in range(1000)]
    sim.env.run(until=18_000)
    for stream in streams:
        services.stop_stream(stream)
    assert next(sim.env._eid) - before < 10  # 10,000 heartbeats, no event each
    assert services.calls_by_kind[fp.HEARTBEAT] == 10_000
    per_beat = db.demand("HeartBeatLoggingInfo", 2, 2) + db.demand("Jobs", 1, 1) + db.demand("JobCommands", 1, 1)
    assert db.flow.busy_seconds() == pytest.approx(10_000 * per_beat, rel=1e-6)


def test_heartbeat_streams_share_one_rate_table_per_table_size():
    """A running job's stream is a handle on a rate table shared by every stream opened at the same JobDB size;
    one opened after the table grew charges more, and each stop gives back the rate its own start added."""
    sim, grid, services = layer_with_jobdb()
    db = grid.databases["JobDB"]
    first, second = services.start_stream(fp.HEARTBEAT, 1800.0), services.start_stream(fp.HEARTBEAT, 1800.0)
    assert first.shared is second.shared and not hasattr(first, "__dict__")
    mean_small = db.service_mean("Jobs")
    db.set_table_rows(5e6)
    grown = services.start_stream(fp.HEARTBEAT, 1800.0)
    small, large = dict(first.shared.rates)[db.flow], dict(grown.shared.rates)[db.flow]
    assert db.service_mean("Jobs") > mean_small and large == pytest.approx(small * db.service_mean("Jobs") / mean_small)
    assert db.flow.bg_rate == pytest.approx(2 * small + large)
    sim.env.run(until=4000.0)
    services.stop_stream(grown)
    assert db.flow.bg_rate == pytest.approx(2 * small)
    services.stop_stream(first)
    services.stop_stream(second)
    assert db.flow.bg_rate == pytest.approx(0.0, abs=1e-12)
    assert services.calls_by_kind[fp.HEARTBEAT] == 3 * 2  # int(4000 / 1800) beats each


def layer_with_jobdb():
    sim = Simulation(seed=1)
    grid = build_grid(sim, minimal().topology)
    return sim, grid, ServiceLayer(grid)


def test_footprint_matches_a_job_life_in_the_twin():
    """Per RPC kind, the calls the twin charged equal the footprint table applied to the jobs it ran."""
    from twin.build import build_world
    from twin.dirac.wms import job_status as js

    world = build_world(minimal())
    world.wms.jobdb.retain_final = True  # read the final jobs' records (start/end times), not only counts
    world.run()
    kinds = world.services.calls_by_kind
    jobs = list(world.wms.jobdb.jobs.values())
    started = [j for j in jobs if j.start_time is not None]
    ended = [j for j in started if j.status in (js.DONE, js.FAILED) and j.end_time is not None]
    assert jobs and started and ended
    assert kinds["JobManager.submitJob"] == len(jobs)
    assert kinds["Matcher.requestJob+matched"] == len(started)
    assert kinds["JobStateUpdate.setJobStatusBulk"] == 3 * len(started) + 3 * len(ended)
    assert kinds["JobStateUpdate.setJobParameters"] == 2 * len(started) + 2 * len(ended)
    assert kinds["DataStore.commitRegisters"] == len(ended)
    assert kinds["FileCatalog.setMetadata"] == world.wms.outputs_registered
    beats = sum(int((j.end_time - j.start_time) / world.scenario.dirac.heartbeat_interval) for j in ended)
    assert kinds[fp.HEARTBEAT] == pytest.approx(beats, abs=len(ended))
    assert kinds["Optimizers.optimizeJob"] >= len(jobs)


# ---------------------------------------------------------------- agent thread pools (issue 11 item 14)
from twin.engine.queueing import run_in_threads  # noqa: E402


def test_agent_thread_pool_runs_15_in_flight_and_waits_for_all():
    """30 transformations of 10 s each: 20 s with DIRAC's 15 threads (the sum would be 300 s)."""
    sim = Simulation(seed=1)
    env = sim.env
    started: list[float] = []

    def one(seconds: float):
        started.append(env.now)
        yield env.timeout(seconds)

    def cycle():
        yield from run_in_threads(env, (one(10.0) for _ in range(30)), 15)
        return env.now

    proc = env.process(cycle())
    env.run()
    assert proc.value == pytest.approx(20.0)
    assert started == [0.0] * 15 + [10.0] * 15


def test_agent_thread_pool_cycle_lasts_the_longest_task():
    sim = Simulation(seed=1)
    env = sim.env

    def one(seconds: float):
        yield env.timeout(seconds)

    proc = env.process(run_in_threads(env, (one(s) for s in (5.0, 40.0, 7.0, 1.0)), 15))
    env.run()
    assert env.now == pytest.approx(40.0) and proc.triggered
    proc = env.process(run_in_threads(env, (one(s) for s in (5.0, 40.0, 7.0, 1.0)), 1))
    env.run()
    assert env.now == pytest.approx(40.0 + 53.0)  # one thread: the sum


# ---------------------------------------------------------------- bottleneck verdicts (issue 14 "Done when")
def _verdict(path: str, duration: str) -> dict:
    from pathlib import Path

    from twin.build import build_world
    from twin.scenario.loader import load_scenario
    from twin.summary import summarize

    world = build_world(load_scenario(Path(__file__).parent.parent / path, {"run.duration": duration}))
    world.run()
    return summarize(world)


@pytest.mark.slow
def test_bottleneck_names_the_jobdb_in_the_what_if_and_slots_in_the_baseline():
    whatif = _verdict("scenarios/whatif-jobdb-bottleneck.yaml", "12h")
    first = whatif["bottleneck"]
    assert first["kind"] in ("database connections", "server cores")
    assert "JobDB" in first["verdict"]  # named directly, or as the DB making most of its host's load
    assert "agent cycles overrun" in first["chain"]
    base = _verdict("scenarios/prod5b-baseline.yaml", "12h")
    assert base["bottleneck"]["kind"] == "site slots"
    assert base["databases"]["JobDB"]["utilization"] < 0.05 < whatif["databases"]["JobDB"]["utilization"]


# ---------------------------------------------------------------- background load and initial table sizes
def test_background_rpcs_load_the_services_for_the_whole_run():
    from twin.build import build_world

    scenario = minimal(**{"dirac.background_rpcs": {"JobMonitoring.getJobsStatus": 2.0}, "run.duration": "2h"})
    world = build_world(scenario)
    world.run()
    db = world.grid.databases["JobDB"]
    per_call = db.demand("Jobs", 1, 1)
    assert db.flow.bg_rate >= 2.0 * per_call * 0.999  # 2 calls/s on top of the jobs' own heartbeats
    assert db.flow.busy_seconds() >= 2.0 * world.sim.now * per_call
    world.services.settle()
    world.services.settle()  # idempotent
    assert world.services.calls_by_kind["JobMonitoring.getJobsStatus"] == int(2.0 * world.sim.now)


def test_background_rpcs_count_in_the_host_cpu_the_verdict_reads():
    """A host's `server.cpu_pct` (the 'server cores' resource of the verdict) includes the background streams:
    50 calls/s of JobMonitoring.getJobsStatus add 50 x (service CPU + the JobDB query, same host) core-seconds/s."""
    from twin.build import build_world

    def wms_cpu_pct(rate: float) -> tuple[list[float], object]:
        world = build_world(minimal(**{"dirac.background_rpcs": {"JobMonitoring.getJobsStatus": rate} if rate else {}}))
        world.run()
        frame = world.sim.metrics.to_frame()
        return frame.loc[frame.time.isin([3600.0, 7200.0]), "server.cpu_pct[dirac-wms]"].tolist(), world

    quiet, _ = wms_cpu_pct(0.0)
    busy, world = wms_cpu_pct(50.0)
    per_call = world.services.cpu_ms_per_call / 1000.0 + world.grid.databases["JobDB"].demand("Jobs", 1, 1)
    added = 100.0 * 50.0 * per_call / world.grid.servers["dirac-wms"].total_cores
    assert [b - q for b, q in zip(busy, quiet)] == pytest.approx([added, added], rel=0.01)


def test_unknown_background_rpc_is_refused():
    from twin.errors import TwinError

    with pytest.raises((TwinError, ValueError), match="unknown RPC kind"):
        minimal(**{"dirac.background_rpcs": {"JobMonitoring.nope": 1.0}})


def test_initial_rows_make_queries_meet_a_realistically_sized_table():
    sim = Simulation(seed=1)
    topology = schema.Topology.model_validate({
        "sites": [{"name": "S", "ces": [{"name": "ce", "slots": 1}]}],
        "servers": [{"name": "h", "cores": 8, "ram_gb": 8}],
        "databases": [{"name": "FileCatalogDB", "server": "h", "base_query_ms": 2, "ms_per_million_rows": 2,
                       "initial_rows": 30_000_000}]})
    db = build_grid(sim, topology).databases["FileCatalogDB"]
    assert db.service_mean("getReplicas") == pytest.approx((2 + 2 * 30) / 1000)


def test_report_table_shows_resends_and_failures():
    from twin.report.services import services_table

    html = str(services_table({"services": {
        "Matcher@wms": {"calls": 21099, "threads": 15, "timeouts": 0, "retries": 19392, "failed": 9562},
        "JobManager@wms": {"calls": 10, "threads": 15, "timeouts": 0, "retries": 0, "failed": 0}}}))
    assert "re-sent" in html and "19,392" in html and "9,562" in html
    assert html.count('class="warn"') == 1  # the instance that re-sent, not the quiet one


# ---------------------------------------------------------------- flow charges enter the histograms as add_queued would
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _charged_histograms(db_rho: float, thread_rho: float, queries: int, calls: int) -> list[tuple]:
    """(counts, total, sum) of the JobDB's and the JobManager's histograms after one flow entry and one route."""
    from twin.grid.servers import FlowOps

    sim = Simulation(seed=1)
    grid = build_grid(sim, minimal().topology)
    services = ServiceLayer(grid, cpu_ms_per_call=10.0, cpu_us_per_row=0.0)
    db = grid.databases["JobDB"]
    instance = services._instance("JobManager")
    for pool, rho in ((db.flow, db_rho), (instance.threads, thread_rho)):  # the previous slice's load
        pool.charge(rho * pool.capacity * pool.slice_s, calls=1000)
    sim.env.run(until=61.0)
    db.flow_entry(FlowOps([("Jobs", queries, queries + 2), ("LoggingInfo", 1, 1)], queries + 1, 2))
    for _ in range(calls):
        services.meter("JobDB", "Jobs")
    services.charge_now(services.pay_routes("JobManager")[0])
    return [(hist.counts, hist.total, hist.sum) for hist in (db.latency, instance.latency)]


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 0.78), st.floats(0.0, 0.78), st.integers(1, 4), st.integers(1, 3))
def test_flow_charges_enter_each_histogram_as_add_queued_would(db_rho, thread_rho, queries, calls):
    """With a negligible queueing tail (Erlang C < SHORT_TAIL) a database's flow entry adds service + wait once
    for all its operations, else calls add_queued: the histograms (the database's and the service's, whose
    entry always goes through add_queued) equal those of a run where every entry goes through add_queued."""
    import twin.grid.servers as servers_module

    inline = _charged_histograms(db_rho, thread_rho, queries, calls)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(servers_module, "SHORT_TAIL", -1.0)  # never below: add_queued decides every entry
        plain = _charged_histograms(db_rho, thread_rho, queries, calls)
    assert inline == plain


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(fp.RPCS)), st.integers(-1, 4), st.integers(-1, 300)), max_size=12))
def test_metered_footprint_rpcs_pend_as_one_entry_per_query_says(calls):
    """meter_rpc's pending work: per (db, table) of each call, the RPCs once (on its first query), n x round
    trips, and n x round trips x max(1, rows) rows, as Rpc.queries reads; calls of n <= 0 meter nothing."""
    sim = Simulation(seed=1)
    services = ServiceLayer(build_grid(sim, minimal().topology))
    expected: dict[tuple[str, str], list[int]] = {}
    for kind, n, rows in calls:
        services.meter_rpc(kind, n, rows)
        if n <= 0:
            continue
        for i, (db, table, queries) in enumerate(fp.RPCS[kind].queries):
            entry = expected.setdefault((db, table), [0, 0, 0])
            entry[0] += n if i == 0 else 0
            entry[1] += n * queries
            entry[2] += n * queries * max(1, rows)
    assert {key: list(entry) for key, entry in services._pending.items()} == expected
    assert list(services._pending) == list(expected)  # and in the order the calls met them


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=80), st.integers(1, 4))
def test_per_operation_counts_of_repeated_flow_entries_equal_counting_each_entry(charges, listed_max):
    """A database counts a repeated flow entry's operations at the next fold: queries_by_op equals counting
    every entry and every stream's queries as they come, values and the order operations first appear in,
    also when the list of pending entries is folded early (a small LISTED_FLOWS)."""
    import twin.grid.servers as servers_module
    from twin.grid.servers import FlowOps

    sim = Simulation(seed=1)
    db = build_grid(sim, minimal().topology).databases["JobDB"]
    ops = [("Jobs", 2, 2), ("LoggingInfo", 1, 1), ("JobParameters", 3, 9), ("TaskQueues", 1, 1), ("Sites", 2, 2), ("Jobs", 1, 1)]
    flows = [FlowOps(ops[k:k + 2], sum(n for _, n, _ in ops[k:k + 2]), 0) for k in range(len(ops))]
    expected: dict[str, int] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(servers_module, "LISTED_FLOWS", listed_max)
        for k, stream in charges:
            if stream:  # a stream's calls counted between the entries
                db.count_queries(ops[k][0], 7)
                expected[ops[k][0]] = expected.get(ops[k][0], 0) + 7
                continue
            db.flow_entry(flows[k])
            for op, n, _ in flows[k].ops:
                expected[op] = expected.get(op, 0) + n
            if k == 3:  # a reader in the middle folds what waits
                assert dict(db.queries_by_op) == expected
    assert list(db.queries_by_op.items()) == list(expected.items())
    assert db.queries == sum(expected.values())


def test_queries_by_op_is_a_snapshot_not_the_live_counts():
    """A reference kept to `queries_by_op` must not go stale while the repeats of a listed flow entry are
    counted up on the entry: each read folds them in and hands out a copy."""
    from twin.grid.servers import FlowOps

    sim = Simulation(seed=1)
    db = build_grid(sim, minimal().topology).databases["JobDB"]
    flow = FlowOps([("Jobs", 2, 2)], 2, 0)
    db.flow_entry(flow)
    first = db.queries_by_op
    for _ in range(3):
        db.flow_entry(flow)
    assert first == {"Jobs": 2}  # taken before the repeats: unchanged
    assert db.queries_by_op == {"Jobs": 8} and db.queries == 8
    first["Jobs"] = 0
    assert db.queries_by_op == {"Jobs": 8}
