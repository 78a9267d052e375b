"""pytest plugin (entry point `pytest11: twin`): the `twin_regression` fixture for plugin authors.

    def test_my_plugin(twin_regression):
        result = twin_regression("scenario.yaml", plugin="my_plugins.py:MyPlugin",
                                 baseline="baselines/scenario.json", steps=["Prod/Step"])
        assert result.ok

The fixture runs the scenario with the class substituted (as `twin regress`), compares the key
metrics with the baseline and fails the test with the diff table on a regression. Relative paths
(scenario, baseline, a `file.py:Class` plugin) are taken from the test file's folder.
`pytest --twin-update-baselines` rewrites the baselines instead of comparing. Importing this
module imports no simulation code, so it costs nothing in test sessions that do not use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("twin", "twin plugin regression")
    group.addoption("--twin-update-baselines", action="store_true", default=False,
                    help="rewrite the baselines used by the twin_regression fixture instead of comparing")


@pytest.fixture
def twin_regression(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Callable(scenario, plugin, baseline, steps=None, tolerance=0.05, overrides=None, plugin_name=None)
    -> twin.regress.Comparison; fails the test on a regression or bad input."""
    from twin.errors import TwinError
    from twin.regress import run_regression

    here = Path(request.node.path).parent
    update = request.config.getoption("--twin-update-baselines")

    def check(scenario: str | Path, plugin: str, baseline: str | Path, steps: list[str] | None = None,
              tolerance: float = 0.05, overrides: dict[str, Any] | None = None, plugin_name: str | None = None):
        try:
            result = run_regression(here / scenario, plugin, steps, here / baseline, update, tolerance, overrides,
                                    plugin_name, base=here)
        except TwinError as exc:
            pytest.fail(f"twin_regression: {exc}", pytrace=False)
        if not result.ok:
            pytest.fail(f"twin_regression: {len(result.regressions)} metrics regressed against {result.baseline_path}\n"
                        f"{result.table()}", pytrace=False)
        return result

    return check
