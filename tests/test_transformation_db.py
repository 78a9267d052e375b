"""Behaviour of the in-memory TransformationDB: file state machine, tasks, counters, facade."""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hs

from twin.dirac.catalog import FILE_META, FileCatalog, FileCatalogClient
from twin.dirac.clients import FileCatalogAPI, TransformationClientAPI
from twin.dirac.transformation import status as st
from twin.dirac.transformation.db import (
    NOT_ALL_FILES_AVAILABLE,
    TransformationClient,
    TransformationDB,
    next_file_status,
)

LFNS = [f"/vo/data/f{i}" for i in range(6)]


def new_db(**kwargs: Any) -> TransformationDB:
    return TransformationDB(**kwargs)


def add_trans(db: TransformationDB, name: str = "T", trans_type: str = "DataReprocessing", **kwargs: Any) -> int:
    res = db.addTransformation(name, "desc", "long desc", trans_type, "Standard", "Manual", "", **kwargs)
    assert res["OK"], res
    return res["Value"]


def status_of(db: TransformationDB, trans_id: int, lfn: str) -> tuple[str, int]:
    (record,) = db.getTransformationFiles({"TransformationID": trans_id, "LFN": lfn})["Value"]
    return record["Status"], record["ErrorCount"]


@pytest.fixture()
def db() -> TransformationDB:
    return new_db()


@pytest.fixture()
def tid(db: TransformationDB) -> int:
    trans_id = add_trans(db)
    db.addFilesToTransformation(trans_id, LFNS)
    return trans_id


# --- transformations -----------------------------------------------------------------------------------


def test_transformation_definition_and_parameters(db: TransformationDB) -> None:
    trans_id = add_trans(db, "MC_gamma", "MCSimulation", groupSize=5, now=10.0)
    assert add_trans(db, "other") == trans_id + 1
    duplicate = db.addTransformation("MC_gamma", "", "", "MCSimulation", "Standard", "Manual", "")
    assert "already exists" in duplicate["Message"]
    trans = db.getTransformation("MC_gamma")["Value"]
    assert (trans["Status"], trans["GroupSize"], trans["AgentType"]) == (st.NEW, 5, "Manual")
    assert trans["CreationDate"] == trans["LastUpdate"] == 10.0
    db.setTransformationParameter(trans_id, "TargetSE", ["DISK-1", "DISK-2"])
    db.setTransformationParameter(trans_id, "CalibRun", 7)
    assert "TargetSE" not in db.getTransformation(trans_id)["Value"]
    merged = db.getTransformation(trans_id, extraParams=True)["Value"]
    assert (merged["TargetSE"], merged["CalibRun"]) == ("['DISK-1', 'DISK-2']", 7)  # stored as DIRAC does
    listed = db.getTransformations({"Type": "MCSimulation"}, extraParams=True)["Value"]
    assert [t["TransformationName"] for t in listed] == ["MC_gamma"] and listed[0]["CalibRun"] == 7
    assert db.getTransformationParameters(trans_id, "GroupSize")["Value"] == 5
    params = db.getTransformationParameters(trans_id, ["Type", "CalibRun"])["Value"]
    assert params == {"Type": "MCSimulation", "CalibRun": 7}
    assert "Can not update" in db.setTransformationParameter(trans_id, "Type", "Merge")["Message"]
    assert db.getTransformation(999) == {"OK": False, "Message": "Transformation does not exist"}


def test_start_stop_complete(db: TransformationDB) -> None:
    trans_id = add_trans(db)
    db.startTransformation(trans_id, now=5.0)
    trans = db.getTransformation(trans_id)["Value"]
    assert (trans["Status"], trans["AgentType"], trans["LastUpdate"]) == (st.ACTIVE, "Automatic", 5.0)
    db.stopTransformation(trans_id)
    trans = db.getTransformation(trans_id)["Value"]
    assert (trans["Status"], trans["AgentType"]) == (st.STOPPED, "Manual")
    db.completeTransformation(trans_id)
    assert db.getTransformationWithStatus(st.COMPLETED)["Value"] == [trans_id]


