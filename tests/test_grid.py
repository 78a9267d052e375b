"""The simulated infrastructure: analytic checks (M/M/c DB, tape throughput) and one test
per fault kind showing that it changes behaviour and leaves its trace in the event log."""

from __future__ import annotations

from typing import Any

import pytest

from test_queueing import erlang_c_wait
from twin.engine.simulation import Simulation
from twin.grid.grid import Grid, build_grid
from twin.grid.servers import CoreServer, Database
from twin.grid.site import Pilot
from twin.grid.tape import TapeSystem
from twin.grid.units import GB, TB
from twin.scenario import schema

SITES = ("A", "B")


def topology(**overrides: Any) -> schema.Topology:
    """Two sites, a disk SE at each, a tape SE at A, one DB host; override any section."""
    spec: dict[str, Any] = {
        "sites": [
            {"name": "A", "ses": ["A-Disk", "A-Tape"], "job_failure_prob": 0.1,
             "ces": [{"name": "ce-a", "slots": 10, "max_waiting_pilots": 10, "pilot_latency": 300, "pilot_lifetime": 86400}]},
            {"name": "B", "ses": ["B-Disk"], "ces": [{"name": "ce-b", "slots": 5}]},
        ],
        "storage": [
            {"name": "A-Disk", "site": "A", "capacity_tb": 10, "read_mbps": 1000, "write_mbps": 1000, "max_concurrency": 10},
            {"name": "B-Disk", "site": "B", "capacity_tb": 1, "max_concurrency": 10},
            {"name": "A-Tape", "site": "A", "kind": "tape", "capacity_tb": 1000,
             "tape": {"drives": 2, "drive_mbps": 100, "buffer_tb": 5}},
        ],
        "network": {"links": [{"source": "A", "destination": "B", "bandwidth_mbps": 1000, "concurrency": 10, "failure_prob": 0.0}]},
        "servers": [{"name": "db-host", "cores": 64, "ram_gb": 128, "services": ["TransformationManager"]}],
        "databases": [{"name": "TransformationDB", "server": "db-host", "connections": 4, "base_query_ms": 10, "ms_per_million_rows": 0}],
    }
    spec.update(overrides)
    return schema.Topology.model_validate(spec)


def world(seed: int = 1, faults: list[dict[str, Any]] = (), **overrides: Any) -> tuple[Simulation, Grid]:
    sim = Simulation(seed)
    grid = build_grid(sim, topology(**overrides))
    specs = [schema.Fault.model_validate(f) for f in faults]
    assert sim.faults.check(specs) == []
    sim.faults.schedule(specs)
    return sim, grid


def rows(sim: Simulation, kind: str) -> list[tuple[float, str, str]]:
    frame = sim.log.to_frame()
    sel = frame[frame["kind"] == kind]
    return list(zip(sel["time"], sel["entity"], sel["state"].astype(str)))


def run_gen(sim: Simulation, gen) -> Any:
    """Run one generator as a process to completion; return its value."""
    proc = sim.env.process(gen)
    sim.env.run(until=proc)
    return proc.value


# ---------------------------------------------------------------- build
def test_build_grid_names_helpers_and_gauges():
    sim, grid = world()
    assert set(grid.sites) == set(SITES) and set(grid.ces) == {"ce-a", "ce-b"}
    assert set(grid.tapes) == {"A-Tape"} and grid.ses["A-Tape"].is_tape and grid.ses["A-Disk"].is_disk
    assert grid.ses_at_site("A") == ["A-Disk", "A-Tape"]
    assert grid.sites_for_se("B-Disk") == ["B"] and grid.site_of_se("A-Tape") == "A"
    names = set(sim.metrics.names)
    for name in ("site.running[A]", "site.waiting_pilots[B]", "se.used_tb[A-Disk]", "se.active[A-Disk]", "se.queue[B-Disk]",
                 "tape.drives_busy[A-Tape]", "tape.recall_queue[A-Tape]", "tape.buffer_tb[A-Tape]", "link.active[A->B]",
                 "link.queued[default]", "server.busy_cores[db-host]", "db.latency_ms[TransformationDB]",
                 "db.queue[TransformationDB]", "db.qps[TransformationDB]"):
        assert name in names
    sim.run(until=7200)
    assert len(sim.metrics.to_frame()) >= 3


