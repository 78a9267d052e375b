"""Bad input, per subcommand: exit 2, exactly one line on stderr naming what is wrong, no traceback.

Every row is one thing a user may type (issue 12). Scenario rows run through both `twin check` and
`twin run`: check must refuse everything run would choke on, and run must refuse it before
simulating (these rows would hang or blow up memory otherwise).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from twin.cli import main

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "tests/data/minimal.yaml"
PLUGIN = f"{ROOT / 'examples/plugins/by_run_chunk.py'}:RunChunkPlugin"
FAULT = "faults=[{{kind: {kind}, target: {target}, start: 1h, end: 2h, params: {params}}}]"  # str.format'ed below


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, Path]:
    """Files and folders the rows refer to: a real run folder, damaged copies of it, a file, a non-empty folder."""
    from twin.runner import run_scenario
    from twin.scenario.loader import load_scenario

    root = tmp_path_factory.mktemp("bad-inputs")
    run = run_scenario(load_scenario(MINIMAL), root / "run", progress=False, report=False).out
    places = {"run": run, "file": root / "a-file.txt", "full": root / "full", "root": root}
    places["file"].write_text("not a folder\n")
    places["full"].mkdir()
    (places["full"] / "keep.txt").write_text("earlier results\n")
    places["empty_summary"] = _damaged(run, root / "empty-summary", "summary.json", "{}")
    places["no_columns"] = _damaged(run, root / "no-columns", "events.parquet", None)
    places["tampered"] = _damaged(run, root / "tampered", "metrics.parquet", None, keep_manifest=True)
    places["dups"] = _write(root / "dups.yaml", f"extends: {MINIMAL}\nname: d\nrun:\n  seed: 3\n  seed: 4\n")
    (root / "lots.yml").write_text((ROOT / "scenarios/workflows/prod5b_test.yml").read_text().replace("n_shower: 50", "n_shower: lots"))
    places["no_such_day"] = _write(root / "no-such-day.yaml", f"extends: {MINIMAL}\nname: d\nrun:\n  start_date: 2026-13-01\n")
    places["lots"] = _write(root / "lots.yaml", f"extends: {MINIMAL}\nname: lots\nworkload:\n  workflow_files: [lots.yml]\n")
    return places


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _damaged(run: Path, to: Path, name: str, text: str | None, keep_manifest: bool = False) -> Path:
    """A copy of `run` with `name` replaced (text, or a parquet table with other columns)."""
    import pandas as pd

    shutil.copytree(run, to)
    if text is not None:
        (to / name).write_text(text)
    else:
        pd.DataFrame({"when": [1.0]}).to_parquet(to / name)
    if not keep_manifest:
        (to / "run.json").unlink()
    return to


# (id, arguments with {placeholders}, a substring of the error line)
SCENARIO_ROWS = [
    ("seed-negative", ["--seed", "-1"], "argument --seed: expected a seed between 0"),
    ("seed-not-int", ["--seed", "x"], "argument --seed: expected a seed (an integer)"),
    ("param-no-equals", ["--param", "run.seed"], "--param 'run.seed': expected KEY.PATH=VALUE"),
    ("param-bad-path", ["--param", "run..seed=1"], "malformed key path"),
    ("param-seed-negative", ["--param", "run.seed=-1"], "--param: run.seed: expected greater than or equal to 0"),
    ("polling-zero", ["--param", "dirac.transformation_agent.polling_time=0"],
     "--param: dirac.transformation_agent.polling_time: expected greater than or equal to 1, got 0 (agent polling time"),
    ("sample-interval-zero", ["--param", "run.sample_interval=0"], "--param: run.sample_interval"),
    ("duration-unknown-unit", ["--param", "run.duration=1y"], "--param: run.duration: expected a duration"),
    ("too-many-samples-weeks", ["--param", "run.duration=52w", "--param", "run.sample_interval=60"],
     "expected at most 200,000 metric samples"),
    ("duration-inf", ["--param", "run.duration=.inf"], "--param: run.duration: expected a finite duration"),
    ("duration-zero", ["--param", "run.duration=0"], "--param: run.duration: expected greater than 0"),
    ("cpu-inf", ["--param", "workload.productions[test].steps[MCSimulation].job.cpu_hs06s=.inf"],
     "--param: workload.productions[test].steps[MCSimulation].job.cpu_hs06s: expected a finite number"),
    ("hs06-nan", ["--param", "topology.sites[LCG.PIC.es].ces[0].hs06_per_core=.nan"], "expected a finite number"),
    ("initial-data-1e12", ["--param", "workload.initial_data=[{name: x, count: 1000000000000, ses: [PIC-Disk]}]"],
     "--param: workload.initial_data[x].count: expected less than or equal to 10000000"),
    ("slots-huge", ["--param", "topology.sites[LCG.PIC.es].ces[0].slots=1000000000"], "expected less than or equal to 1000000"),
    ("unknown-plugin", ["--param", "workload.productions[test].steps[Processing].plugin=NoSuchPlugin"],
     "expected a TransformationAgent plugin of the twin"),
    ("name-parent", ["--param", "name=../../elsewhere"], "--param: name: expected a string matching the pattern"),
    ("name-absolute", ["--param", "name=/tmp/x"], "--param: name: expected a string matching the pattern"),
    ("se-banned-access", ["--param", FAULT.format(kind="se_banned", target="PIC-Disk", params="{access: wrte}")],
     "params.access: expected 'read', 'write' or 'all' for a se_banned fault"),
    ("db-slow-negative", ["--param", FAULT.format(kind="db_slow", target="JobDB", params="{factor: -3}")],
     "params.factor: expected greater than 0 for a db_slow fault"),
    ("db-slow-zero", ["--param", FAULT.format(kind="db_slow", target="JobDB", params="{factor: 0}")],
     "params.factor: expected greater than 0"),
    ("spike-above-1", ["--param", FAULT.format(kind="failure_spike", target="LCG.PIC.es", params="{job_failure_prob: 1.5}")],
     "params.job_failure_prob: expected less than or equal to 1"),
    ("fault-unknown-key", ["--param", FAULT.format(kind="site_down", target="LCG.PIC.es", params="{factr: 2}")],
     "params.factr: unknown parameter for a site_down fault"),
    ("cpu-cv-huge", ["--param", "workload.productions[test].steps[MCSimulation].job.cpu_cv=1000.0"],
     "expected less than or equal to 10, got 1000.0 (CPU coefficient of variation"),
    ("reschedule-delays-empty", ["--param", "dirac.reschedule_delays=[]"], "--param: dirac.reschedule_delays"),
    ("failure-sites-match-nothing", ["--param", "failure_models={sites: [{sites: 'LCG.NOPE*', good_failure_prob: 0.5}]}"],
     "--param: failure_models.sites[0].sites: expected a pattern matching some site name (LCG."),
    ("failure-steps-match-nothing", ["--param", "failure_models={steps: [{steps: 'nope/*', failure_prob: 0.9}]}"],
     "--param: failure_models.steps[0].steps: expected a pattern matching some 'Production/Step' name (test/"),
    ("supply-steps-match-nothing", ["--param", "supply=[{steps: 'nope/*', mode: fixed}]"],
     "--param: supply[0].steps: expected a pattern matching"),
    ("unknown-key", ["--param", "run.sead=3"], "unknown key (did you mean 'seed'?)"),
    ("start-date-not-iso", ["--param", "run.start_date=2026-3-1"], "--param: run.start_date: expected a calendar date YYYY-MM-DD"),
    ("start-date-with-time", ["--param", "run.start_date=2026-03-01T06:00"], "run.start_date: expected a calendar date"),
    ("start-date-number", ["--param", "run.start_date=20260301"], "run.start_date: expected a calendar date"),
]
FILE_ROWS = [
    ("missing-file", "{root}/nope.yaml", "file not found"),
    ("duplicate-key", "{dups}", "duplicate key 'seed' (also on line 4)"),
    ("workflow-n-shower-lots", "{lots}", "job_config.n_shower: expected a positive integer, got 'lots'"),
    ("start-date-no-such-day", "{no_such_day}", "no-such-day.yaml:4: invalid YAML: '2026-13-01' is not a valid date"),
]
ROWS = [
    *[(f"{cmd}-{name}", [cmd, "{minimal}", *args], expect) for cmd in ("check", "run")
      for name, args, expect in SCENARIO_ROWS],
    *[(f"{cmd}-{name}", [cmd, path], expect) for cmd in ("check", "run") for name, path, expect in FILE_ROWS],
    ("run-out-is-a-file", ["run", "{minimal}", "--out", "{file}"], "a file of that name exists"),
    ("run-out-not-empty", ["run", "{minimal}", "--out", "{full}"], "the folder is not empty"),
    ("run-out-under-a-file", ["run", "{minimal}", "--out", "{file}/sub"], "is a file"),
    ("run-out-not-writable", ["run", "{minimal}", "--out", "/proc/x"], "--out /proc/x: cannot create"),
    ("run-force-not-twins", ["run", "{minimal}", "--out", "{full}", "--force"], "the folder was not written by twin"),
    ("run-scale-above-one", ["run", "{minimal}", "--scale", "2"], "--scale 2.0: expected 0 < scale <= 1"),
    ("compare-force-not-twins", ["compare", "{run}", "{run}", "--out", "{full}", "--force"], "not written by twin"),
    ("compare-out-is-an-input", ["compare", "{run}", "{run}", "--out", "{run}", "--force"], "apart from the input"),
    ("report-out-inside-the-run", ["report", "{run}", "--out", "{run}/sub"], "outside the run folder"),
    ("sweep-force-not-twins", ["sweep", "{minimal}", "--workers", "0", "--out", "{full}", "--force"], "not written by twin"),
    ("compare-out-is-a-file", ["compare", "{run}", "{run}", "--out", "{file}"], "a file of that name exists"),
    ("compare-out-not-empty", ["compare", "{run}", "{run}", "--out", "{full}"], "the folder is not empty"),
    ("compare-not-a-run", ["compare", "{full}", "{run}"], "summary.json: missing"),
    ("compare-missing", ["compare", "{root}/nope", "{run}"], "run folder not found"),
    ("compare-empty-summary", ["compare", "{run}", "{empty_summary}"], "expected a twin run summary"),
    ("compare-wrong-columns", ["compare", "{run}", "{no_columns}"], "events.parquet: expected the columns time, kind"),
    ("compare-tampered", ["compare", "{run}", "{tampered}"], "metrics.parquet differs from the one this run wrote"),
    ("report-out-is-a-file", ["report", "{run}", "--out", "{file}"], "a file of that name exists"),
    ("report-out-not-empty", ["report", "{run}", "--out", "{full}"], "the folder is not empty"),
    ("report-not-a-run", ["report", "{full}"], "summary.json: missing"),
    ("sweep-scheduler-not-a-url", ["sweep", "{minimal}", "--scheduler", "not a url"], "expected a dask scheduler address"),
    ("sweep-seed-axis-negative", ["sweep", "{minimal}", "--param", "run.seed=-1,5", "--workers", "0"],
     "--param: run.seed: expected greater than or equal to 0"),
    ("sweep-seeds-zero", ["sweep", "{minimal}", "--seeds", "0"], "argument --seeds: expected an integer >= 1"),
    ("sweep-workers-negative", ["sweep", "{minimal}", "--workers", "-1"], "argument --workers: expected an integer >= 0"),
    ("sweep-worker-timeout-zero", ["sweep", "{minimal}", "--worker-timeout", "0"], "argument --worker-timeout: expected a finite number of seconds > 0"),
    ("sweep-out-is-a-file", ["sweep", "{minimal}", "--workers", "0", "--out", "{file}"], "a file of that name exists"),
    ("sweep-axis-without-values", ["sweep", "{minimal}", "--param", "run.seed="], "expected KEY.PATH=V1,V2"),
    ("sweep-bad-value", ["sweep", "{minimal}", "--workers", "0", "--param", "run.duration=1d,.inf"],
     "--param: run.duration: expected a finite duration"),
    ("regress-baseline-is-a-folder", ["regress", "{minimal}", "--plugin", PLUGIN, "--step", "test/Processing",
                                      "--baseline", "{full}", "--update-baseline"], "it is a folder"),
    ("regress-tolerance-nan", ["regress", "{minimal}", "--plugin", PLUGIN, "--tolerance", "nan"], "argument --tolerance: expected a finite number"),
    ("regress-tolerance-inf", ["regress", "{minimal}", "--plugin", PLUGIN, "--tolerance", "inf"], "expected a finite number"),
    ("regress-tolerance-negative", ["regress", "{minimal}", "--plugin", PLUGIN, "--tolerance", "-0.1"], "expected a finite number >= 0"),
    ("regress-seed-negative", ["regress", "{minimal}", "--plugin", PLUGIN, "--seed", "-1"], "argument --seed"),
    ("regress-missing-baseline", ["regress", "{minimal}", "--plugin", PLUGIN, "--step", "test/Processing",
                                  "--baseline", "{root}/none.json"], "baseline not found"),
    ("validate-out-is-a-file", ["validate", "--only", "nothing", "--out", "{file}"], "a file of that name exists"),
    ("scenarios-dir-is-a-file", ["scenarios", "--dir", "{file}"], "expected a folder of scenario YAML files"),
    ("unknown-command", ["simulate"], "invalid choice: 'simulate'"),
]


@pytest.mark.parametrize(("argv", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_exits_2_with_one_line(argv, expected, place, capsys, monkeypatch):
    monkeypatch.chdir(place["root"])  # a default output folder (runs/...) would show up in the listing
    names = {**{k: str(v) for k, v in place.items()}, "minimal": str(MINIMAL)}
    before = sorted(p.name for p in place["root"].iterdir())
    try:
        code = main([re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group(0)), a) for a in argv])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0], lines[0]
    assert sorted(p.name for p in place["root"].iterdir()) == before, "bad input must not write anything"
    assert (place["full"] / "keep.txt").read_text() == "earlier results\n"


def test_the_run_folder_of_the_table_is_intact(place):
    """The rows above compare and report against this folder: it must be a valid run (or every row is vacuous)."""
    from twin.runfolder import check_run

    assert check_run(place["run"]) == []
    assert json.loads((place["run"] / "run.json").read_text())["status"] == "complete"
