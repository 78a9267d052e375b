"""RMS objects, RequestDB selection/back-off and RequestTasks bodies (twin.dirac.rms) against DIRAC 9.1.22."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from twin.dirac import rms
from twin.dirac.rms import (
    MAX_ATTEMPTS,
    Operation,
    Request,
    RequestBodyError,
    RequestDB,
    begin_operation,
    build_request,
    next_operation,
    record_file_result,
)


def _request(name: str = "00000001_00000001", now: float = 0.0, ops: tuple[tuple[str, list[str]], ...] = (
        ("ReplicateAndRegister", ["/a/1", "/a/2"]), ("RemoveReplica", ["/a/1", "/a/2"]))) -> Request:
    return Request(name, [Operation(kind, lfns, target_se="SE-A", now=now) for kind, lfns in ops], now=now)


# --- status derivation --------------------------------------------------------------------
@pytest.mark.parametrize("files, expected", [
    (["Failed"], "Failed"),
    (["Failed", "Failed"], "Failed"),
    (["Scheduled", "Waiting", "Failed"], "Scheduled"),
    (["Waiting", "Done"], "Queued"),
    (["Waiting", "Failed"], "Queued"),
    (["Done", "Failed"], "Failed"),
    (["Done", "Done"], "Done"),
    ([], "Done"),
])
def test_operation_status_from_files(files, expected):
    assert rms.operation_status_from_files(files) == expected


def test_request_state_machine_follows_dirac_test_sequence():
    """DIRAC's Client/test/Test_Request.py::test_StateMachine, steps 1-18, on file-less operations."""
    r = Request("SMT")
    assert r.status == "Waiting"
    steps = [
        ("add", "Queued", "Waiting"), ("add", "Queued", "Waiting"),
        ((0, "Done"), None, "Waiting"), ((1, "Done"), None, "Done"),
        ((0, "Failed"), None, "Failed"), ((0, "Queued"), None, "Waiting"),
        ("front", "Queued", "Waiting"), ("front", "Queued", "Waiting"),
        ("front", "Scheduled", "Scheduled"), ("front", "Queued", "Waiting"),
        ((0, "Failed"), None, "Failed"), ((0, "Done"), None, "Scheduled"),
        ((1, "Failed"), None, "Failed"), ((1, "Done"), None, "Waiting"),
        ((2, "Scheduled"), None, "Scheduled"), ((2, "Queued"), None, "Waiting"),
        ((2, "Scheduled"), None, "Scheduled"),
    ]
    for number, (action, status, expected) in enumerate(steps, start=2):
        if action == "add":
            r.add_operation(Operation("ForwardDISET", status=status), 0.0)
        elif action == "front":
            r.operations.insert(0, Operation("ForwardDISET", status=status))
        else:
            index, new = action
            r.operations[index].status = new
        assert r.refresh(0.0) == expected, f"step {number}"


def test_only_first_unfinished_operation_is_waiting_and_runs_in_order():
    r = _request()
    assert [op.status for op in r.operations] == ["Waiting", "Queued"]
    first = next_operation(r)
    assert first is r.operations[0]
    for lfn in begin_operation(r, first, 10.0):
        record_file_result(r, first, lfn, True, 10.0)
    assert [op.status for op in r.operations] == ["Done", "Waiting"]
    assert next_operation(r) is r.operations[1]
    assert r.status == "Waiting" and r.last_update == 10.0


def test_failed_operation_fails_request_and_stops_execution():
    r = _request()
    op = next_operation(r)
    begin_operation(r, op, 5.0)
    record_file_result(r, op, "/a/1", True, 5.0)
    record_file_result(r, op, "/a/2", False, 5.0, error="No such file", permanent=True)
    assert op.status == "Failed" and r.status == "Failed"
    assert r.operations[1].status == "Queued"
    assert next_operation(r) is None


def test_transient_failure_keeps_file_waiting():
    r = _request()
    op = next_operation(r)
    begin_operation(r, op, 5.0)
    assert record_file_result(r, op, "/a/1", False, 5.0, error="timeout") == "Waiting"
    assert op.file("/a/1").error == "timeout" and op.status == "Waiting" and r.status == "Waiting"
    assert r.last_update == 0.0  # no file changed status: LastUpdate untouched, as in DIRAC


