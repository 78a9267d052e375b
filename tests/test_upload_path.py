"""A job's output upload and input download path (issue 13 part 3: the same behaviour, cheaper).

The WMS resolves the run's constant choices once (production and failover SEs per data type and site,
the pools and rate of a transfer), so these tests compare it with the per-call reference of
cta-prod-managedata's ordering, the network's transfer times and slot release, and the LFNs and
metadata the registration writes.
"""

from __future__ import annotations

import copy
import re

import pytest
import simpy

from conftest import minimal
from test_grid import run_gen, world
from twin.build import build_world
from twin.dirac.wms import job_status as js
from twin.grid.units import GB

CC, PIC = "CC-IN2P3-Disk", "PIC-Disk"
CC_SITE, PIC_SITE = "LCG.IN2P3-CC.fr", "LCG.PIC.es"


def reference_output_ses(ses: list[str], local: set[str], rng) -> list[str]:
    """cta-prod-managedata's order, per call: the SEs shuffled, the local ones first, drawn order kept."""
    ses = list(ses)
    rng.shuffle(ses)
    return [se for se in ses if se in local] + [se for se in ses if se not in local]


def test_output_ses_follow_the_shuffle_and_local_first_order_with_the_same_draws():
    outputs = {"simtel": [CC, PIC], "dl1": [PIC], "dup": [PIC, CC, PIC], "three": [CC, PIC, CC]}
    world_ = build_world(minimal(**{"dirac.production_outputs": outputs}))
    wms = world_.wms
    reference_rng = copy.deepcopy(wms.rng_upload)
    local = {CC_SITE: {CC}, PIC_SITE: {PIC}, "LCG.Elsewhere.xx": set()}
    expected_lists = dict(outputs, other=[CC, PIC])  # no entry, no "default": every disk SE, sorted
    seen_orders: set[tuple[str, ...]] = set()
    for _ in range(40):
        for data_type, ses in expected_lists.items():
            for site, site_ses in local.items():
                got = wms._output_ses(data_type, site)
                assert got == reference_output_ses(ses, site_ses, reference_rng), (data_type, site)
                seen_orders.add(tuple(got))
    assert wms.rng_upload.bit_generator.state == reference_rng.bit_generator.state  # the stream is where it was
    assert {(CC, PIC), (PIC, CC), (PIC, PIC, CC), (PIC, CC, PIC)} <= seen_orders


def test_failover_ses_come_after_the_production_ses_and_default_applies():
    world_ = build_world(minimal(**{"dirac.production_outputs_failover": {"simtel": [PIC], "default": [CC]}}))
    wms = world_.wms
    assert wms._failover_ses("simtel") == (PIC,)
    assert wms._failover_ses("dl1") == (CC,)


