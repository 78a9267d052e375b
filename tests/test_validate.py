"""`twin validate`: cases as data, verdicts, exit codes, and the shipped suite's structure."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from conftest import MINIMAL
from twin.errors import TwinError
from twin.validate import add_validate_arguments, cmd_validate, default_folder, load_suite

MODELS_PY = '''
from twin.validate import SkipCase, model

@model("constant")
def constant(value, base=None):
    return {"x": value, "items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}

@model("absent")
def absent(base=None):
    raise SkipCase("prerequisite missing")
'''

SUITE = f'''
sources:
  three: {{model: constant, args: {{value: 3.0}}}}
  minimal: {{model: scenario, args: {{path: {MINIMAL}}}}}
  missing: {{model: absent}}
cases:
  - {{name: close-enough, checks: x near 3.1, reference: test, of: three, twin: x, expected: 3.1, tolerance: {{rel: 0.05}}}}
  - {{name: expression, checks: x squared, reference: test, of: three, twin: {{expr: "x ** 2"}}, expected: 9, compare: eq}}
  - {{name: each-item, checks: v >= 1, reference: test, of: three, for_each: {{path: items}}, twin: v, expected: 1, compare: ">="}}
  - {{name: mc-done, checks: 60 MC tasks, reference: minimal.yaml, of: minimal,
     twin: "transformations[test/MCSimulation].tasks.Done", expected: 60, compare: eq}}
  - {{name: skipped-one, checks: skip, reference: test, of: missing, twin: x, expected: 1, compare: eq}}
  - {{name: wrong, checks: deliberately failing, reference: test, of: three, twin: x, expected: 4.0, tolerance: {{abs: 0.5}}}}
'''


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_validate_arguments(parser)
    return cmd_validate(parser.parse_args([str(a) for a in argv]))


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "cases.yaml").write_text(SUITE)
    (tmp_path / "models.py").write_text(MODELS_PY)
    return tmp_path


def test_a_failing_case_exits_1_and_is_reported(suite, tmp_path, capsys):
    assert run("--dir", suite, "--out", tmp_path / "out") == 1
    out = capsys.readouterr().out
    assert "wrong" in out and "FAIL" in out
    assert "validation: 5 passed, 1 failed, 1 skipped" in out  # each-item expands to two cases
    rows = {r["name"]: r["status"] for r in json.loads((tmp_path / "out" / "validation.json").read_text())}
    assert rows["each-item[a]"] == rows["each-item[b]"] == rows["mc-done"] == "pass"
    assert rows["skipped-one"] == "skipped" and rows["wrong"] == "FAIL"


def test_passing_subset_exits_0_and_quiet_prints_only_counts(suite, capsys):
    assert run("--dir", suite, "--only", "close-*", "--only", "mc-done", "--only", "skipped-one", "--quiet") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("validation: 2 passed, 0 failed, 1 skipped")


def test_unknown_source_or_pattern_is_bad_input(suite):
    (suite / "more.yaml").write_text("cases:\n  - {name: x, checks: c, reference: r, of: nowhere, twin: x, expected: 1}\n")
    with pytest.raises(TwinError, match=r"more.yaml: cases\[0\]\.of: unknown source 'nowhere'"):
        run("--dir", suite)
    (suite / "more.yaml").unlink()
    with pytest.raises(TwinError, match="no case matches"):
        run("--dir", suite, "--only", "zzz")


def test_shipped_suite_is_well_formed_and_covers_the_issue():
    sources, cases = load_suite(default_folder())
    names = {c.name for c in cases}
    for needed in ("mmc-mean-wait-erlang-c", "littles-law-queue", "tape-throughput-saturated", "minimal-conserved",
                   "faulted-conserved", "plugin-equal", "prod5b-mc-total-created", "prod5b-evndisp-processed"):
        assert needed in names
    assert all(c.reference for c in cases)


def test_shipped_analytic_tape_cases_pass():
    assert run("--only", "tape-*", "--quiet") == 0


def test_prod5b_case_reads_the_monitor_total_created_as_tasks_created_not_as_done(monkeypatch):
    """Issue 11 item 15: the Transformation Monitor's TotalCreated counts every task ever created (retries
    included), so it is compared with the twin's tasks_created, read from the observed file, never with Done."""
    import twin.validate as validate

    sources, cases = load_suite(default_folder())
    monitor_cases = [c for c in cases if "TotalCreated" in c.reference]
    assert monitor_cases and all(c.twin == "tasks_created" and c.expected == {"path": "monitor.total_created"}
                                 for c in monitor_cases)
    assert not [c for c in cases if c.twin == "tasks.Done" and "Monitor" in c.reference]
    fake = {"transformations": [{"name": f"Prod5b-{p}/{s}", "type": t} for p in ("gamma-diffuse", "electron", "proton")
                                for s, t in (("MCSimulation", "MCSimulation"), ("NSB1x", "DataReprocessing"))]}
    monkeypatch.setattr(validate, "scenario_model", lambda path, overrides=None, base=None: fake)
    src = next(s for s in sources.values() if s.model == "scenario_vs_monitor")
    out = validate.MODELS[src.model](**{**src.args, "path": "unused"}, base=src.base)
    created = {t["name"]: t.get("monitor", {}).get("total_created") for t in out["transformations"]}
    assert created == {"Prod5b-gamma-diffuse/MCSimulation": 500, "Prod5b-electron/MCSimulation": 100,
                       "Prod5b-proton/MCSimulation": 2000, "Prod5b-gamma-diffuse/NSB1x": None,
                       "Prod5b-electron/NSB1x": None, "Prod5b-proton/NSB1x": None}  # Step2 rows are withheld