def test_attempt_beyond_max_attempts_fails_the_file():
    r = _request(ops=(("ReplicateAndRegister", ["/a/1"]),))
    op = r.operations[0]
    for _ in range(MAX_ATTEMPTS):
        assert begin_operation(r, op, 1.0) == ["/a/1"]
    assert op.file("/a/1").attempt == 256 and r.status == "Waiting"
    assert begin_operation(r, op, 2.0) == []
    opFile = op.file("/a/1")
    assert opFile.attempt == 257 and opFile.status == "Failed"
    assert opFile.error.endswith("(Max attempts limit reached)")
    assert op.status == "Failed" and r.status == "Failed" and r.last_update == 2.0


def test_record_timeout_counts_an_attempt_on_every_file_of_the_waiting_operation():
    r = _request()
    rms.record_timeout(r)
    assert [f.attempt for f in r.operations[0].files] == [1, 1]
    assert [f.attempt for f in r.operations[1].files] == [0, 0]


# --- back-off and the database ------------------------------------------------------------
@pytest.mark.parametrize("attempt, minutes", [(0, 0.0), (1, 0.0), (2, 2 * math.log(2)), (10, 2 * math.log(10)),
                                              (256, 2 * math.log(256))])
def test_backoff_is_two_ln_max_attempt_minutes(attempt, minutes):
    r = _request()
    r.operations[0].files[0].attempt = attempt
    assert rms.backoff_delay(r) == pytest.approx(60 * minutes)
    assert rms.backoff_delay(r, constant_delay_min=5) == 300.0


def test_put_request_applies_backoff_only_on_updates_through_the_service():
    db = RequestDB()
    r = _request(now=100.0)
    rid = db.put_request(r, 100.0)
    assert db.not_before(rid) == 100.0  # first insertion: no delay
    [picked] = db.select(101.0)
    op = next_operation(picked)
    for _ in range(10):
        begin_operation(picked, op, 150.0)
    db.put_request(picked, 200.0)
    assert db.not_before(rid) == pytest.approx(200.0 + 120 * math.log(10))
    assert db.select(200.0 + 120 * math.log(10)) == []  # NotBefore < now is strict
    assert db.select(201.0 + 120 * math.log(10)) == [picked]
    db.put_request(picked, 1000.0, via_service=False)  # the 9.1.22 agent: RequestDB.putRequest, no back-off
    assert db.not_before(rid) == pytest.approx(200.0 + 120 * math.log(10))


def test_select_takes_waiting_requests_past_notbefore_oldest_first():
    db = RequestDB()
    requests = [_request(f"r{i}", now=float(t)) for i, t in enumerate([30, 10, 20, 40])]
    for r in requests:
        db.put_request(r, r.last_update)
    requests[3].not_before = 500.0
    db.put_request(requests[3], 45.0)  # a future NotBefore set by the caller is kept
    picked = db.select(100.0, n=2)
    assert [r.name for r in picked] == ["r1", "r2"]
    assert db.counters["Assigned"] == 2 and db.counters["Waiting"] == 2
    assert [r.name for r in db.select(100.0)] == ["r0"]
    assert db.select(400.0) == []
    assert [r.name for r in db.select(501.0)] == ["r3"]
    assert db.status(picked[0].request_id) == "Assigned"


def test_finished_requests_are_not_selected_and_counters_follow():
    seen = []
    db = RequestDB(on_status=lambda req, old, new, now: seen.append((req.name, old, new, now)))
    r = _request("done")
    db.put_request(r, 0.0)
    [r] = db.select(1.0)
    for op in r.operations:
        for lfn in begin_operation(r, op, 2.0):
            record_file_result(r, op, lfn, True, 2.0)
    db.put_request(r, 3.0)
    assert db.status(r.request_id) == "Done" and db.select(10.0) == []
    assert +db.counters == {"Done": 1}
    assert seen == [("done", None, "Waiting", 0.0), ("done", "Waiting", "Assigned", 1.0), ("done", "Assigned", "Done", 3.0)]
    assert db.finalize(r.request_id, "Completed", "Pending Requests") == ("Done", "Requests done")


def _filled_db(seed: int) -> RequestDB:
    db = RequestDB(np.random.default_rng(seed))
    for i in range(400):
        db.put_request(_request(f"r{i:03d}", now=float(i)), float(i))
    return db


