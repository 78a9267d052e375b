"""plugin_params as DIRAC's plugins read them: refused where DIRAC would raise, never truncated or ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.cli import main

MINIMAL = Path(__file__).parent / "data" / "minimal.yaml"
PROCESSING = "workload.productions[test].steps[Processing]"


def check(capsys, *params: str) -> tuple[int, str]:
    argv = ["check", str(MINIMAL)]
    for param in params:
        argv += ["--param", param]
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("value, key", [("{GroupSize: 2.5}", "GroupSize"), ("{GroupSize: 0}", "GroupSize"),
                                        ("{MaxFiles: 2.5}", "MaxFiles"), ("{MaxFilesPerTask: '3'}", "MaxFilesPerTask"),
                                        ("{Destinations: 1.5}", "Destinations"), ("{GroupSize: true}", "GroupSize")])
def test_a_plugin_param_dirac_casts_with_int_must_be_an_integer(capsys, value, key):
    """DIRAC keeps a non-int transformation parameter as a string and getPluginParam's int() raises on it;
    the twin used to truncate GroupSize 2.5 to tasks of 2."""
    code, err = check(capsys, f"{PROCESSING}.plugin_params={value}")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{PROCESSING}: plugin_params.{key}: expected an integer" in lines[0]


def test_a_key_no_plugin_reads_is_refused(capsys):
    code, err = check(capsys, f"{PROCESSING}.plugin_params={{GroupSiz: 5}}")
    assert code == 2 and "plugin_params.GroupSiz: no plugin reads this key" in err


def test_bysize_groupsize_is_a_size_in_gb(capsys):
    """PluginUtilities.groupBySize reads GroupSize with float(): 2.5 GB is fine, a negative size is not."""
    plugin = f"{PROCESSING}.plugin=BySize"
    assert check(capsys, plugin, f"{PROCESSING}.plugin_params={{GroupSize: 2.5, MaxFiles: 4}}")[0] == 0
    code, err = check(capsys, plugin, f"{PROCESSING}.plugin_params={{GroupSize: -1}}")
    assert code == 2 and "plugin_params.GroupSize: expected a size in GB > 0" in err


def test_integer_plugin_params_and_custom_class_keys_pass(capsys):
    assert check(capsys, f"{PROCESSING}.plugin_params={{GroupSize: 3, Destinations: 0}}")[0] == 0
    custom = f"{PROCESSING}.plugin_class=my.module.MyPlugin"
    assert check(capsys, custom, f"{PROCESSING}.plugin_params={{MyKey: x}}")[0] == 0
