"""The genuine DIRAC/CTADIRAC plugins inside a whole run give the same run as the native ones."""

from __future__ import annotations

import pytest

from conftest import minimal
from twin.build import build_world
from twin.runner import simulate

pytestmark = pytest.mark.dirac


def _dirac_or_skip() -> None:
    from twin.dirac.host import dirac_available

    if not dirac_available():
        pytest.skip("needs the [dirac] extra (.ci/install-dirac-extra)")


@pytest.mark.parametrize("plugin", ["Standard", "BySize"])
def test_genuine_plugin_run_equals_native_run(plugin):
    _dirac_or_skip()
    step = "workload.productions[test].steps[Processing]"
    overrides = {f"{step}.plugin": plugin, f"{step}.group_size": 5 if plugin == "Standard" else 2}
    native = simulate(minimal(**overrides))
    genuine = simulate(minimal(**overrides, **{f"{step}.plugin_source": "dirac"}))
    assert genuine.summary["transformations"] == native.summary["transformations"]
    assert genuine.event_digest == native.event_digest


def test_dirac_source_really_runs_the_genuine_classes():
    _dirac_or_skip()
    world = build_world(minimal(**{"workload.productions[test].steps[Processing].plugin_source": "dirac"}))
    world.run()
    plugin = world.runtime(2).make_plugin()
    assert type(plugin).__name__ == "GenuinePlugin"
    assert world.dirac_host().plugin_class("ctadirac").__module__.startswith("CTADIRAC.")