def test_additional_parameters_and_cleaning(db: TransformationDB, tid: int) -> None:
    db.setTransformationParameter(tid, "SourceSE", "DISK-1")
    assert db.getAdditionalParameters(tid)["Value"] == {"SourceSE": "DISK-1"}
    assert not db.deleteTransformationParameter(tid, "Status")["OK"]
    db.deleteTransformationParameter(tid, "SourceSE")
    assert db.getAdditionalParameters(tid)["Value"] == {}
    db.addTaskForTransformation(tid, LFNS[:1])
    db.cleanTransformation(tid, now=9.0)
    assert db.getTransformation(tid)["Value"]["Status"] == st.TRANSFORMATION_CLEANED
    assert db.getTransformationStats(tid)["Value"] == {"Total": 0}
    assert db.getTransformationTaskStats(tid)["Value"] == {"TotalCreated": 0}


def test_add_transformation_runs_the_input_query_once() -> None:
    fc = FileCatalog()
    fc.add_metadata_field("particle", str)
    fc.add_metadata_field("runNumber", int, FILE_META)
    fc.create_directory("/vo/gamma")
    fc.set_metadata("/vo/gamma", {"particle": "gamma"})
    for run in range(3):
        fc.add_file(f"/vo/gamma/r{run}", 1, "DISK", {"runNumber": run})
    db = new_db(catalog=FileCatalogClient(fc))
    trans_id = add_trans(db, inputMetaQuery={"particle": "gamma", "runNumber": {">": 0}})
    assert db.getTransformationStats(trans_id)["Value"] == {"Unused": 2, "Total": 2}
    assert db.getTransformationMetaQuery(trans_id, "Input")["Value"] == {"particle": "gamma", "runNumber": {">": 0}}
    assert not db.getTransformationMetaQuery(trans_id, "Output")["OK"]


# --- TransformationFiles -------------------------------------------------------------------------------


def test_add_files_is_idempotent_and_never_resets_present_files(db: TransformationDB, tid: int) -> None:
    db.addTaskForTransformation(tid, LFNS[:1], "DISK-1")
    res = db.addFilesToTransformation(tid, [LFNS[0], "/vo/data/new"])
    assert res == {"OK": True, "Value": {"Successful": {LFNS[0]: "Present", "/vo/data/new": "Added"}, "Failed": {}}}
    assert status_of(db, tid, LFNS[0]) == (st.ASSIGNED, 0)
    assert db.addFilesToTransformation(tid, []) == {"OK": False, "Message": "Zero length LFN list"}


def test_new_files_are_unused_and_unassigned(db: TransformationDB, tid: int) -> None:
    record = db.getTransformationFiles({"TransformationID": tid, "LFN": LFNS[2]})["Value"][0]
    assert record["Status"] == st.UNUSED and record["TaskID"] is None
    assert record["UsedSE"] == record["TargetSE"] == st.UNKNOWN_SE and record["ErrorCount"] == 0
    assert [f["LFN"] for f in db.getTransformationFiles({"TransformationID": tid})["Value"]] == LFNS


@pytest.mark.parametrize(
    ("current", "proposed", "errors", "force", "expected"),
    [
        (st.PROCESSED, st.UNUSED, 0, False, st.PROCESSED),
        (st.PROCESSED, st.PROBLEMATIC, 0, False, st.PROCESSED),
        (st.PROCESSED, st.UNUSED, 0, True, st.UNUSED),
        (st.MAX_RESET, st.UNUSED, 3, False, st.MAX_RESET),
        (st.MAX_RESET, st.UNUSED, 3, True, st.UNUSED),
        (st.MAX_RESET, st.PROBLEMATIC, 3, False, st.PROBLEMATIC),
        (st.ASSIGNED, st.UNUSED, 9, False, st.UNUSED),
        (st.ASSIGNED, st.UNUSED, 10, False, st.MAX_RESET),
        (st.ASSIGNED, st.UNUSED, 20, False, st.MAX_RESET),
        (st.ASSIGNED, st.UNUSED, 10, True, st.UNUSED),
        (st.PROB_IN_FC, st.UNUSED, 10, False, st.MAX_RESET),
        (st.ASSIGNED, st.PROBLEMATIC, 10, False, st.PROBLEMATIC),
        (st.UNUSED, st.UNUSED, 0, False, st.UNUSED),
    ],
)
def test_state_machine_table(current: str, proposed: str, errors: int, force: bool, expected: str) -> None:
    assert next_file_status(current, proposed, errors, force, 10) == expected


