"""`twin sensitivity` (issue 15 part 3): which assumptions are screened, the flip scan, the report section."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import DATA
from twin.calibration.sensitivity import assumptions
from twin.cli import main
from twin.errors import TwinError
from twin.scenario.loader import load_scenario

SMALL = DATA / "calibration-small.yaml"
PROVENANCE = {
    "failure_models.steps[processing].failure_prob": "assumption: processing failures",
    "topology.sites[LCG.IN2P3-CC.fr].ces[cc-ce].slots": "assumption: CTA share of CC",
    "topology.sites[LCG.PIC.es].ces[pic-ce].slots": "assumption: CTA share of PIC",
    "workload.productions[test].steps[MCSimulation].max_tasks": "source: the request",
    "run.stop_when_done": "assumption: not a number",
}


def _scenario(tmp_path, **extra):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "sens", "extends": str(SMALL), "provenance": PROVENANCE,
                                    "overrides": {"failure_models.steps[processing].failure_prob": 0.2, **extra}}))
    return path


def test_only_numeric_assumptions_are_screened_within_their_bounds(tmp_path):
    found, skipped = assumptions(load_scenario(_scenario(tmp_path)), spread=0.9)
    by = {a.key: a for a in found}
    assert sorted(by) == ["failure_models.steps[processing].failure_prob", "topology.sites[LCG.IN2P3-CC.fr].ces[cc-ce].slots",
                          "topology.sites[LCG.PIC.es].ces[pic-ce].slots"]  # "source:" values are not assumptions
    assert (by["topology.sites[LCG.PIC.es].ces[pic-ce].slots"].low, by["topology.sites[LCG.PIC.es].ces[pic-ce].slots"].high) == pytest.approx((2, 38))
    assert by["failure_models.steps[processing].failure_prob"].high == pytest.approx(0.38)
    assert any(s.startswith("run.stop_when_done") for s in skipped)
    only, _ = assumptions(load_scenario(_scenario(tmp_path)), 0.9, only=["topology.sites[LCG.PIC.es].*"])
    assert [a.key for a in only] == ["topology.sites[LCG.PIC.es].ces[pic-ce].slots"]  # brackets literal, not a class


@pytest.mark.slow
def test_sensitivity_ranks_assumptions_finds_the_verdict_flip_and_shows_in_the_run_report(tmp_path, capsys):
    """With a deadline the nominal run just meets, fewer CC slots miss it: the flip scan must find that."""
    scenario = _scenario(tmp_path, **{"run.deadline": "3h"})
    run = tmp_path / "run"
    assert main(["run", str(scenario), "--out", str(run), "--no-progress", "--no-report"]) == 0
    code = main(["sensitivity", str(scenario), "--spread", "0.9", "--trajectories", "2", "--levels", "3", "--top", "3",
                 "--workers", "0", "--no-progress", "--out", str(run)])
    assert code == 0
    result = json.loads((run / "sensitivity.json").read_text())
    assert result["nominal"]["deadline_met"] is True
    cc = next(p for p in result["parameters"] if "IN2P3" in p["key"])
    assert cc["flip"] is not None and cc["flip"] < cc["nominal"] and "deadline missed" in cc["flip_note"]
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "What this verdict depends on" in html and "deadline missed at" in html


def test_too_few_assumptions_is_a_clear_error(tmp_path):
    with pytest.raises(TwinError, match="at least 2 numeric 'assumption:' values"):
        from twin.calibration.sensitivity import sensitivity

        sensitivity(SMALL, workers=0, progress=False)


@pytest.mark.parametrize("item, expected", [
    ("dirac.files_max_reset_counter,dirac.failover_max_flush=2:9", "one key per range"),
    ("dirac.files_max_reset_counter=2:9:int", "one key per range"),
    ("dirac.files_max_reset_counter=1:9:log", "one key per range"),
    ("dirac.files_max_reset_counter=9:2", "--param 'dirac.files_max_reset_counter=9:2': expected LOW < HIGH"),
])
def test_bad_sensitivity_params_exit_2_with_one_line(tmp_path, capsys, item, expected):
    code = main(["sensitivity", str(DATA / "minimal.yaml"), "--param", item, "--param", "dirac.failover_max_flush=1:3",
                 "--workers", "0", "--no-progress", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and len(err.splitlines()) == 1 and "--fit" not in err.replace("--fit)", "")