def test_single_request_mode_draws_among_100_oldest_and_50_newest():
    """getRequest: each pick among the 100 oldest ∪ 50 newest of what is still Waiting."""
    window = {f"r{i:03d}" for i in list(range(100)) + list(range(350, 400))}
    firsts = {_filled_db(seed).select(1000.0, n=1, bulk=False)[0].name for seed in range(40)}
    assert firsts <= window and any(n >= "r350" for n in firsts) and any(n < "r100" for n in firsts)
    names = [r.name for r in _filled_db(7).select(1000.0, n=60, bulk=False)]
    widened = {f"r{i:03d}" for i in list(range(160)) + list(range(290, 400))}
    assert len(set(names)) == 60 and set(names) <= widened
    assert [r.name for r in _filled_db(7).select(1000.0, n=60, bulk=False)] == names


def test_kick_and_cancel():
    db = RequestDB()
    a, b = _request("a"), _request("b")
    db.put_request(a, 0.0)
    db.put_request(b, 0.0)
    db.select(1.0)
    assert db.kick_assigned(3000.0) == []
    assert sorted(db.kick_assigned(3602.0)) == [a.request_id, b.request_id]
    assert db.status(a.request_id) == "Waiting"
    assert db.cancel(a.request_id, 3700.0)
    db.put_request(a, 3800.0)
    assert db.status(a.request_id) == "Canceled"
    assert [r.name for r in db.select(4000.0)] == ["b"]


# --- transformation bodies ----------------------------------------------------------------
def test_json_body_substitutes_task_fields_and_puts_every_lfn_in_every_operation():
    body = json.dumps([["ReplicateAndRegister", {"SourceSE": "CC-Disk", "TargetSE": "TASK:TargetSE"}],
                       ["RemoveReplica", {"TargetSE": "CC-Disk", "Catalog": "TASK:Catalog"}]])
    r = build_request("00000007_00000003", ["/x/1", "/x/2"], body, "CC-IN2P3-Tape", {"Catalog": "DFC"})
    assert r.name == "00000007_00000003"
    assert [(op.type, op.source_se, op.target_se, op.catalog) for op in r.operations] == [
        ("ReplicateAndRegister", "CC-Disk", "CC-IN2P3-Tape", ""), ("RemoveReplica", "", "CC-Disk", "DFC")]
    assert all([f.lfn for f in op.files] == ["/x/1", "/x/2"] for op in r.operations)
    with pytest.raises(RequestBodyError, match="Parameter Nope does not exist in taskDict"):
        build_request("t", ["/x/1"], json.dumps([["RemoveFile", {"Catalog": "TASK:Nope"}]]), "SE")
    with pytest.raises(RequestBodyError, match="No input data"):
        build_request("t", [], body, "SE")


def test_legacy_body_and_moving_body():
    removal = build_request("t", ["/x/1"], "Removal;RemoveFile", "Unknown")
    assert [(op.type, op.target_se, len(op)) for op in removal.operations] == [("RemoveFile", "Unknown", 1)]
    replication = build_request("t", ["/x/1"], "", "CNAF-Disk")
    assert replication.operations[0].type == "ReplicateAndRegister"
    with pytest.raises(RequestBodyError, match="hasn't got files"):
        build_request("t", [], "Removal;RemoveFile", "SE")
    body = rms.moving_body(["PIC-Disk"], "CC-IN2P3-Tape")
    assert body == [("ReplicateAndRegister", {"SourceSE": "PIC-Disk", "TargetSE": ["CC-IN2P3-Tape"]}),
                    ("RemoveReplica", {"TargetSE": "PIC-Disk"})]
    moving = build_request("t", ["/x/1"], rms.transformation_body("moving", ["PIC-Disk"], ["CC-IN2P3-Tape"]), "x")
    assert [(op.type, op.source_se, op.target_se) for op in moving.operations] == [
        ("ReplicateAndRegister", "PIC-Disk", "CC-IN2P3-Tape"), ("RemoveReplica", "", "PIC-Disk")]


def test_finalize_job_status_by_minor_status():
    assert rms.finalize_job_status("Completed", "Application Finished With Errors") == ("Failed", "Requests done")
    assert rms.finalize_job_status("Completed", "Marked for termination") == ("Killed", "Requests done")
    assert rms.finalize_job_status("Running", "whatever") == ("", "Requests done")
    with pytest.raises(ValueError):
        rms.finalize_job_status("Completed", "Something else")