def fail_once(db: TransformationDB, trans_id: int, lfn: str) -> str:
    """One task attempt that fails: Unused -> Assigned -> (job Failed) Unused as proposed by the TS agents."""
    assert db.addTaskForTransformation(trans_id, [lfn])["OK"]
    return db.setFileStatusForTransformation(trans_id, st.UNUSED, [lfn])["Value"][lfn]


def test_max_reset_when_error_count_reaches_10_and_20(db: TransformationDB, tid: int) -> None:
    lfn = LFNS[0]
    for attempt in range(1, 11):
        assert fail_once(db, tid, lfn) == st.UNUSED
        assert status_of(db, tid, lfn) == (st.UNUSED, attempt)
    # ErrorCount is now 10: the check runs before the increment, so the next failure is the one refused.
    assert fail_once(db, tid, lfn) == st.MAX_RESET
    assert status_of(db, tid, lfn) == (st.MAX_RESET, 11)
    assert db.addTaskForTransformation(tid, [lfn])["Message"] == NOT_ALL_FILES_AVAILABLE
    assert db.setFileStatusForTransformation(tid, st.UNUSED, [lfn])["Value"] == {}
    assert db.setFileStatusForTransformation(tid, st.UNUSED, [lfn], force=True)["Value"] == {lfn: st.UNUSED}
    for attempt in range(12, 21):
        assert fail_once(db, tid, lfn) == st.UNUSED
    assert status_of(db, tid, lfn) == (st.UNUSED, 20)
    assert fail_once(db, tid, lfn) == st.MAX_RESET
    assert status_of(db, tid, lfn) == (st.MAX_RESET, 21)


def test_max_reset_counter_is_configurable() -> None:
    db = new_db(files_max_reset_counter=2)
    trans_id = add_trans(db)
    db.addFilesToTransformation(trans_id, LFNS[:1])
    assert [fail_once(db, trans_id, LFNS[0]) for _ in range(3)] == [st.UNUSED, st.UNUSED, st.MAX_RESET]


def test_processed_is_sticky_unless_forced(db: TransformationDB, tid: int) -> None:
    lfn = LFNS[1]
    db.addTaskForTransformation(tid, [lfn])
    assert db.setFileStatusForTransformation(tid, {lfn: st.PROCESSED})["Value"] == {lfn: st.PROCESSED}
    assert db.setFileStatusForTransformation(tid, {lfn: st.UNUSED})["Value"] == {}
    assert db.setFileStatusForTransformation(tid, {lfn: st.PROBLEMATIC})["Value"] == {}
    assert status_of(db, tid, lfn) == (st.PROCESSED, 0)  # Assigned -> Processed is not an error
    assert db.setFileStatusForTransformation(tid, {lfn: st.UNUSED}, force=True)["Value"] == {lfn: st.UNUSED}


def test_error_count_only_counts_assigned_files_that_fail(db: TransformationDB, tid: int) -> None:
    db.setFileStatusForTransformation(tid, st.PROB_IN_FC, [LFNS[0]])
    db.setFileStatusForTransformation(tid, st.UNUSED, [LFNS[0]])
    assert status_of(db, tid, LFNS[0]) == (st.UNUSED, 0)
    db.addTaskForTransformation(tid, [LFNS[1]])
    db.setFileStatusForTransformation(tid, st.PROBLEMATIC, [LFNS[1]])
    assert status_of(db, tid, LFNS[1]) == (st.PROBLEMATIC, 1)