def test_fault_targets_are_checked():
    sim, _ = world()
    bad = [schema.Fault(kind="site_down", target="Z", start=1), schema.Fault(kind="link_cut", target="A->Z", start=1),
           schema.Fault(kind="tape_drive_lost", target="A-Disk", start=1)]
    problems = sim.faults.check(bad)
    assert len(problems) == 3 and "faults[1].target" in problems[1]


# ---------------------------------------------------------------- sites and pilots
def submit_every(sim: Simulation, grid: Grid, ce: str, started: list[Pilot], period: float = 120.0):
    """A minimal SiteDirector: fill what the CE says is available every cycle."""
    def cycle():
        grid.ces[ce].submit_pilots(100, started.append)
    sim.agent(f"director.{ce}", period, cycle)


def test_pilots_fill_slots_and_never_exceed_them():
    sim, grid = world()
    ce = grid.ces["ce-a"]
    started: list[Pilot] = []
    submit_every(sim, grid, "ce-a", started)
    peak = 0
    for t in range(600, 20000, 600):
        sim.env.run(until=t)
        peak = max(peak, ce.running)
        assert ce.running + ce.waiting <= ce.slots and ce.available() == ce.slots - ce.running - ce.waiting
    assert peak == 10 and len(started) == 10
    pilot = started[0]
    assert pilot.site == "A" and pilot.hs06 == 10.0 and pilot.time_left(sim.now) == pytest.approx(pilot.end_time - sim.now)
    pilot.finish()
    pilot.finish()  # idempotent
    assert ce.running == 9 and ce.done == 1


def test_pilot_latency_and_abort_probability():
    ces = [{"name": "big", "slots": 100000, "max_waiting_pilots": 100000, "pilot_latency": 300, "pilot_failure_prob": 0.3}]
    sim, grid = world(sites=[{"name": "A", "ces": ces}, {"name": "B", "ces": [{"name": "b", "slots": 1}]}])
    started: list[Pilot] = []
    assert grid.ces["big"].submit_pilots(4000, started.append) == 4000
    sim.env.run(until=86400)
    ce = grid.ces["big"]
    assert ce.aborted + ce.started == 4000
    assert ce.aborted / 4000 == pytest.approx(0.3, abs=0.03)
    assert sum(p.start for p in started) / len(started) == pytest.approx(300, rel=0.06)


def test_pilot_wallclock_limit_ends_it_and_fires_killed():
    ces = [{"name": "short", "slots": 2, "pilot_latency": 0, "pilot_lifetime": 1000}]
    sim, grid = world(sites=[{"name": "A", "ces": ces}, {"name": "B", "ces": [{"name": "b", "slots": 1}]}])
    started: list[Pilot] = []
    grid.ces["short"].submit_pilots(2, started.append)
    sim.env.run(until=1001)
    assert [p.killed.value for p in started] == ["wallclock", "wallclock"] and grid.ces["short"].running == 0


def test_site_down_kills_pilots_blocks_new_ones_and_is_logged():
    sim, grid = world(faults=[{"kind": "site_down", "target": "A", "start": 5000, "end": 8000}])
    ce = grid.ces["ce-a"]
    started: list[Pilot] = []
    submit_every(sim, grid, "ce-a", started)
    sim.env.run(until=4999)
    running = ce.running_pilots()
    assert len(running) == 10
    sim.env.run(until=5001)
    assert ce.running == 0 and ce.waiting == 0 and ce.failed == 10
    assert all(p.killed.triggered and p.killed.value == "site down" and p.status == "Failed" for p in running)
    assert ce.available() == 0 and ce.submit_pilots(5, started.append) == 0
    sim.env.run(until=7999)
    assert ce.running == 0 and len(started) == 10
    sim.env.run(until=12000)
    assert ce.running == 10
    assert [(t, s) for t, _, s in rows(sim, "site.status")] == [(5000.0, "Down"), (8000.0, "Up")]
    assert len(rows(sim, "fault.start")) == 1


