"""ReplicateAndRegister in FTS3 mode: FTS3 operations, bulk jobs by (source, target), the FTS3Agent's
own retries and its callback to the RMS (DIRAC 9.1.22 DataManagementSystem, see twin/dirac/fts3.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from twin.build import build_world
from twin.dirac import fts3, rms
from twin.scenario.loader import load_scenario
from twin.scenario.schema import Fault
from twin.summary import summarize

WITH_TAPE = Path(__file__).parent / "data" / "with_tape.yaml"
SOURCES = ["S1-Disk", "S2-Disk", "S3-Disk", "S4-Tape"]
TARGETS = ["T1", "T2"]


def fts_operation(lfns: list[str], targets: list[str], source_se: str = "") -> fts3.FTS3Operation:
    op = rms.Operation("ReplicateAndRegister", lfns, target_se=",".join(targets), source_se=source_se)
    files = [fts3.FTS3File(lfn, target, 1e9) for lfn in lfns for target in targets]
    return fts3.FTS3Operation(1, 1, op, files, now=0.0)


def active(replicas: dict[str, list[str]]):
    """DataManager.getActiveReplicas as prepare_new_jobs asks it (None: not in the catalog)."""
    def lookup(lfn: str, prefer_disk: bool):
        ses = replicas.get(lfn)
        if ses is None or not prefer_disk:
            return ses
        return [se for se in ses if not se.endswith("Tape")] or ses
    return lookup


@settings(max_examples=60, deadline=None)
@given(n=hs.integers(1, 130), max_files=hs.integers(1, 60), allowed=hs.lists(hs.sampled_from(SOURCES), unique=True),
       banned=hs.sets(hs.sampled_from(TARGETS)), seed=hs.integers(0, 2**16), data=hs.data())
def test_jobs_group_files_by_source_and_target_in_chunks_of_max_files(n, max_files, allowed, banned, seed, data):
    """prepareNewJobs: per target, one allowed active source per file, jobs of at most MaxFilesPerJob per
    (source, target) with only the last one partial; a banned target gets no job and no attempt."""
    lfns = [f"/vo/f{i}" for i in range(n)]
    masks = data.draw(hs.lists(hs.integers(0, 2 ** len(SOURCES) - 1), min_size=n, max_size=n))
    replicas = {lfn: [se for k, se in enumerate(SOURCES) if mask >> k & 1] for lfn, mask in zip(lfns, masks)}
    op = fts_operation(lfns, TARGETS, ",".join(allowed))
    jobs = fts3.prepare_new_jobs(op, max_files_per_job=max_files, max_attempts_per_file=256,
                                 writable=lambda se: se not in banned, active_replicas=active(replicas),
                                 rng=np.random.default_rng(seed))
    in_jobs = [f for _, _, files in jobs for f in files]
    assert len(in_jobs) == len({id(f) for f in in_jobs})  # each file in at most one job
    sizes: dict[tuple[str, str], list[int]] = {}
    for source, target, files in jobs:
        assert target not in banned and 1 <= len(files) <= max_files
        assert all(f.target_se == target for f in files)
        for f in files:
            ses = replicas[f.lfn]
            assert source in ses and (not allowed or source in allowed)
            if not allowed and any(not se.endswith("Tape") for se in ses):
                assert not source.endswith("Tape")  # preferDisk
        sizes.setdefault((source, target), []).append(len(files))
    for chunk in sizes.values():
        total = sum(chunk)
        assert chunk == [max_files] * (total // max_files) + ([total % max_files] if total % max_files else [])
    eligible = [f for f in op.files if f.target_se not in banned
                and (set(replicas[f.lfn]) & set(allowed) if allowed else replicas[f.lfn])]
    assert {id(f) for f in in_jobs} == {id(f) for f in eligible}
    assert all(f.status == fts3.NEW and f.attempt == 0 for f in op.files)  # attempts are counted at submission


def test_files_out_of_attempts_or_gone_from_the_catalog_become_defunct():
    op = fts_operation(["/vo/a", "/vo/b", "/vo/c"], ["T1"])
    a, b, c = op.files
    a.status, a.attempt = fts3.FAILED, 3
    b.status, b.attempt = fts3.FAILED, 2
    jobs = fts3.prepare_new_jobs(op, max_files_per_job=100, max_attempts_per_file=3, writable=lambda se: True,
                                 active_replicas=active({"/vo/a": ["S1-Disk"], "/vo/b": ["S1-Disk"]}),
                                 rng=np.random.default_rng(0))
    assert a.status == fts3.DEFUNCT and c.status == fts3.DEFUNCT and "No such file" in c.error
    assert [(s, t, [f.lfn for f in files]) for s, t, files in jobs] == [("S1-Disk", "T1", ["/vo/b"])]
    assert not op.is_totally_processed()
    b.status = fts3.FINISHED
    assert op.is_totally_processed() and op.status == fts3.PROCESSED


def test_a_file_made_defunct_while_its_last_job_runs_stays_defunct():
    """FTS3DB.updateFileStatus updates only rows not in FTS3File.FINAL_STATES (Finished, Defunct): the
    late success of the last job cannot bring a given-up file back (its RMS file stays Failed)."""
    op = fts_operation(["/vo/a"], ["T1"])
    (a,) = op.files
    a.status, a.attempt = fts3.SUBMITTED, 3
    job = fts3.FTS3Job(1, op, "S1-Disk", "T1", [a], 0.0)
    a.job = job
    assert op.files_to_submit(max_attempts_per_file=3) == [] and a.status == fts3.DEFUNCT
    job.outcomes[0] = type("Outcome", (), {"ok": True, "error": ""})()
    assert fts3.apply_outcomes(job) and job.status == fts3.FINISHED
    assert (a.status, a.job) == (fts3.DEFUNCT, None)


def test_callback_fails_defunct_files_and_inserts_register_replica_before_the_transfer():
    """_updateRmsOperationStatus + _callback: Finished -> RMS Done, Defunct -> RMS Failed; one RegisterReplica
    per target with its finished files, before the ReplicateAndRegister; the request waits for it."""
    lfns = ["/vo/a", "/vo/b"]
    request = rms.Request("r", [rms.Operation("ReplicateAndRegister", lfns, target_se="T1,T2"),
                                rms.Operation("RemoveReplica", lfns, target_se="S1-Disk")])
    transfer = request.operations[0]
    for f in transfer.files:
        f.status = rms.SCHEDULED
    transfer.refresh(0.0), request.refresh(0.0)
    assert request.status == rms.SCHEDULED
    files = [fts3.FTS3File(lfn, t, 1.0) for lfn in lfns for t in ("T1", "T2")]
    op = fts3.FTS3Operation(1, 1, transfer, files, now=0.0)
    for f in files:
        f.status = fts3.FINISHED
    files[3].status, files[3].error = fts3.DEFUNCT, "link cut"  # /vo/b -> T2
    finished = fts3.update_rms_operation(op, request, 10.0)
    assert {t: [f.lfn for f in fs] for t, fs in finished.items()} == {"T1": ["/vo/a", "/vo/b"], "T2": ["/vo/a"]}
    assert [o.type for o in request.operations] == ["RegisterReplica", "RegisterReplica", "ReplicateAndRegister", "RemoveReplica"]
    assert [f.status for f in transfer.files] == [rms.DONE, rms.FAILED] and transfer.files[1].error == "link cut"
    assert request.status == rms.WAITING and request.operations[0].status == rms.WAITING
    for register in request.operations[:2]:
        for f in register.files:
            rms.record_file_result(request, register, f.lfn, True, 20.0)
    assert request.status == rms.FAILED  # the failed transfer fails the request: RemoveReplica never runs


# ---------------------------------------------------------------- on the simulated grid
def run(overrides: dict | None = None, faults: list[Fault] | None = None):
    scenario = load_scenario(WITH_TAPE, {"dirac.replication_mode": "fts3", **(overrides or {})})
    scenario.faults = faults or []
    world = build_world(scenario)
    world.run()
    return world, summarize(world)


def move_of(s):
    return next(t for t in s["transformations"] if t["name"] == "test/MoveToTape")


def fts_jobs(world):
    events = world.sim.log.to_frame()
    return events[(events.kind == "fts3.job") & (events.state == fts3.SUBMITTED)]


def transfer_files(world):
    return [f for rid in world.rms.db.ids() for op in world.rms.db.get(rid).operations
            if op.type == "ReplicateAndRegister" for f in op.files]


@pytest.mark.parametrize("max_files", [100, 3])
def test_a_move_in_fts3_mode_runs_bulk_jobs_and_one_rms_attempt_per_file(max_files):
    """6 requests of 10 files from PIC-Disk (CC-IN2P3-Disk is on the tape's site too) to CC-IN2P3-Tape:
    each becomes one FTS3 operation, its files go in jobs of at most max_files per (source, target), the
    RMS counts one Attempt per file, and the replicas are registered by RegisterReplica after the callback."""
    world, s = run({"topology.network.max_files_per_fts_job": max_files})
    move = move_of(s)
    assert move["files"] == {"Processed": 60} and move["tasks"] == {"Done": 6}
    assert s["requests"]["by_status"] == {"Done": 6} and s["requests"]["files_replicated"] == 60
    assert all(f.attempt == 1 and f.status == rms.DONE for f in transfer_files(world))
    jobs = fts_jobs(world)
    assert s["requests"]["fts3"]["operations"] == {"Finished": 6} and s["requests"]["fts3"]["callbacks"] == 6
    assert s["requests"]["fts3"]["jobs_submitted"] == len(jobs) and jobs.detail.str.endswith("->CC-IN2P3-Tape").all()
    per_pair = jobs.groupby("detail").value.apply(list)  # per (operation, source, target), in submission order
    assert len(per_pair) == 6 and {d.split()[1] for d in per_pair.index} == {"PIC-Disk->CC-IN2P3-Tape",
                                                                              "CC-IN2P3-Disk->CC-IN2P3-Tape"}
    for chunk in per_pair:
        total = int(sum(chunk))
        assert chunk == [max_files] * (total // max_files) + ([total % max_files] if total % max_files else [])
    assert int(jobs.value.sum()) == 60  # every file in exactly one job (nothing failed)
    for rid in world.rms.db.ids():
        assert [op.type for op in world.rms.db.get(rid).operations] == ["RegisterReplica", "ReplicateAndRegister",
                                                                         "RemoveReplica"]
    assert s["invariants"]["fts3_operations_conserved"] and s["invariants"]["requests_conserved"]


def test_the_replica_is_registered_only_when_register_replica_runs():
    """The FTS callback puts the request back Waiting; the tape replica reaches the catalog only when the
    RequestExecutingAgent runs RegisterReplica (after the callback), not when FTS finished the copy."""
    scenario = load_scenario(WITH_TAPE, {"dirac.replication_mode": "fts3"})
    world = build_world(scenario)
    seen: dict[str, bool] = {}
    on_status = world.rms.db.on_status

    def spy(request, old, new, now):
        """The callback's putRequest (Scheduled -> Waiting), right after it inserted RegisterReplica: seen
        at the ReqDB's status listener, as compiled code calls Request.insert_before natively."""
        if (old, new) == (rms.SCHEDULED, rms.WAITING):
            for operation in request.operations:
                if operation.type == "RegisterReplica" and operation.status == rms.WAITING:
                    lfn = operation.files[0].lfn
                    seen[lfn] = "CC-IN2P3-Tape" in world.catalog.get_replicas([lfn]).successful[lfn]
        on_status(request, old, new, now)

    world.rms.db.on_status = spy
    world.run()
    assert len(seen) == 6 and not any(seen.values())  # at callback time: copied by FTS, not registered
    replicas = world.catalog.get_replicas(list(seen)).successful
    assert all("CC-IN2P3-Tape" in ses for ses in replicas.values())


def test_fts_retries_count_fts_attempts_not_rms_attempts_and_defunct_files_fail_the_request():
    """The PIC->CC link cut for 3 days: each FTS job fails (after the server's 3 retries), the FTS3Agent
    resubmits up to MaxAttemptsPerFile (here 4) and then the files are Defunct: their RMS files Failed
    at Attempt 1, requests Failed, transformation files Problematic, source replicas kept."""
    world, s = run({"topology.network.max_attempts_per_file": 4},
                   [Fault(kind="link_cut", target="LCG.PIC.es->LCG.IN2P3-CC.fr", start=0, end=3 * 86400)])
    move = move_of(s)
    failed = [f for f in transfer_files(world) if f.status == rms.FAILED]
    assert failed and all(f.attempt == 1 for f in transfer_files(world))
    assert move["files"].get("Problematic", 0) == len(failed) and s["requests"]["by_status"].get("Failed", 0) >= 1
    jobs = fts_jobs(world)
    from_pic = jobs[jobs.detail.str.contains(" PIC-Disk->")]
    assert len(from_pic) == 4 * s["requests"]["by_status"]["Failed"]  # 4 submissions of each PIC job
    first, last = from_pic.time.min(), from_pic.time.max()
    assert last - first >= 3 * fts3.MONITORING_DELAY  # a retry waits for the job to be monitored
    assert last < 3 * 86400  # gave up before the link came back
    mc_dir = world.runtime(1).output_dir
    replicas = world.catalog.get_replicas(world.catalog.find_files_by_metadata({"data_level": -1}, mc_dir)).successful
    assert all(ses for ses in replicas.values())
    assert s["invariants"]["fts3_operations_conserved"]


def test_a_target_banned_while_the_operation_waits_gets_no_job_and_no_attempt():
    """prepareNewJobs skips a target without write access (no attempt); the jobs go once the ban ends."""
    world0, calm = run()
    events = world0.sim.log.to_frame()
    scheduled = events[(events.kind == "fts3.operation") & (events.state == fts3.ACTIVE)].time.min()
    first_job = fts_jobs(world0).time.min()
    assert first_job > scheduled + 1
    ban_end = scheduled + 86400
    world, s = run(faults=[Fault(kind="se_banned", target="CC-IN2P3-Tape", start=scheduled + 1, end=ban_end,
                                 params={"access": "write"})])
    jobs = fts_jobs(world)
    assert jobs.time.min() >= ban_end
    assert s["requests"]["by_status"] == {"Done": 6} and move_of(s)["files"] == {"Processed": 60}
    assert s["requests"]["fts3"]["file_submissions"] == calm["requests"]["fts3"]["file_submissions"] == 60
    assert s["invariants"]["fts3_operations_conserved"]


def test_fts3_recount_fails_when_a_scheduled_request_has_no_operation_or_a_record_is_lost():
    world, s = run()
    assert s["invariants"]["fts3_operations_conserved"] is True
    from twin.invariants import conservation

    db = world.rms.fts.db
    op_id = next(iter(db.status_of))
    del db.status_of[op_id]
    assert conservation(world)["fts3_operations_conserved"] is False
    db.status_of[op_id] = fts3.FINISHED
    assert conservation(world)["fts3_operations_conserved"] is True
    request = world.rms.db.get(1)
    world.rms.db._set_status(world.rms.db._rows[1], rms.SCHEDULED, request.status, world.sim.now)
    assert conservation(world)["fts3_operations_conserved"] is False  # would wait for a callback for ever


def test_fts_settings_are_used_in_fts3_mode():
    from conftest import minimal

    scenario = minimal(**{"dirac.replication_mode": "fts3", "topology.network.max_files_per_fts_job": 7,
                          "topology.network.max_attempts_per_file": 5, "dirac.fts3_agent": {"polling_time": 60}})
    world = build_world(scenario)
    assert (world.rms.fts.max_files_per_job, world.rms.fts.max_attempts_per_file) == (7, 5)
    assert next(a for a in world.sim.agents if a.name == "FTS3Agent").polling_time == 60