def test_unknown_lfns_are_ignored_by_set_status(db: TransformationDB, tid: int) -> None:
    assert db.setFileStatusForTransformation(tid, {"/not/there": st.PROCESSED, LFNS[0]: st.PROBLEMATIC})["Value"] == {
        LFNS[0]: st.PROBLEMATIC}
    assert db.setFileStatusForTransformation(tid, st.PROCESSED, None)["Value"] == {}


# --- tasks ---------------------------------------------------------------------------------------------------


def test_task_is_refused_whole_if_any_file_is_unavailable(db: TransformationDB, tid: int) -> None:
    assert db.addTaskForTransformation(tid, LFNS[:2], "DISK-1")["Value"] == 1
    for lfns in ([LFNS[1], LFNS[2]], [LFNS[3], "/not/attached"]):
        assert db.addTaskForTransformation(tid, lfns, "DISK-2") == {"OK": False, "Message": NOT_ALL_FILES_AVAILABLE}
    assert status_of(db, tid, LFNS[2])[0] == st.UNUSED and status_of(db, tid, LFNS[3])[0] == st.UNUSED
    assert db.getTransformationTaskStats(tid)["Value"] == {"Created": 1, "TotalCreated": 1}
    assert db.addTaskForTransformation(tid, [LFNS[2]])["Value"] == 2  # no TaskID burnt by refusals


def test_prob_in_fc_files_may_go_into_a_task(db: TransformationDB, tid: int) -> None:
    db.setFileStatusForTransformation(tid, st.PROB_IN_FC, [LFNS[4]])
    task_id = db.addTaskForTransformation(tid, [LFNS[4], LFNS[5]], "DISK-3", now=7.0)["Value"]
    records = db.getTransformationFiles({"TransformationID": tid, "TaskID": task_id})["Value"]
    assert {(r["LFN"], r["Status"], r["UsedSE"], r["LastUpdate"]) for r in records} == {
        (LFNS[4], st.ASSIGNED, "DISK-3", 7.0), (LFNS[5], st.ASSIGNED, "DISK-3", 7.0)}


def test_task_ids_count_per_transformation(db: TransformationDB, tid: int) -> None:
    other = add_trans(db, "T2", "MCSimulation")
    assert db.extendTransformation(other, 3)["Value"] == [1, 2, 3]
    assert db.addTaskForTransformation(tid, [LFNS[0]])["Value"] == 1
    assert db.extendTransformation(other, 1)["Value"] == [4]


def test_extend_only_extendable_types(db: TransformationDB, tid: int) -> None:
    assert db.extendTransformation(tid, 2)["Message"] == "Can not extend non-SIMULATION type production"
    mc = add_trans(db, "MC", "MCSimulation")
    db.extendTransformation(mc, 2, now=0.0)
    tasks = db.getTransformationTasks({"TransformationID": mc}, inputVector=True)["Value"]
    assert [(t["TaskID"], t["ExternalStatus"], t["ExternalID"], t["InputVector"]) for t in tasks] == [
        (1, "Created", "0", ""), (2, "Created", "0", "")]


def test_get_tasks_to_submit_takes_created_tasks_older_than_30s_and_reserves_them(
    db: TransformationDB, tid: int
) -> None:
    db.addTaskForTransformation(tid, LFNS[:2], "DISK-1", now=100.0)
    mc = add_trans(db, "MC", "MCSimulation")
    db.extendTransformation(mc, 3, now=100.0)
    db.extendTransformation(mc, 1, now=120.0)
    assert db.getTasksToSubmit(mc, 10, now=130.0)["Value"]["JobDictionary"] == {}  # exactly 30 s is not enough
    res = db.getTasksToSubmit(mc, 2, now=130.5)["Value"]
    assert res["TransformationID"] == mc and list(res["JobDictionary"]) == [1, 2]
    assert list(db.getTasksToSubmit(mc, 10, now=131.0)["Value"]["JobDictionary"]) == [3]
    assert db.getTasksToSubmit(mc, 10, now=149.0)["Value"]["JobDictionary"] == {}
    assert list(db.getTasksToSubmit(mc, 10, now=151.0)["Value"]["JobDictionary"]) == [4]
    assert db.getTransformationTaskStats(mc)["Value"] == {"Reserved": 4, "TotalCreated": 4}
    job = db.getTasksToSubmit(tid, 5, now=200.0)["Value"]["JobDictionary"][1]
    assert job == {"TaskID": 1, "TransformationID": tid, "TargetSE": "DISK-1", "Status": "Created",
                   "InputData": f"{LFNS[0]};{LFNS[1]}"}
    reserved = db.getTransformationTasks({"TransformationID": tid, "ExternalStatus": "Reserved"})["Value"]
    assert [(t["TaskID"], t["LastUpdateTime"]) for t in reserved] == [(1, 200.0)]