def test_failure_spike_raises_job_failure_probability():
    sim, grid = world(faults=[{"kind": "failure_spike", "target": "A", "start": 100, "end": 200, "params": {"job_failure_prob": 0.5}}])
    site = grid.sites["A"]
    assert site.job_failure_prob() == pytest.approx(0.1)
    sim.env.run(until=150)
    assert site.job_failure_prob() == pytest.approx(1 - 0.9 * 0.5)
    sim.env.run(until=250)
    assert site.job_failure_prob() == pytest.approx(0.1)
    assert [s for _, _, s in rows(sim, "site.failure_prob")] == ["spike", "normal"]


# ---------------------------------------------------------------- storage and network
def test_se_write_read_fill_and_full():
    sim, grid = world()
    se = grid.ses["B-Disk"]  # 1 TB, 2000 MB/s over 10 streams = 200 MB/s per stream
    assert run_gen(sim, se.write(100 * GB)) is True
    assert sim.now == pytest.approx(500.0) and se.used_bytes == 100 * GB
    assert run_gen(sim, se.read(100 * GB)) is True
    assert run_gen(sim, se.write(1 * TB)) is False  # would overfill
    se.remove_replica_bytes(100 * GB)
    assert se.fill == 0.0


def test_se_banned_for_write_fails_writes_only_and_is_logged():
    sim, grid = world(faults=[{"kind": "se_banned", "target": "A-Disk", "start": 100, "end": 200, "params": {"access": "write"}}])
    se = grid.ses["A-Disk"]
    sim.env.run(until=150)
    assert se.status() == {"Read": True, "Write": False, "DiskSE": True, "TapeSE": False}
    assert run_gen(sim, se.write(1 * GB)) is False and sim.now == 150
    assert run_gen(sim, se.read(1 * GB)) is True
    assert run_gen(sim, grid.network.upload("B", "A-Disk", 1 * GB)) is False
    sim.env.run(until=250)
    assert run_gen(sim, se.write(1 * GB)) is True
    assert [s for _, _, s in rows(sim, "se.status")] == ["Banned", "Active"]


def test_overlapping_bans_end_independently():
    faults = [{"kind": "se_banned", "target": "B-Disk", "start": 100, "end": 300},
              {"kind": "se_banned", "target": "B-Disk", "start": 200, "end": 400, "params": {"access": "write"}}]
    sim, grid = world(faults=faults)
    se = grid.ses["B-Disk"]
    sim.env.run(until=250)
    assert not se.readable and not se.writable
    assert run_gen(sim, se.read(1 * GB)) is False
    sim.env.run(until=350)
    assert se.readable and not se.writable
    sim.env.run(until=450)
    assert se.readable and se.writable


def test_link_cut_fails_transfers_in_that_direction_and_is_logged():
    sim, grid = world(faults=[{"kind": "link_cut", "target": "A->B", "start": 100, "end": 1000}])
    net = grid.network
    assert run_gen(sim, net.transfer("A", "B", 1 * GB)) is True  # 1000 MB/s / 10 streams: 10 s + latency
    sim.env.run(until=150)
    assert run_gen(sim, net.transfer("A", "B", 1 * GB)) is False
    assert run_gen(sim, net.copy("A-Disk", "B-Disk", 1 * GB)) is False
    assert run_gen(sim, net.transfer("B", "A", 1 * GB)) is True  # default link, other direction
    sim.env.run(until=1001)
    assert run_gen(sim, net.copy("A-Disk", "B-Disk", 1 * GB)) is True
    assert grid.ses["B-Disk"].used_bytes == 1 * GB
    assert [s for _, _, s in rows(sim, "link.status")] == ["Cut", "Up"]


