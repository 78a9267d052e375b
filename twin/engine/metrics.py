"""Sampled time series: gauges read at a fixed simulated interval.

Components register gauges (a name and a zero-argument callable) when they are built;
a single sampler process reads them all every `interval` seconds. Sampling costs
O(number of gauges) per interval, independent of the number of jobs or files.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd
import simpy

Gauge = Callable[[], float]


class Metrics:
    """Registry of gauges plus the table of their sampled values."""

    def __init__(self) -> None:
        self._gauges: dict[str, Gauge] = {}
        self._times: list[float] = []
        self._rows: list[tuple[float, ...]] = []
        self._frozen_names: tuple[str, ...] | None = None

    def gauge(self, name: str, read: Gauge) -> None:
        """Register `read` under `name` (e.g. "site.running[LCG.CNAF.it]")."""
        if self._frozen_names is not None:
            raise RuntimeError(f"gauge {name!r} registered after sampling started")
        if name in self._gauges:
            raise ValueError(f"gauge {name!r} registered twice")
        self._gauges[name] = read

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._gauges)

    def sample(self, now: float) -> None:
        if self._frozen_names is None:
            self._frozen_names = tuple(self._gauges)
        self._times.append(now)
        self._rows.append(tuple(float(read()) for read in self._gauges.values()))

    def sampler(self, env: simpy.Environment, interval: float) -> simpy.events.Process:
        """Start the sampling process (first sample at t=0)."""

        def run():
            while True:
                self.sample(env.now)
                yield env.timeout(interval)

        return env.process(run())

    def to_frame(self) -> pd.DataFrame:
        """Wide table: one row per sample time, one column per gauge."""
        names = list(self._frozen_names or self._gauges)
        frame = pd.DataFrame(self._rows, columns=names, dtype="float64")
        frame.insert(0, "time", pd.Series(self._times, dtype="float64"))
        return frame