def test_task_status_and_stats(db: TransformationDB) -> None:
    mc = add_trans(db, "MC", "MCSimulation")
    db.extendTransformation(mc, 5)
    db.setTaskStatusAndWmsID(mc, 1, "Submitted", 1234, now=50.0)
    db.setTaskStatus(mc, [2, 3], "Failed")
    db.setTaskStatus(mc, 4, "Done")
    assert db.getTransformationTaskStats(mc)["Value"] == {
        "Created": 1, "Done": 1, "Failed": 2, "Submitted": 1, "TotalCreated": 5}
    task = db.getTransformationTasks({"TransformationID": mc, "TaskID": 1})["Value"][0]
    assert (task["ExternalID"], task["ExternalStatus"], task["LastUpdateTime"]) == ("1234", "Submitted", 50.0)
    assert not db.setTaskStatus(mc, 99, "Done")["OK"]
    old = db.getTransformationTasks({"TransformationID": mc, "ExternalStatus": ["Created", "Submitted"]},
                                    older=10.0, timeStamp="LastUpdateTime")["Value"]
    assert [t["TaskID"] for t in old] == [5]


# --- stats and counters ----------------------------------------------------------------------------------


def test_stats_and_counters(db: TransformationDB, tid: int) -> None:
    db.addTaskForTransformation(tid, LFNS[:2], "DISK-1")
    db.addTaskForTransformation(tid, LFNS[2:3], "DISK-2")
    db.setFileStatusForTransformation(tid, {LFNS[0]: st.PROCESSED, LFNS[2]: st.UNUSED, LFNS[5]: st.PROBLEMATIC})
    assert db.getTransformationStats(tid)["Value"] == {
        "Assigned": 1, "Problematic": 1, "Processed": 1, "Unused": 3, "Total": 6}
    used = db.getCounters("TransformationFiles", ["UsedSE"], {"TransformationID": tid})["Value"]
    assert used == [({"UsedSE": "DISK-1"}, 2), ({"UsedSE": "DISK-2"}, 1), ({"UsedSE": "Unknown"}, 3)]
    by_status = db.getCounters(
        "TransformationFiles", ["Status"], {"TransformationID": tid, "UsedSE": "DISK-1"})["Value"]
    assert by_status == [({"Status": "Assigned"}, 1), ({"Status": "Processed"}, 1)]
    errors = db.getCounters("TransformationFiles", ["ErrorCount"], {"TransformationID": tid})["Value"]
    assert errors == [({"ErrorCount": 0}, 5), ({"ErrorCount": 1}, 1)]
    tasks = db.getCounters("TransformationTasks", ["ExternalStatus"], {"TransformationID": tid})["Value"]
    assert tasks == [({"ExternalStatus": "Created"}, 2)]
    assert db.getCounters("Transformations", ["Status"], {})["Value"] == [({"Status": "New"}, 1)]
    assert not db.getCounters("Nope", ["X"], {})["OK"]


def test_file_queries_by_status_paging_and_columns(db: TransformationDB, tid: int) -> None:
    db.setFileStatusForTransformation(tid, {LFNS[1]: st.PROB_IN_FC, LFNS[3]: st.PROCESSED})
    todo = db.getTransformationFiles({"TransformationID": tid, "Status": [st.UNUSED, st.PROB_IN_FC]},
                                     columns=["LFN", "Status"])["Value"]
    assert [f["LFN"] for f in todo] == [LFNS[i] for i in (0, 1, 2, 4, 5)] and set(todo[0]) == {"LFN", "Status"}
    page = db.getTransformationFiles({"TransformationID": tid, "Status": st.UNUSED}, limit=2, offset=1)["Value"]
    assert [f["LFN"] for f in page] == [LFNS[2], LFNS[4]]
    desc = db.getTransformationFiles({"TransformationID": tid}, orderAttribute="LFN:DESC", limit=1)["Value"]
    assert desc[0]["LFN"] == LFNS[-1]
    assert not db.getTransformationFiles({"Bogus": 1})["OK"]


