"""What faults of one kind are active on one component now.

Fault windows may overlap (two site_down entries, two db_slow factors on one DB). Each
start adds its value, each end removes one equal value, and the component asks what is
active, so an early end of one fault never cancels another that is still running.
"""

from __future__ import annotations

import math
from typing import Iterator


class ActiveFaults:
    """The values (factor, probability, drive count; 1 for on/off faults) of active faults."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: list[float] = []

    def edge(self, value: float, active: bool) -> None:
        """Apply a fault's start (active) or end."""
        if active:
            self._values.append(value)
        elif value in self._values:
            self._values.remove(value)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __iter__(self) -> Iterator[float]:
        return iter(self._values)

    def total(self) -> float:
        return float(sum(self._values))

    def product(self) -> float:
        return float(math.prod(self._values))