def test_registered_outputs_are_named_and_tagged_per_task_and_attempt():
    world_ = build_world(minimal(**{"run.duration": "1d"}))
    world_.run()
    runtime = world_.runtime(1)
    lfns = list(runtime.outputs)
    assert lfns and world_.wms.outputs_registered >= len(lfns)
    pattern = re.compile(re.escape(runtime.output_dir) + r"/(\d{3})xxx/(\d{8})_(\d{8})_(\d+)_(\d+)\.dat")
    for lfn in lfns:
        match = pattern.fullmatch(lfn)
        assert match, lfn
        block, trans_id, task_id, _attempt, k = map(int, match.groups())
        assert (block, trans_id, k) == (task_id // 1000, 1, 0)
        with world_.services.unmetered():
            assert world_.catalog.get_file_user_metadata(lfn)["runNumber"] == task_id
    assert world_.catalog.counters["addFile"] >= len(lfns)


def test_uploads_to_a_busy_se_wait_for_a_slot_and_each_holds_it_for_its_transfer():
    storage = [{"name": "A-Disk", "site": "A", "capacity_tb": 10, "write_mbps": 800, "max_concurrency": 2},
               {"name": "B-Disk", "site": "B", "capacity_tb": 1},
               {"name": "A-Tape", "site": "A", "kind": "tape", "capacity_tb": 1000,
                "tape": {"drives": 2, "drive_mbps": 100, "buffer_tb": 5}}]
    sim, grid = world(storage=storage)
    se = grid.ses["A-Disk"]
    ends: list[float] = []

    def upload(site: str):
        ok = yield from grid.network.upload(site, "A-Disk", 1 * GB)
        ends.append((sim.env.now, ok))

    for _ in range(3):
        sim.env.process(upload("A"))
    sim.env.run()
    per_file = 1 * GB / se.write_rate  # 400 MB/s per stream: 2.5 s
    assert ends == [(per_file, True), (per_file, True), (2 * per_file, True)]
    assert se.slots.busy == 0 and se.writes == 3 and se.used_bytes == 3 * GB
    start = sim.env.now
    assert run_gen(sim, grid.network.upload("B", "A-Disk", 1 * GB)) is True  # over the B->A link: the slower leg
    link = grid.network.link("B", "A")
    assert sim.env.now - start == pytest.approx(grid.network.wan_latency + 1 * GB / min(link.rate, se.write_rate))
    assert link.pool.busy == 0 and se.slots.busy == 0


def test_an_upload_interrupted_mid_transfer_gives_its_slot_back():
    sim, grid = world()
    se = grid.ses["A-Disk"]

    def upload():
        try:
            yield from grid.network.upload("A", "A-Disk", 10 * GB)
        except simpy.Interrupt:
            pass

    proc = sim.env.process(upload())
    sim.env.run(until=1.0)
    assert se.slots.busy == 1
    proc.interrupt()
    sim.env.run(until=2.0)
    assert se.slots.busy == 0


def test_a_write_ban_refuses_uploads_at_once_and_its_end_lets_them_in():
    sim, grid = world(faults=[{"kind": "se_banned", "target": "A-Disk", "start": 10, "end": 20,
                               "params": {"access": "write"}}])
    se = grid.ses["A-Disk"]
    sim.env.run(until=15)
    assert (se.readable, se.writable) == (True, False)
    assert run_gen(sim, grid.network.upload("A", "A-Disk", 1 * GB)) is False and sim.env.now == 15
    assert se.refused_writes == 1 and se.used_bytes == 0
    sim.env.run(until=25)
    assert (se.readable, se.writable) == (True, True)
    assert run_gen(sim, grid.network.upload("A", "A-Disk", 1 * GB)) is True


def reference_job_view(world_, ses: list[str]) -> list[str]:
    """getReplicasForJobs per call: readable, not failover / not-for-jobs; disk replicas if any."""
    resources, dm = world_.resources, world_.datamanager
    usable = [se for se in ses if resources.readable(se) and se not in dm.not_for_jobs and "failover" not in se.lower()]
    return [se for se in usable if resources.isDiskSE(se)] or usable


def test_job_view_keeps_readable_job_replicas_preferring_disk_as_bans_come_and_go():
    from conftest import DATA
    from twin.scenario.loader import load_scenario

    world_ = build_world(load_scenario(DATA / "with_tape.yaml", {"dirac.ses_not_for_jobs": [PIC]}))
    tape = "CC-IN2P3-Tape"
    candidates = [CC, PIC, tape, "RAL-Failover", "No-Such-SE"]
    lists = [[a, b, c] for a in candidates for b in candidates for c in candidates] + [[], [tape], [tape, CC]]
    for banned in ([], [CC], [tape], [CC, tape]):
        for se in banned:
            world_.grid.ses[se].on_banned({"access": "read"}, True)
        for ses in lists:
            assert world_.datamanager.job_view(ses) == reference_job_view(world_, ses), (banned, ses)
        for se in banned:
            world_.grid.ses[se].on_banned({"access": "read"}, False)
    assert world_.datamanager.job_view([tape, CC]) == [CC] and world_.datamanager.job_view([tape, PIC]) == [tape]


def test_an_input_download_reads_local_replicas_first_and_fails_without_a_usable_one():
    from twin.dirac.wms.jobdb import Job
    from twin.grid.site import RUNNING, Pilot

    world_ = build_world(minimal())
    catalog, ses = world_.catalog, world_.grid.ses
    catalog.add_file("/in/both.dat", int(3 * GB), [PIC, CC])
    catalog.add_file("/in/remote.dat", int(2 * GB), PIC)
    catalog.add_file("/in/local.dat", int(1 * GB), CC)
    pilot = Pilot(1, next(iter(world_.grid.sites[CC_SITE].ces.values())))  # a real one: compiled code checks the type
    pilot.status = RUNNING
    job = Job(1, job_type="DataReprocessing", now=0.0, input_data=("/in/both.dat", "/in/remote.dat", "/in/local.dat"))
    assert run_gen(world_.sim, world_.wms.download(job, pilot)) is True
    assert (ses[CC].reads, ses[CC].read_bytes, ses[PIC].reads, ses[PIC].read_bytes) == (1, 4 * GB, 1, 2 * GB)
    ses[PIC].on_banned({"access": "read"}, True)
    assert run_gen(world_.sim, world_.wms.download(job, pilot)) is False  # remote.dat: no readable replica
    assert (ses[CC].reads, ses[PIC].reads) == (1, 1)  # nothing moved
    missing = Job(2, job_type="DataReprocessing", now=0.0, input_data=("/in/local.dat", "/in/never-registered.dat"))
    assert run_gen(world_.sim, world_.wms.download(missing, pilot)) is False