# --- hooks, derived transformations, facade ---------------------------------------------------------------


def test_meter_and_file_status_audit_hooks() -> None:
    calls: list[tuple[str, str, int]] = []
    trail: list[tuple] = []
    db = new_db(meter=lambda *call: calls.append(call), on_file_status=lambda *event: trail.append(event),
                clock=lambda: 42.0)
    trans_id = add_trans(db)
    db.addFilesToTransformation(trans_id, LFNS[:2])
    db.addTaskForTransformation(trans_id, LFNS[:1], "SE")
    db.setFileStatusForTransformation(trans_id, st.PROCESSED, LFNS[:1], now=50.0)
    assert calls[1:] == [("TransformationDB", "addFilesToTransformation", 2),
                         ("TransformationDB", "addTaskForTransformation", 1),
                         ("TransformationDB", "setFileStatusForTransformation", 1)]
    assert db.counters["addTransformation"] == 1
    assert trail == [
        (trans_id, LFNS[0], None, "Unused", 42.0), (trans_id, LFNS[1], None, "Unused", 42.0),
        (trans_id, LFNS[0], "Unused", "Assigned", 42.0), (trans_id, LFNS[0], "Assigned", "Processed", 50.0),
    ]


def test_derived_transformation_inherits_and_takes_over_files(db: TransformationDB, tid: int) -> None:
    db.addTaskForTransformation(tid, [LFNS[0]])
    db.setFileStatusForTransformation(tid, {LFNS[1]: st.PROCESSED})
    child = add_trans(db, "T-derived", inheritedFrom=tid)
    parent = db.getTransformation(tid)["Value"]
    assert (parent["Status"], parent["AgentType"]) == (st.COMPLETING, "Automatic")
    records = db.getTransformationFiles({"TransformationID": child})["Value"]
    files = {f["LFN"]: (f["Status"], f["TaskID"]) for f in records}
    assert files[LFNS[0]] == ("Assigned-inherited", 1_000_000 * tid + 1)
    assert files[LFNS[2]] == ("Unused-inherited", None)
    assert db.getTransformationStats(child)["Value"] == {"Total": 0}  # inherited statuses are not counted
    db.setFileStatusForTransformation(tid, {LFNS[0]: st.PROCESSED})
    res = db.moveFilesToDerivedTransformation(db.getTransformation(child)["Value"])
    assert res["Value"] == (tid, {"Unused": 4})
    stats = db.getTransformationStats(child)["Value"]
    assert (stats["Unused"], stats["Total"]) == (4, 4)
    assert db.getTransformationStats(tid)["Value"]["NotProcessed"] == 4
    assert status_of(db, child, LFNS[0])[0] == st.PROCESSED_INHERITED


def test_facades_match_the_client_protocols() -> None:
    for facade, protocol in ((TransformationClient, TransformationClientAPI), (FileCatalogClient, FileCatalogAPI)):
        for name, method in vars(protocol).items():
            if name.startswith("_") or not callable(method):
                continue
            wanted = list(inspect.signature(method).parameters)
            offered = list(inspect.signature(getattr(facade, name)).parameters)
            assert offered[: len(wanted)] == wanted, f"{facade.__name__}.{name}"


def test_transformation_client_facade(db: TransformationDB, tid: int) -> None:
    client = TransformationClient(db)
    assert client.addFilesToTransformation(tid, ["/x", LFNS[0]])["Value"] == {
        "Successful": {"/x": "Added", LFNS[0]: "Present"}, "Failed": {}}
    assert client.getCounters("TransformationFiles", ["UsedSE"], {"TransformationID": tid}) == {
        "OK": True, "Value": [({"UsedSE": "Unknown"}, 7)]}
    assert client.getTransformation(tid)["Value"]["TransformationID"] == tid  # passthrough


