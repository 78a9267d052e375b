"""Production System logic (twin.dirac.production) against DIRAC 9.1.22 ProductionSystem."""

from __future__ import annotations

import json

import pytest

from twin.dirac.production import (
    ProductionStatusError,
    ProductionStep,
    ProductionSystem,
    check_production_status,
    checkMatchQuery,
    next_production_status,
    production_steps,
    start_order,
)
from twin.dirac.returnvalues import S_ERROR

PARENT_OUT = {"MCCampaign": "PROD6", "particle": "proton", "phiP": 180, "thetaP": 20.0, "data_level": 2,
              "nsb": {"in": [1, 5, 19]}, "merged": 1}


# --- checkMatchQuery ----------------------------------------------------------------------
@pytest.mark.parametrize("child, expected", [
    ({"particle": "proton", "phiP": 180.0}, (True, "")),  # 180 == 180.0, as in a Python set
    ({"nsb": 5}, (True, "")),  # child ⊆ parent
    ({"nsb": {"in": [1, 5, 19, 40]}}, (True, "")),  # parent ⊆ child
    ({"merged": {"=": 1}}, (True, "")),
    ({"nsb": {"in": [1, 40]}}, (False, "Metadata values {'in': [1, 40]} do not match with {'in': [1, 5, 19]}")),
    ({"particle": "gamma"}, (False, "Metadata values {'in': ['gamma']} do not match with {'in': ['proton']}")),
    ({"data_level": {">=": 1}}, (False, "Operation >= is not supported")),
    ({"split": "test"}, (False, "Metadata split is not in parent transformation query")),
    ({"colour": "red"}, (False, "Metadata colour is not defined in the Catalog")),
])
def test_check_match_query(child, expected):
    assert checkMatchQuery(child, PARENT_OUT) == expected


def test_check_match_query_uses_the_given_catalog_fields():
    fields = {"FileMetaFields": {"nsb": "INT"}, "DirectoryMetaFields": {"particle": "VARCHAR(128)", "day": "DATETIME"}}
    assert checkMatchQuery({"nsb": 1, "particle": "proton"}, PARENT_OUT, fields) == (True, "")
    assert checkMatchQuery({"thetaP": 20.0}, PARENT_OUT, fields) == (False, "Metadata thetaP is not defined in the Catalog")
    assert checkMatchQuery({"day": "x"}, {"day": "x"}, fields) == (False, "Metatype datetime is not supported")
    assert checkMatchQuery({"nsb": 1}, {"nsb": {"nin": [1]}}, fields) == (False, "Operation nin is not supported")


def test_start_order_is_lexicographic():
    assert start_order(["Step2_Merging", "Step10_Merging", "Step1_MCSimulation"]) == [
        "Step10_Merging", "Step1_MCSimulation", "Step2_Merging"]


# --- production state machine -------------------------------------------------------------
@pytest.mark.parametrize("current, proposed, allowed", [
    ("New", "Active", True), ("New", "Cleaned", True), ("New", "Stopped", False), ("New", "Flush", False),
    ("Active", "Flush", True), ("Active", "Stopped", True), ("Active", "Completed", True), ("Active", "New", False),
    ("Flush", "Active", True), ("Flush", "Stopped", False),
    ("Stopped", "Active", True), ("Stopped", "Flush", True),
    ("Completed", "Cleaned", True), ("Completed", "Active", False),
    ("Cleaned", "Active", False), ("Cleaned", "New", False),
])
def test_production_state_machine(current, proposed, allowed):
    assert next_production_status(current, proposed) == (proposed if allowed else current)
    if allowed:
        assert check_production_status(current, proposed) == proposed
    else:
        with pytest.raises(ProductionStatusError, match="Cannot change status"):
            check_production_status(current, proposed)


def test_unknown_proposed_status_stays_put():
    assert next_production_status("Active", "Bogus") == "Active"
    assert check_production_status("Active", "Active") == "Active"


# --- startProduction ----------------------------------------------------------------------
class FakeTS:
    """TransformationClient stand-in: records calls; fails addTransformation for chosen names."""

    def __init__(self, fail_add: str = "") -> None:
        self.fail_add = fail_add
        self.created: dict[int, dict] = {}
        self.next_id = 100
        self.calls: list[tuple[str, int | str]] = []

    def add(self, **fields):
        if fields["transName"].endswith(self.fail_add) and self.fail_add:
            raise ValueError(f"Transformation {fields['transName']} already exists")
        trans_id, self.next_id = self.next_id, self.next_id + 1
        self.created[trans_id] = fields
        self.calls.append(("add", fields["transName"]))
        return trans_id

    def start(self, trans_id):
        self.calls.append(("start", trans_id))

    def delete(self, trans_id):
        self.calls.append(("delete", trans_id))
        return S_ERROR("no such transformation") if trans_id not in self.created else {"OK": True, "Value": None}


def _chain(bad_child: bool = False) -> list[ProductionStep]:
    mc = ProductionStep(name="Step1_MC", output_query={"particle": "proton", "nsb": {"in": [1, 5]}})
    child_input = {"particle": "gamma" if bad_child else "proton", "nsb": 1}
    steps = [mc, ProductionStep(name="Step2_Proc", type="DataReprocessing", parent_steps=["Step1_MC"],
                                input_query=child_input, output_query={"particle": "proton", "nsb": 1, "data_level": 2})]
    for n in range(3, 11):
        steps.append(ProductionStep(name=f"Step{n}_Merge", type="Merging", parent_steps=[f"Step{n - 1}_" + (
            "Proc" if n == 3 else "Merge")], input_query={"data_level": 2}, output_query={"data_level": 2}))
    return steps


