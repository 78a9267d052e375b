"""Plugin regression: baselines, the diff verdicts, `twin regress` exit codes and the pytest fixture."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path

import pytest

from conftest import MINIMAL
from twin.errors import TwinError
from twin.regress import (HIGHER, LOWER, OK, REGRESSION, SAME, BETTER, add_regress_arguments, cmd_regress,
                          compare_metric, plugin_names, run_regression)

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugins" / "by_run_chunk.py"
GOOD = f"{EXAMPLE}:RunChunkPlugin"
STEP = ["test/Processing"]

# A plugin with a bug: runs whose number is odd are never put in a task.
WORSE = '''
from twin.dirac.returnvalues import S_OK
from twin.dirac.transformation.plugins import TransformationPlugin


class EvenRunsPlugin(TransformationPlugin):
    def _ByRunChunk(self):
        size = int(self.util.getPluginParam("GroupSize", 10))
        even = [lfn for lfn in sorted(self.data) if self.util.fc.getFileUserMetadata(lfn)["Value"].get("runNumber", 0) % 2 == 0]
        ses = ",".join(sorted(set(self.data[even[0]]))) if even else ""
        return S_OK([(ses, even[i:i + size]) for i in range(0, len(even) - size + 1, size)])
'''


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_regress_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


@pytest.fixture
def worse_plugin(tmp_path: Path) -> str:
    path = tmp_path / "worse.py"
    path.write_text(WORSE)
    return f"{path}:EvenRunsPlugin"


def test_directions_and_tolerance():
    assert compare_metric("jobs_failed", 10, 10.4, LOWER, 0.05).status == OK
    assert compare_metric("jobs_failed", 10, 11, LOWER, 0.05).status == REGRESSION
    assert compare_metric("jobs_failed", 10, 8, LOWER, 0.05).status == BETTER
    assert compare_metric("processed_pct", 100.0, 90.0, HIGHER, 0.05).status == REGRESSION
    assert compare_metric("tasks_created", 12, 10, SAME, 0.05).status == REGRESSION  # no better way: a change
    assert compare_metric("jobs_failed", 0, 1, LOWER, 0.05).status == REGRESSION  # floor of 1 x tolerance
    assert compare_metric("x", 3, None, LOWER, 0.05).status == REGRESSION  # metric gone


def test_plugin_names_are_the_class_own_methods():
    from twin.dirac.transformation.plugins import load_plugin_class

    assert plugin_names(load_plugin_class(GOOD)) == ["ByRunChunk"]


def test_baseline_written_then_matched_then_worse_plugin_flagged(tmp_path, worse_plugin, capsys):
    baseline = tmp_path / "b.json"
    first = run_regression(MINIMAL, GOOD, STEP, baseline, update=True)
    assert first.updated and json.loads(baseline.read_text())["metrics"]["transformations[test/Processing].tasks_created"] == 12
    assert run_regression(MINIMAL, GOOD, STEP, baseline).ok
    worse = run_regression(MINIMAL, worse_plugin, STEP, baseline, plugin_name="ByRunChunk")
    flagged = {r.metric for r in worse.regressions}
    assert "transformations[test/Processing].processed_pct" in flagged
    assert cmd_regress(args(MINIMAL, "--plugin", worse_plugin, "--step", STEP[0], "--baseline", baseline)) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_bad_input_is_a_twin_error(tmp_path):
    with pytest.raises(TwinError, match="no step of minimal uses a plugin"):
        run_regression(MINIMAL, GOOD, None, tmp_path / "b.json")
    with pytest.raises(TwinError, match="baseline not found"):
        run_regression(MINIMAL, GOOD, STEP, tmp_path / "missing.json")
    with pytest.raises(TwinError, match="--step 'test/Nope'"):
        run_regression(MINIMAL, GOOD, ["test/Nope"], tmp_path / "b.json")
    with pytest.raises(TwinError, match="cannot load the class"):
        run_regression(MINIMAL, "no_such_module_xyz:Cls", STEP, tmp_path / "b.json")


def _plugin_args() -> list[str]:
    """Load twin's pytest plugin explicitly unless its entry point is installed (it would clash)."""
    installed = any(ep.value == "twin.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "twin.pytest_plugin"]


def test_pytest_fixture_passes_updates_and_fails(pytester, worse_plugin):
    pytester.makepyfile(test_mine=f'''
def test_good(twin_regression):
    assert twin_regression({str(MINIMAL)!r}, plugin={GOOD!r}, baseline="b.json", steps={STEP!r}).ok

def test_worse(twin_regression):
    twin_regression({str(MINIMAL)!r}, plugin={worse_plugin!r}, baseline="b.json", steps={STEP!r}, plugin_name="ByRunChunk")
''')
    missing = pytester.runpytest(*_plugin_args(), "-k", "good")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*baseline not found*"])
    pytester.runpytest(*_plugin_args(), "-k", "good", "--twin-update-baselines").assert_outcomes(passed=1)
    assert (pytester.path / "b.json").is_file()
    result = pytester.runpytest(*_plugin_args())
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*metrics regressed*", "*processed_pct*REGRESSION*"])