# --- property: random operation sequences keep the indexes consistent --------------------------------------

FILE_STATUSES = [st.UNUSED, st.PROCESSED, st.PROBLEMATIC, st.PROB_IN_FC, st.MAX_RESET, st.MISSING_IN_FC]
op_strategy = hs.one_of(
    hs.tuples(hs.just("add"), hs.lists(hs.integers(0, 15), min_size=1, max_size=6)),
    hs.tuples(hs.just("task"), hs.lists(hs.integers(0, 15), max_size=4), hs.sampled_from(["A", "B"])),
    hs.tuples(hs.just("status"), hs.lists(hs.integers(0, 15), min_size=1, max_size=4),
              hs.sampled_from(FILE_STATUSES), hs.booleans()),
    hs.tuples(hs.just("fail_task"), hs.integers(1, 30)),
    hs.tuples(hs.just("task_status"), hs.integers(1, 30), hs.sampled_from(["Submitted", "Done", "Failed"])),
)


def run_op(db: TransformationDB, trans_id: int, op: tuple, now: float) -> None:
    kind = op[0]
    lfn = lambda i: f"/lfn/{i}"  # noqa: E731
    if kind == "add":
        db.addFilesToTransformation(trans_id, [lfn(i) for i in op[1]], now=now)
    elif kind == "task":
        db.addTaskForTransformation(trans_id, [lfn(i) for i in op[1]], op[2], now=now)
    elif kind == "status":
        db.setFileStatusForTransformation(trans_id, op[2], [lfn(i) for i in op[1]], force=op[3], now=now)
    elif kind == "fail_task":
        files = db.getTransformationFiles({"TransformationID": trans_id, "TaskID": op[1], "Status": st.ASSIGNED})
        db.setFileStatusForTransformation(trans_id, st.UNUSED, [f["LFN"] for f in files["Value"]], now=now)
    elif kind == "task_status":
        db.setTaskStatus(trans_id, op[1], op[2], now=now)


def check_invariants(db: TransformationDB, trans_id: int) -> None:
    files = db.getTransformationFiles({"TransformationID": trans_id})["Value"]
    table = db._trans[trans_id].files
    # every row sits in exactly one status bucket, the one of its Status column
    memberships = Counter(row for rows in table.by_status.values() for row in rows)
    assert memberships == Counter(range(len(files)))
    for row, record in enumerate(files):
        assert row in table.by_status[db._status.codes[record["Status"]]]
    # counts by status sum to the total, and equal a brute-force count
    stats = db.getTransformationStats(trans_id)["Value"]
    assert stats.pop("Total") == len(files) == sum(stats.values())
    assert stats == Counter(f["Status"] for f in files)
    grouped = db.getCounters("TransformationFiles", ["Status", "UsedSE"], {"TransformationID": trans_id})["Value"]
    assert {(d["Status"], d["UsedSE"]): n for d, n in grouped} == Counter((f["Status"], f["UsedSE"]) for f in files)
    row_by_row = db.getCounters("TransformationFiles", ["Status", "UsedSE"], {"TransformationID": trans_id},
                                newer=-1.0, timeStamp="LastUpdate")["Value"]  # a time window forces the scan
    assert row_by_row == grouped
    # an Assigned file points to a task that lists it
    for record in files:
        if record["Status"] == st.ASSIGNED:
            task_inputs = db.getTaskInputVector(trans_id, record["TaskID"])["Value"][record["TaskID"]]
            assert record["LFN"] in task_inputs.split(";")
    # task counters
    tasks = db.getTransformationTasks({"TransformationID": trans_id})["Value"]
    task_stats = db.getTransformationTaskStats(trans_id)["Value"]
    assert task_stats.pop("TotalCreated") == len(tasks)
    assert task_stats == Counter(t["ExternalStatus"] for t in tasks)
    assert [t["TaskID"] for t in tasks] == list(range(1, len(tasks) + 1))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=hs.lists(op_strategy, max_size=40))