def test_start_production_creates_in_lexicographic_order_links_and_starts_all():
    ts = FakeTS()
    ps = ProductionSystem(ts.add, ts.start, ts.delete)
    prod_id = ps.add_production("prod", _chain())
    assert ps.start_production("prod") == {"OK": True, "Value": None}
    added = [name for kind, name in ts.calls if kind == "add"]
    assert added == [f"{prod_id:08d}_{name}" for name in sorted(s.name for s in _chain())]
    assert added[:3] == ["00000001_Step10_Merge", "00000001_Step1_MC", "00000001_Step2_Proc"]
    rec = ps.get(prod_id)
    assert rec.status == "Active"
    ids = rec.trans_ids
    assert ps.parent_transformations(ids["Step1_MC"]) == [-1]
    assert ps.parent_transformations(ids["Step10_Merge"]) == [ids["Step9_Merge"]]
    started = [t for kind, t in ts.calls if kind == "start"]
    assert started == ps.transformations(prod_id) == [ids[s.name] for s in _chain()]
    fields = ts.created[ids["Step2_Proc"]]
    assert (fields["transType"], fields["plugin"], fields["agentType"], fields["groupSize"]) == (
        "DataReprocessing", "Standard", "Manual", 1)


def test_start_production_rolls_back_on_validation_failure():
    ts = FakeTS()
    ps = ProductionSystem(ts.add, ts.start, ts.delete)
    ps.add_production("prod", _chain(bad_child=True))
    result = ps.start_production("prod")
    assert result == {"OK": False, "Message": "checkMatchQuery result is False"}
    assert sorted(t for kind, t in ts.calls if kind == "delete") == sorted(ts.created)
    assert not [c for c in ts.calls if c[0] == "start"]
    with pytest.raises(KeyError):
        ps.get("prod")


def test_start_production_rolls_back_on_creation_failure_and_keeps_the_production():
    ts = FakeTS(fail_add="Step2_Proc")
    ps = ProductionSystem(ts.add, ts.start, ts.delete)
    ps.add_production("prod", _chain())
    result = ps.start_production("prod")
    assert result["OK"] is False and "already exists" in result["Message"]
    created_before = [t for kind, t in ts.calls if kind == "delete"]
    assert created_before == sorted(ts.created)  # Step10_Merge and Step1_MC, created before Step2_Proc
    assert len(created_before) == 2 and ps.get("prod").status == "New"


def test_start_production_checks_new_status_and_missing_queries():
    ts = FakeTS()
    ps = ProductionSystem(ts.add, ts.start, ts.delete, transformation_status=lambda _: "Active")
    ps.add_production("a", _chain())
    assert ps.start_production("a")["Message"] == "checkTransStatus failed : Invalid transformation status: Active"
    ps = ProductionSystem(ts.add, ts.start, ts.delete)
    steps = [ProductionStep(name="Step1_MC"), ProductionStep(name="Step2_X", parent_steps=["Step1_MC"], input_query={"a": 1})]
    ps.add_production("b", steps)
    assert ps.start_production("b")["Message"].startswith("No OutputMetaQuery defined for parent transformation")


def test_set_production_status_applies_actions_except_for_flush():
    ts = FakeTS()
    stopped: list[int] = []
    ps = ProductionSystem(ts.add, ts.start, ts.delete, transformation_actions={"stop": stopped.append})
    prod_id = ps.add_production("prod", _chain()[:2])
    assert ps.set_production_status(prod_id, "Stopped") == {"OK": False, "Message": "Cannot change status"}
    ps.start_production(prod_id)
    assert ps.set_production_status(prod_id, "Flush")["OK"] and stopped == []
    assert ps.set_production_status(prod_id, "Stopped")["Message"] == "Cannot change status"  # Flush -/-> Stopped
    assert ps.set_production_status(prod_id, "Active")["OK"]
    assert ps.set_production_status(prod_id, "Stopped")["OK"]
    assert stopped == ps.transformations(prod_id)
    with pytest.raises(ValueError, match="already exists"):
        ps.add_production("prod", [])


def test_production_steps_from_the_scenario_schema():
    from twin.scenario.schema import Production, Step

    prod = Production(name="move", steps=[
        Step(name="Step1_Proc", type="DataReprocessing", output_metadata={"data_level": 2}),
        Step(name="Step2_Move", type="Replication", plugin="Broadcast", parent="Step1_Proc", body="moving",
             input_query={"data_level": 2}, source_se=["PIC-Disk"], target_se=["CC-IN2P3-Tape"])])
    proc, move = production_steps(prod)
    assert (proc.input_query, proc.output_query, proc.body) == (None, {"data_level": 2}, "workflow")
    assert move.parent_steps == ["Step1_Proc"] and move.extra["step"] is prod.steps[1]
    assert json.loads(move.body) == [["ReplicateAndRegister", {"SourceSE": "PIC-Disk", "TargetSE": ["CC-IN2P3-Tape"]}],
                                     ["RemoveReplica", {"TargetSE": "PIC-Disk"}]]
    fields = move.transformation_fields(12)
    assert (fields["transName"], fields["plugin"], fields["step"].name) == ("00000012_Step2_Move", "Broadcast", "Step2_Move")