def test_fts_retries_through_a_short_cut_and_gives_up_on_a_long_one():
    sim, grid = world(faults=[{"kind": "link_cut", "target": "A->B", "start": 1, "end": 200},
                              {"kind": "link_cut", "target": "B->A", "start": 1, "end": 100000}])
    sim.env.run(until=2)
    net = grid.network
    files = [1 * GB] * 10  # one lane per file (the link has 10 slots)
    short = sim.env.process(net.fts_transfer(files, "A-Disk", "B-Disk", max_attempts=3))
    long = sim.env.process(net.fts_transfer(files, "B-Disk", "A-Disk", max_attempts=3))
    sim.env.run(until=short)
    assert all(o.ok and o.attempts == 3 for o in short.value)  # refused at 2 and 122, through at 242
    sim.env.run(until=long)
    assert all(not o.ok and o.error == "link cut" and o.attempts == 3 for o in long.value)
    with pytest.raises(ValueError):
        run_gen(sim, net.fts_transfer([1.0] * 101, "A-Disk", "B-Disk"))


def test_fts_with_a_lossy_link_retries_to_success_into_tape():
    links = [{"source": "B", "destination": "A", "failure_prob": 0.5, "concurrency": 10}]
    sim, grid = world(network={"links": links})
    outcomes = run_gen(sim, grid.network.fts_transfer([1 * GB] * 100, "B-Disk", "A-Tape", max_attempts=30))
    assert all(o.ok for o in outcomes)
    assert sum(o.attempts for o in outcomes) / 100 == pytest.approx(2.0, rel=0.25)  # geometric, p = 0.5
    tape = grid.tapes["A-Tape"]
    assert tape.archive_requests == 100 and tape.buffer_used == 100 * GB


# ---------------------------------------------------------------- tape
def archive_source(sim: Simulation, tape: TapeSystem, file_bytes: float, rate_bps: float):
    """One writer offering `rate_bps` in files of `file_bytes` (blocked while the buffer is full)."""
    def run():
        while True:
            yield from tape.archive(file_bytes)
            yield sim.env.timeout(file_bytes / rate_bps)
    sim.env.process(run())


def archived_between(sim: Simulation, tape: TapeSystem, t0: float, t1: float) -> float:
    if sim.now < t0:
        sim.env.run(until=t0)
    before = tape.archived_bytes
    sim.env.run(until=t1)
    return (tape.archived_bytes - before) / (t1 - t0)


BATCH = 100 * GB
DRIVE_BPS = 100e6
OVERHEAD = 90.0 + 40.0  # mount + position (schema defaults)


def tape_world(faults=()) -> tuple[Simulation, TapeSystem]:
    sim, grid = world(faults=list(faults))
    tape = grid.tapes["A-Tape"]
    tape.migration_batch_bytes = BATCH
    return sim, tape


def test_tape_saturated_throughput_is_drives_times_batch_over_mount_cycle():
    sim, tape = tape_world()
    archive_source(sim, tape, 1 * GB, 400e6)  # demand 400 MB/s > 2 drives x 100 MB/s
    measured = archived_between(sim, tape, 20000, 200000)
    expected = 2 * BATCH / (OVERHEAD + BATCH / DRIVE_BPS)  # 177.0 MB/s, not the nominal 200
    print(f"tape saturated: {measured / 1e6:.1f} MB/s, analytic {expected / 1e6:.1f} MB/s")
    assert measured == pytest.approx(expected, rel=0.02)
    assert tape.buffer_waiting == 1 and tape.buffer_used > 4.8 * TB  # the writer is throttled by the buffer


def test_tape_unsaturated_throughput_equals_demand_and_drive_use_matches():
    sim, tape = tape_world()
    demand = 100e6
    archive_source(sim, tape, 1 * GB, demand)
    sim.env.run(until=20000)
    tape.drives.reset_stats()
    measured = archived_between(sim, tape, 20000, 200000)
    busy = (demand / BATCH) * (OVERHEAD + BATCH / DRIVE_BPS) / 2  # offered drive load per drive: 0.565
    print(f"tape unsaturated: {measured / 1e6:.1f} MB/s for demand 100; drive use {tape.drives.utilization(sim.now):.3f} analytic {busy:.3f}")
    assert measured == pytest.approx(demand, rel=0.02)
    assert tape.drives.utilization(sim.now) == pytest.approx(busy, rel=0.02)