def test_random_operation_sequences_keep_invariants(ops: list[tuple]) -> None:
    db = new_db(files_max_reset_counter=2)
    trans_id = add_trans(db)
    for step, op in enumerate(ops):
        run_op(db, trans_id, op, float(step))
    check_invariants(db, trans_id)


def _trail_db() -> tuple[TransformationDB, list[tuple], list[tuple]]:
    trail: list[tuple] = []
    calls: list[tuple] = []
    db = new_db(meter=lambda *call: calls.append(call), on_task_status=lambda *event: trail.append(event))
    return db, trail, calls


def _tasks(db: TransformationDB, trans_id: int) -> list[dict[str, Any]]:
    return db.getTransformationTasks({"TransformationID": trans_id})["Value"]


_odd_ids = hs.sampled_from([True, False, 2.0, "3", None])  # what a Python caller may pass: bools are ints there


@given(hs.lists(hs.tuples(hs.one_of(hs.integers(-1, 9), _odd_ids),
                          hs.one_of(hs.integers(-3, 2**33), hs.sampled_from(["", "x12", "007"]), _odd_ids)),
                max_size=12))
@example([(True, 5), (2, True), (1, 2**31), (2.0, 6)])
@settings(max_examples=60, deadline=None)
def test_bulk_submitted_status_is_one_set_task_status_and_wms_id_per_task(submitted: list[tuple[int, Any]]) -> None:
    """The task manager's one-pass update equals its per-task setTaskStatusAndWmsID calls: results, task
    records (ExternalID as text when not an int32), listener trail in call order, calls counted and charged,
    whatever the IDs (a bool TaskID is accepted by both, a float or a text one by neither)."""
    one, one_trail, one_calls = _trail_db()
    bulk, bulk_trail, bulk_calls = _trail_db()
    for db in (one, bulk):
        mc = add_trans(db, "MC", "MCSimulation")
        assert db.extendTransformation(mc, 7, now=1.0)["OK"]
        db.setTaskStatus(mc, [2, 3], st.TASK_RESERVED, now=2.0)
    expected = [one.setTaskStatusAndWmsID(mc, task_id, st.TASK_SUBMITTED, job_id, now=5.0) for task_id, job_id in submitted]
    assert bulk.set_tasks_status_and_wms_ids(mc, submitted, st.TASK_SUBMITTED, now=5.0) == expected
    assert _tasks(bulk, mc) == _tasks(one, mc)
    assert bulk_trail == one_trail and bulk_calls == one_calls
    assert bulk.counters == one.counters
    unknown = bulk.set_tasks_status_and_wms_ids(99, [(1, 5)], st.TASK_SUBMITTED, now=6.0)
    assert unknown == [one.setTaskStatusAndWmsID(99, 1, st.TASK_SUBMITTED, 5, now=6.0)]


def test_extension_adds_the_tasks_one_add_each_would() -> None:
    """extendTransformation's column-wise creation: same records, CreationTime runs and listener trail as
    adding the tasks one by one, across two instants."""
    bulk, bulk_trail, _ = _trail_db()
    one, one_trail, _ = _trail_db()
    mc = add_trans(bulk, "MC", "MCSimulation")
    assert add_trans(one, "MC", "MCSimulation") == mc
    assert bulk.extendTransformation(mc, 3, now=10.0)["Value"] == [1, 2, 3]
    assert bulk.extendTransformation(mc, 0, now=11.0)["Value"] == []
    assert bulk.extendTransformation(mc, 2, now=12.0)["Value"] == [4, 5]
    table = one._trans[mc].tasks  # noqa: SLF001 - the per-task path, as before the bulk one
    for now in (10.0, 10.0, 10.0, 12.0, 12.0):
        table.add(st.UNKNOWN_SE, now, ())
    assert _tasks(bulk, mc) == _tasks(one, mc) and bulk_trail == one_trail
    assert list(bulk._trans[mc].tasks.creation_time.starts) == [0, 3]  # noqa: SLF001 - one run per instant
