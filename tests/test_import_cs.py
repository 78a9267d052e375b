"""`twin import-cs`: a synthetic DIRAC CS dump -> scenario topology, missing values reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import DATA
from twin.calibration.import_cs import import_cs
from twin.cli import main
from twin.scenario.loader import load_scenario

DUMP = DATA / "cs-dump.cfg"


def test_queues_ses_shares_and_operations_follow_dirac_conventions():
    imported = import_cs(DUMP)
    sites = {s["name"]: s for s in imported.topology["sites"]}
    assert sorted(sites) == ["LCG.IN2P3-CC.fr", "LCG.PIC.es"]  # the site without a queue is left out, and reported
    cc = {ce["name"]: ce for ce in sites["LCG.IN2P3-CC.fr"]["ces"]}
    long, mcore = cc["cccreamceli.in2p3.fr_long"], cc["cccreamceli.in2p3.fr_mcore"]
    assert (long["slots"], long["max_waiting_pilots"], long["hs06_per_core"], long["pilot_lifetime"]) == (600, 100, 11.0, 4320 * 60)
    assert long["memory_mb_per_slot"] == 4000  # inherited from the CE level
    assert (mcore["processors"], mcore["memory_mb_per_slot"], mcore["max_waiting_pilots"]) == (8, 16000, 10)  # SiteDirector default
    assert sites["LCG.IN2P3-CC.fr"]["cpu_share"] == 30 and sites["LCG.IN2P3-CC.fr"]["ses"] == ["CC-IN2P3-Disk", "CC-IN2P3-Tape"]
    storage = {se["name"]: se for se in imported.topology["storage"]}
    assert storage["CC-IN2P3-Tape"]["kind"] == "tape" and storage["PIC-Disk"]["kind"] == "disk"
    assert "capacity_tb" not in storage["CC-IN2P3-Tape"] and storage["CC-IN2P3-Disk"]["capacity_tb"] == 1500
    assert imported.dirac["files_max_reset_counter"] == 5
    assert imported.dirac["production_outputs"] == {"SimtelProd": ["CC-IN2P3-Disk", "PIC-Disk"]}
    assert imported.dirac["operations"] == {"TransformationPlugins/Standard/MaxFilesPerTask": "100"}
    assert "DIRAC SiteDirector default" in imported.provenance["topology.sites[LCG.IN2P3-CC.fr].ces[cccreamceli.in2p3.fr_mcore].max_waiting_pilots"]


def test_missing_and_unused_values_are_reported_not_guessed():
    imported = import_cs(DUMP)
    missing = "\n".join(imported.missing)
    assert "LCG.NoQueue.org/CEs" in missing
    assert "ce13.pic.es/Queues/default/SI00" in missing
    assert "CC-IN2P3-Tape/TotalCapacityTB" in missing and "tape drives" in missing
    unknown = "\n".join(imported.unknown)
    assert "LCG.Gone.xx" in unknown and "Orphan-Disk" in unknown


def test_the_written_topology_loads_once_a_scenario_supplies_the_missing_values(tmp_path: Path, capsys):
    out = tmp_path / "cs.yaml"
    assert main(["import-cs", str(DUMP), "--out", str(out)]) == 0
    assert "missing:" in capsys.readouterr().err
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "from-cs", "extends": ["cs.yaml"],
        "topology": {"storage": [{"name": "CC-IN2P3-Tape", "capacity_tb": 5000, "tape": {"drives": 4, "drive_mbps": 360}}]},
    }))
    loaded = load_scenario(scenario)
    assert loaded.topology.sites[0].ces[0].slots == 600
    assert loaded.dirac.files_max_reset_counter == 5
    assert next(se for se in loaded.topology.storage if se.name == "CC-IN2P3-Tape").tape.disk_cache_tb == 2.0


@pytest.mark.parametrize("text, expected", [
    (None, "no such file"),
    ("Resources\n{\n  Sites\n  {\n", "not a DIRAC CS dump"),
    ("Operations\n{\n}\n", "/Resources: expected a section, not found"),
    ("Resources\n{\n  Sites\n  {\n    LCG\n    {\n      LCG.X.fr\n      {\n        CEs\n        {\n          ce\n          {\n"
     "            Queues\n            {\n              q\n              {\n                SI00 = fast\n              }\n"
     "            }\n          }\n        }\n      }\n    }\n  }\n}\n", "SI00: expected a number, got 'fast'"),
])
def test_bad_dumps_exit_2_with_one_line(tmp_path: Path, capsys, text, expected):
    path = tmp_path / "dump.cfg"
    if text is not None:
        path.write_text(text)
    assert main(["import-cs", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