def test_tape_drive_lost_halves_saturated_throughput_and_is_logged():
    sim, tape = tape_world(faults=[{"kind": "tape_drive_lost", "target": "A-Tape", "start": 100000, "end": 300000}])
    archive_source(sim, tape, 1 * GB, 400e6)
    before = archived_between(sim, tape, 20000, 100000)
    during = archived_between(sim, tape, 102000, 300000)
    print(f"tape drive lost: {before / 1e6:.1f} -> {during / 1e6:.1f} MB/s")
    assert during / before == pytest.approx(0.5, rel=0.03)
    sim.env.run(until=300001)
    assert tape.drives.capacity == 2
    assert [s for _, _, s in rows(sim, "tape.drives")] == ["Degraded", "Nominal"]


def test_tape_small_archive_flushes_after_max_wait():
    sim, tape = tape_world()
    run_gen(sim, tape.archive(1 * GB))
    sim.env.run(until=tape.migration_max_wait + OVERHEAD + 10.0 - 1)
    assert tape.archived_files == 0
    sim.env.run(until=tape.migration_max_wait + OVERHEAD + 10.0 + 1)
    assert tape.archived_files == 1 and tape.buffer_used == 0


def test_tape_recall_uses_drives_fifo_and_pins_in_cache():
    sim, grid = world()
    se, tape = grid.ses["A-Tape"], grid.tapes["A-Tape"]
    done: list[float] = []

    def recall():
        yield from se.stage(10 * GB)
        done.append(sim.now)

    for _ in range(3):
        sim.env.process(recall())
    sim.env.run(until=1)
    assert tape.recall_queue == 1 and tape.drives.busy == 2
    sim.env.run(until=1000)
    one = OVERHEAD + 10 * GB / DRIVE_BPS
    assert done == pytest.approx([one, one, 2 * one])
    assert tape.cache_bytes == 30 * GB
    sim.env.run(until=86400 + 2 * one + 1)
    assert tape.cache_bytes == 0


# ---------------------------------------------------------------- servers and databases
def mmc_database(seed: int, queries: int, rho: float) -> tuple[Database, float, float]:
    sim, grid = world(seed)
    db = grid.databases["TransformationDB"]  # 4 connections, 10 ms mean exponential service, 64 host cores
    mu = 1000.0 / db.base_query_ms
    lam = rho * db.total_connections * mu
    gaps = sim.streams.get("test.db.arrivals").exponential(1 / lam, queries).tolist()
    warm = queries // 50

    def one():
        yield from db.query("getTransformationFiles")

    def source():
        for i, gap in enumerate(gaps):
            yield sim.env.timeout(gap)
            if i == warm:
                db.connections.reset_stats()
            sim.env.process(one())

    sim.env.process(source())
    sim.env.run()
    return db, lam, mu


def test_database_queue_is_mmc():
    db, lam, mu = mmc_database(seed=3, queries=600_000, rho=0.7)
    analytic = erlang_c_wait(lam, mu, 4)
    measured = db.connections.mean_wait()
    print(f"DB M/M/4 rho=0.7: Wq measured {measured * 1e3:.3f} ms analytic {analytic * 1e3:.3f} ms ({measured / analytic - 1:+.2%});"
          f" p50 {db.latency_percentile(50) * 1e3:.1f} ms p99 {db.latency_percentile(99) * 1e3:.1f} ms")
    assert measured == pytest.approx(analytic, rel=0.05)
    assert db.mean_latency() == pytest.approx(analytic + 1 / mu, rel=0.03)
    assert db.queries_by_op["getTransformationFiles"] == 600_000
    assert db.server.calls == 600_000


def sequential_latencies(sim: Simulation, db: Database, n: int, gap: float, out: list[tuple[float, float]]):
    def run():
        for _ in range(n):
            latency = yield from db.query("op")
            out.append((sim.now, latency))
            yield sim.env.timeout(gap)
    sim.env.process(run())


