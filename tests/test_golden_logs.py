"""Event logs pinned by their sha256: the bar every speed change is held to, and the proof that the compiled
mode (tools/native.py, run by CI against this suite) runs the same model.

The cases: prod5b's first 12 h (the baseline's pilots, jobs, uploads and moves), the JobDB what-if, the prod6
flush, every fault kind opening and closing inside a tape scenario (direct and FTS3 replication, flow and
exact service charging), and the Transformation Monitor's buttons (stop, start, flush, complete, clean) in
both service models. A change that alters a log on purpose (a fidelity fix, a new draw) updates the value
here and says why in its commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.runner import simulate
from twin.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
FAULTS, OPERATOR = "tests/data/golden-faults.yaml", "tests/data/golden-operator.yaml"
EXACT, FTS3 = ("dirac.service_model", "exact"), ("dirac.replication_mode", "fts3")
GOLDEN = {
    ("scenarios/prod5b-baseline.yaml", (("run.duration", "12h"),)): "d0214fec62a2d1e2a8e1b1d021eb08f941c62811c7c5a55716b70ddbd03f0576",
    ("scenarios/whatif-jobdb-bottleneck.yaml", (("run.duration", "12h"),)): "30119301bbd92fe6f18fdb64cdaf6a8949992ab41c8b6603a35758190096925f",
    ("scenarios/prod6-ctapipe-flush.yaml", ()): "3d45fea7d67b347e59fea627002620b14497b40ed2821eef6b7cdafdffc1804f",
    (FAULTS, ()): "e81737673593a1b6ad52ac71e50f7bbe6a1365312f18501a76461f1f6c2492d7",
    (FAULTS, (EXACT,)): "f09fa58deaca3f852966353aa54f0b048bc828641706ab60eb14ff4f8ee8bba3",
    (FAULTS, (FTS3,)): "60bc444df8fea71af8e926c01f2320c3221eb777dbcc4bdd75ae0f781a7eb665",
    (FAULTS, (FTS3, EXACT)): "f8dcb0596997ccc03e2088d0b9cd42fad4dea16a12a3be6a153d5f459ba46366",
    (OPERATOR, ()): "a0834373ec17b3f91f1e95efc441cb5d3daf2e9701246e7e07a09f207bdfaefe",
    (OPERATOR, (EXACT,)): "1565a76fbed0696957e74ad45e43eda917364e316d4ed8b9344ec7e3aab9296d",
}


def _name(case: tuple[str, tuple[tuple[str, str], ...]]) -> str:
    return " ".join([Path(case[0]).stem, *(f"{k}={v}" for k, v in case[1])])


@pytest.mark.parametrize("case", list(GOLDEN), ids=_name)
def test_event_log_is_the_pinned_one(case):
    path, overrides = case
    result = simulate(load_scenario(ROOT / path, dict(overrides)), keep_events=False)
    assert result.event_digest == GOLDEN[case], (
        f"the event log of {_name(case)} changed: if on purpose, update GOLDEN and say why in the commit")


def test_every_fault_of_the_faulted_case_opens_inside_the_run():
    """The faulted cases are worth pinning only if their faults fire (a window after the run's end would
    pin the fault-free model twice)."""
    scenario = load_scenario(ROOT / FAULTS)
    log = simulate(scenario, keep_events=True).log.to_frame()
    started = set(log.loc[log["kind"].astype(str) == "fault.start", "entity"].astype(str))
    assert started == {f"{f.kind}:{f.target}" for f in scenario.faults}
    assert len({f.kind for f in scenario.faults}) == 8  # every FaultKind
