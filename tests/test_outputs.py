"""Output folders never lose results: refuse, stage, manifest, interrupt (issue 12); the CLI conventions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twin.cli import main
from twin.outputs import read_manifest, sha256_of, verify

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "tests/data/minimal.yaml"


def run(*argv: str) -> int:
    return main(["run", str(MINIMAL), "--no-progress", *argv])


def test_manifest_lists_every_file_and_force_replaces_the_whole_folder(tmp_path, capsys):
    out = tmp_path / "r"
    assert run("--out", str(out), "--quiet") == 0
    assert capsys.readouterr().out == ""  # --quiet
    manifest = read_manifest(out)
    files = sorted(p.name for p in out.iterdir() if p.name != "run.json")
    assert sorted(manifest["files"]) == files == ["events.parquet", "metrics.csv", "metrics.parquet", "report.html", "summary.json"]
    assert all(manifest["files"][f]["sha256"] == sha256_of(out / f) for f in files)
    assert (manifest["status"], manifest["seed"], manifest["scenario"]) == ("complete", 7, "minimal")
    assert len(manifest["scenario_sha256"]) == 64 and manifest["simulated_time"] > 0
    assert run("--out", str(out), "-q", "--seed", "99") == 2  # refused without --force
    assert "not empty" in capsys.readouterr().err
    assert run("--out", str(out), "-q", "--seed", "99", "--no-report", "--force") == 0
    assert not (out / "report.html").exists()  # the seed-7 report went with its run
    assert json.loads((out / "summary.json").read_text())["seed"] == 99
    assert verify(out, read_manifest(out)) == [] and [p.name for p in tmp_path.iterdir()] == ["r"]  # no staging left


def test_interrupted_run_keeps_partial_outputs_marked_incomplete_and_exits_130(tmp_path, monkeypatch, capsys):
    import twin.runner

    class _Interrupting:
        def update_to(self, now: float) -> None:
            if now > 3600.0:
                raise KeyboardInterrupt

        def close(self) -> None:
            pass

    monkeypatch.setattr(twin.runner, "_progress_bar", lambda duration: _Interrupting())
    monkeypatch.setattr("twin.options.show_progress", lambda args: True)
    out = tmp_path / "r"
    assert run("--out", str(out)) == 130
    assert "partial outputs (marked incomplete) in" in capsys.readouterr().err
    manifest = read_manifest(out)
    assert manifest["status"] == "incomplete" and 3600.0 < manifest["simulated_time"] < 2 * 86400
    assert "report.html" not in manifest["files"] and verify(out, manifest) == []
    assert json.loads((out / "summary.json").read_text())["interrupted_at"] == manifest["simulated_time"]
    assert main(["report", str(out), "-q"]) == 0  # still readable, with a warning
    assert "interrupted at simulated day" in capsys.readouterr().err


def test_interrupting_a_forced_rerun_keeps_the_earlier_results(tmp_path, monkeypatch):
    import twin.runner

    out = tmp_path / "r"
    assert run("--out", str(out), "-q") == 0
    before = read_manifest(out)

    def interrupted(*args, **kwargs):
        from twin.runner import RunInterrupted, _result
        from twin.build import build_world
        from twin.scenario.loader import load_scenario

        raise RunInterrupted(_result(build_world(load_scenario(MINIMAL)), interrupted=True))

    monkeypatch.setattr(twin.runner, "simulate", interrupted)
    assert run("--out", str(out), "-q", "--force") == 130
    assert read_manifest(out) == before
    assert read_manifest(tmp_path / "r.incomplete")["status"] == "incomplete"


def test_report_rewrite_updates_the_manifest(tmp_path):
    out = tmp_path / "r"
    assert run("--out", str(out), "-q", "--no-report") == 0
    assert main(["report", str(out), "-q"]) == 0
    assert verify(out, read_manifest(out)) == [] and "report.html" in read_manifest(out)["files"]


def test_compare_writes_a_folder_and_warns_on_different_seeds(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("--out", str(a), "-q", "--no-report") == 0
    assert run("--out", str(b), "-q", "--no-report", "--seed", "8") == 0
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c")]) == 0
    assert "different seeds (7 and 8)" in capsys.readouterr().err
    assert read_manifest(tmp_path / "c")["kind"] == "compare" and (tmp_path / "c/compare.html").is_file()


def test_a_what_if_without_a_name_does_not_take_its_baselines_folder(tmp_path):
    from twin.scenario.loader import load_scenario

    path = tmp_path / "more slots.yaml"
    path.write_text(f"extends: {MINIMAL}\nrun: {{seed: 8}}\n")
    assert load_scenario(path).name == "more-slots"


def test_a_run_shorter_than_its_deadline_says_not_reached():
    from twin.runner import simulate
    from twin.scenario.loader import load_scenario

    summary = simulate(load_scenario(MINIMAL, {"run.duration": "1h", "run.deadline": "5d"})).summary
    assert summary["plan"]["deadline_met"] is None
    assert "deadline 5.0 d not reached" in summary["plan"]["verdict"] and "MISSED" not in summary["plan"]["verdict"]


def test_warnings_for_legal_inputs_that_cannot_finish(capsys):
    code = main(["check", str(MINIMAL), "-q", "--param", "topology.sites[LCG.PIC.es].ces[0].slots=0",
                 "--param", "topology.sites[LCG.IN2P3-CC.fr].ces[0].slots=0",
                 "--param", "faults=[{kind: site_down, target: LCG.PIC.es, start: 3d}]"])
    err = capsys.readouterr().err.splitlines()
    assert code == 0 and len(err) == 2
    assert "no job can run" in err[0] and "faults[0]: starts at 3.0 d, after the run ends" in err[1]


def test_no_pilot_anywhere_is_a_warning(capsys):
    pilots = [f"topology.sites[{site}].ces[0].max_waiting_pilots=0" for site in ("LCG.PIC.es", "LCG.IN2P3-CC.fr")]
    assert main(["check", str(MINIMAL), "-q", "--param", pilots[0], "--param", pilots[1]]) == 0
    assert "max_waiting_pilots: 0, so the SiteDirector submits no pilot" in capsys.readouterr().err
    assert main(["check", str(MINIMAL), "-q", "--param", pilots[0]]) == 0
    assert capsys.readouterr().err == ""


def test_scenarios_lists_every_shipped_scenario_with_its_question(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(list((ROOT / "scenarios").glob("*.yaml")))
    base = next(line for line in lines if "prod5b-baseline.yaml" in line)
    assert base.endswith("does the whole production (52000 MC jobs, EvnDisp at two NSB levels, DL0 moved to tape) "
                         "finish within 2 weeks, and what saturates first?")
    assert not any("does not load" in line for line in lines)
    assert all(line.endswith("?") for line in lines), "every shipped scenario states the question it answers"


@pytest.mark.parametrize("command", ["run", "check", "scenarios", "compare", "report", "sweep", "validate", "regress"])
def test_every_help_has_an_example_and_the_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    assert f"examples:\n  twin {command}" in text and "exit codes: 0 success" in text and "2 bad input" in text


def test_no_progress_bar_unless_a_person_watches(monkeypatch):
    import argparse
    import io

    from twin.options import show_progress

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not show_progress(argparse.Namespace(quiet=False, no_progress=False))

    class _Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", _Tty())
    assert show_progress(argparse.Namespace(quiet=False, no_progress=False))
    assert not show_progress(argparse.Namespace(quiet=True, no_progress=False))


@pytest.mark.parametrize("command", ["run", "report"])
def test_out_dot_writes_into_the_current_folder(command, tmp_path, monkeypatch, capsys):
    """`--out .` has no name to rename into place unless made absolute (it crashed after simulating)."""
    if command == "report":
        assert run("--out", str(tmp_path / "r"), "-q", "--no-report") == 0
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    argv = ["--out", ".", "-q"]
    assert (run(*argv) if command == "run" else main(["report", str(tmp_path / "r"), *argv])) == 0, capsys.readouterr().err
    manifest = read_manifest(here)
    assert manifest["kind"] == command and verify(here, manifest) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["here", "r"] if command == "report" else ["here"])


def _kinds_logged_by_the_code() -> set[str]:
    """Event kinds: the dotted string literals on the lines of twin/ that log an event."""
    import re

    return {kind for path in (ROOT / "twin").rglob("*.py") for line in path.read_text().splitlines()
            if re.search(r"\.log\(|_log_completion\(", line) for kind in re.findall(r'"([a-z]+\.[a-z_]+)"', line)}


def test_every_event_kind_has_one_row_in_docs_outputs():
    """Issue 12 review: docs/outputs.md lacked eight kinds and listed two nobody logs."""
    import re

    text = (ROOT / "docs/outputs.md").read_text()
    table = text[text.index("## events.parquet"):text.index("## metrics.parquet")]
    rows = [re.match(r"\| `([a-z_.]+)` \|", line) for line in table.splitlines()]
    documented = [row.group(1) for row in rows if row]
    code = _kinds_logged_by_the_code()
    assert {"plugin.error", "transformation.finished", "fault.end", "tape.drives"} <= code  # the scan sees them
    assert sorted(documented) == sorted(code) and len(documented) == len(set(documented))
