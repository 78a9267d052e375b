"""The event logs of five shipped what-ifs, pinned by their sha256.

Every speed change of the last rounds was required to leave the event log bit-identical; this test
makes that bar part of the suite, and it is how the compiled mode (tools/native.py, run by CI with
this suite) proves it runs the same model. A change that alters a log on purpose (a fidelity fix, a
new draw) updates the value here and says why in its commit. The cases cover flow-mode and exact
service charging, a site outage with its faults, and the JobDB and slow-DB what-ifs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.runner import simulate
from twin.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = {
    ("prod6-ctapipe-flush", ()): "3d45fea7d67b347e59fea627002620b14497b40ed2821eef6b7cdafdffc1804f",
    ("whatif-jobdb-bottleneck", (("run.duration", "12h"),)): "30119301bbd92fe6f18fdb64cdaf6a8949992ab41c8b6603a35758190096925f",
    ("whatif-site-outage", (("run.duration", "1d"),)): "7aa5a3009f263e12428f80e305e3fbaecdfe51a906a4a466df73f1cc3a7bea41",
    ("whatif-slow-db", (("run.duration", "12h"),)): "d0214fec62a2d1e2a8e1b1d021eb08f941c62811c7c5a55716b70ddbd03f0576",
    ("whatif-slow-db", (("run.duration", "6h"), ("dirac.service_model", "exact"))):
        "b3368f513b211ebbc35de411f3803d6093b8f595d05fc086ef92c6eebe5f39c0",
}


@pytest.mark.parametrize("case", list(GOLDEN), ids=lambda c: " ".join([c[0], *(f"{k}={v}" for k, v in c[1])]))
def test_event_log_is_the_pinned_one(case):
    name, overrides = case
    result = simulate(load_scenario(ROOT / "scenarios" / f"{name}.yaml", dict(overrides)), keep_events=False)
    assert result.event_digest == GOLDEN[case], (
        f"the event log of {name} {dict(overrides)} changed: if on purpose, update GOLDEN and say why in the commit")