def test_db_slow_multiplies_latency_by_the_factor_and_is_logged():
    sim, grid = world(faults=[{"kind": "db_slow", "target": "TransformationDB", "start": 1000, "end": 2000, "params": {"factor": 4}}])
    db = grid.databases["TransformationDB"]
    db.service_cv = 0.0  # deterministic service: latency = service time on an idle DB
    db.set_table_rows(0)
    out: list[tuple[float, float]] = []
    sequential_latencies(sim, db, 300, 10.0, out)
    sim.env.run(until=3000)
    normal = [lat for t, lat in out if t < 1000 or t > 2001]
    slow = [lat for t, lat in out if 1001 < t < 2000]
    assert normal and all(lat == pytest.approx(0.010) for lat in normal)
    assert slow and all(lat == pytest.approx(4 * 0.010) for lat in slow)
    assert [s for _, _, s in rows(sim, "db.status")] == ["Slow", "Normal"]


def test_db_cost_grows_with_table_size_and_rows():
    sim, grid = world(databases=[{"name": "DFC", "server": "db-host", "base_query_ms": 2, "ms_per_million_rows": 1, "slowdown": 2}])
    db = grid.databases["DFC"]
    db.set_size_of(lambda op: 5e6 if op == "findFilesByMetadata" else 0)
    assert db.service_mean("findFilesByMetadata") == pytest.approx((2 + 5) * 2 / 1000)
    assert db.service_mean("getFileSize") == pytest.approx(2 * 2 / 1000)
    assert db.service_mean("getFileSize", rows=1001) == pytest.approx((2 + 1000 * db.ms_per_row) * 2 / 1000)


def test_db_down_and_server_down_make_calls_wait():
    faults = [{"kind": "db_down", "target": "TransformationDB", "start": 100, "end": 500},
              {"kind": "server_down", "target": "db-host", "start": 1000, "end": 1500}]
    sim, grid = world(faults=faults)
    db, host = grid.databases["TransformationDB"], grid.servers["db-host"]
    sim.env.run(until=200)
    assert run_gen(sim, db.query("op")) > 299.0 and sim.now > 500
    sim.env.run(until=1200)
    run_gen(sim, host.call(1.0))
    assert sim.now == pytest.approx(1501.0)
    assert [s for _, _, s in rows(sim, "db.status")] == ["Down", "Up"]
    assert [s for _, _, s in rows(sim, "server.status")] == ["Down", "Up"]


# ---------------------------------------------------------------- determinism
def busy_world(seed: int) -> str:
    """Pilots, transfers, tape, DB and faults together; returns the event-log digest."""
    faults = [{"kind": "site_down", "target": "A", "start": 20000, "end": 30000},
              {"kind": "failure_spike", "target": "B", "start": 5000, "end": 9000, "params": {"job_failure_prob": 0.4}},
              {"kind": "db_slow", "target": "TransformationDB", "start": 3000, "end": 6000}]
    links = [{"source": "A", "destination": "B", "failure_prob": 0.2}]
    sim, grid = world(seed, faults=faults, network={"links": links})
    started: list[Pilot] = []
    for ce in grid.ces:
        submit_every(sim, grid, ce, started)

    def traffic():
        for i in range(200):
            ok = yield from grid.network.copy("A-Disk", "B-Disk", 1 * GB)
            sim.log.log(sim.now, "test.copy", f"copy:{i}", str(ok))
            latency = yield from grid.databases["TransformationDB"].query("op")
            sim.log.log(sim.now, "test.query", f"q:{i}", "", "", latency)

    sim.env.process(traffic())
    sim.run(until=40000)
    return sim.log.digest()


def test_same_seed_same_event_log_digest():
    assert busy_world(5) == busy_world(5)
    assert busy_world(5) != busy_world(6)


def test_core_server_standalone():
    sim = Simulation(1)
    host = CoreServer(sim, schema.CoreServer(name="h", cores=2, ram_gb=16, services=["ReqManager"]))
    for _ in range(4):
        sim.env.process(host.call(10.0))
    sim.env.run()
    assert sim.now == 20.0 and host.calls == 4 and host.cpu_seconds == 40.0 and host.services == ["ReqManager"]


