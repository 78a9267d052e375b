"""Shared fixtures: small scenarios built in memory from tests/data/minimal.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from twin.scenario.loader import load_scenario
from twin.scenario.schema import Scenario

DATA = Path(__file__).parent / "data"
MINIMAL = DATA / "minimal.yaml"


def minimal(**overrides: Any) -> Scenario:
    """The minimal scenario with key-path overrides (as `twin run --param`)."""
    return load_scenario(MINIMAL, overrides)


@pytest.fixture
def minimal_scenario() -> Scenario:
    return minimal()