# ---------------------------------------------------------------- DIRAC's view of the topology
def test_se_at_two_sites_is_an_error_as_in_dirac_unless_force_single_site_is_off():
    """DMSHelpers._getLocalSitesForSE: "SE is at more than one site" (ForceSingleSitePerSE, default True),
    so BySE gives such a task no site and Broadcast/ByShare cannot place it."""
    from twin.dirac.resources import GridResources, ScenarioOperations

    sim, grid = world(sites=[{"name": "LCG.B.fr", "ses": ["A-Disk", "B-Disk"], "ces": [{"name": "b", "slots": 1}]},
                             {"name": "LCG.A.fr", "ses": ["A-Disk", "A-Tape"], "ces": [{"name": "a", "slots": 1}]}],
                      storage=[{"name": "A-Disk", "site": "LCG.A.fr", "capacity_tb": 1}, {"name": "B-Disk", "site": "LCG.B.fr", "capacity_tb": 1},
                               {"name": "A-Tape", "site": "LCG.A.fr", "kind": "tape", "capacity_tb": 1, "tape": {"drives": 1, "drive_mbps": 10}}],
                      network={})
    strict = GridResources(grid, {}, ScenarioOperations({}))
    assert strict.getSitesForSE("A-Disk") == {"OK": False, "Message": "SE is at more than one site"}
    assert strict.sites_for("A-Disk") == [] and strict.sites_for("B-Disk") == ["LCG.B.fr"]
    assert strict.getSitesForSE("Nowhere-Disk")["Message"] == "Non-existing SE"
    assert strict.getSEsForSite("B")["Value"] == ["A-Disk", "B-Disk"]  # a short site name, as DMSHelpers
    relaxed = GridResources(grid, {}, ScenarioOperations({"DataManagement/ForceSingleSitePerSE": False}))
    assert relaxed.getSitesForSE("A-Disk")["Value"] == ["LCG.A.fr", "LCG.B.fr"]  # configuration order


@pytest.mark.parametrize(("value", "default", "expected"), [
    (2.5, None, "2.5"), (2.5, 0, 0), ("7", 0, 7), (["a", "b"], [], ["a", "b"]), ("a, b", [], ["a", "b"]),
    (False, True, False), ("yes", False, True), (3, 1.5, 3.0), ({"x": 1}, "d", "d")])
def test_scenario_operations_cast_like_the_dirac_cs(value, default, expected):
    """Operations().getValue over CS strings (diraccfg CFG.getOption): cast to the default's type."""
    from twin.dirac.resources import ScenarioOperations

    assert ScenarioOperations({"P/Q": value}).getValue("P/Q", default) == expected


def test_tape_drive_use_counts_the_drives_available_not_the_drives_installed():
    """Issue 11 item 9: one drive left of two and saturated reads 100 % (busy/installed read 50 %), and the
    run's bottleneck table (summary.resource_usage) reads the same gauge."""
    sim, tape = tape_world(faults=[{"kind": "tape_drive_lost", "target": "A-Tape", "start": 50000, "end": 400000}])
    archive_source(sim, tape, 1 * GB, 400e6)
    sim.env.run(until=40000)
    assert tape.drive_use == 1.0 and tape.drives.capacity == 2
    sim.env.run(until=200000)
    assert tape.drives.capacity == 1 and tape.drives.busy == 1
    assert tape.drive_use == 1.0 and tape.drives.busy / tape.total_drives == 0.5
    sim.metrics.sample(sim.now)
    frame = sim.metrics.to_frame()
    assert frame["tape.drive_use[A-Tape]"].iloc[-1] == 1.0 and frame["tape.drives_available[A-Tape]"].iloc[-1] == 1
    tape.on_drive_lost({"drives": 1}, True)  # no drive left, batches still waiting: saturated, not idle
    assert tape.drives.capacity == 0 and tape.drive_use == 1.0
