"""The run's event log: one row per state change, kept columnar for 10^6-job runs.

Rows are appended to plain Python lists (cheap, no per-row objects) and converted to a
pandas DataFrame once, at the end. Strings repeat a lot (kinds, states, site names),
so they become pandas categoricals on export.
"""

from __future__ import annotations

import hashlib
import math
from typing import Iterable

import pandas as pd

COLUMNS = ("time", "kind", "entity", "state", "detail", "value")


class EventLog:
    """Append-only log of (time, kind, entity, state, detail, value) rows.

    kind    what happened, dotted: "job.status", "fault.start", "task.status"
    entity  which object: "job:42", "site:LCG.CNAF.it", "trans:3/task:17"
    state   the new state or outcome ("Running", "banned")
    detail  free text (minor status, reason)
    value   an optional number (bytes, seconds, counts)
    """

    __slots__ = ("_time", "_kind", "_entity", "_state", "_detail", "_value", "enabled", "_kinds_off")

    def __init__(self, enabled: bool = True, disabled_kinds: Iterable[str] = ()) -> None:
        self._time: list[float] = []
        self._kind: list[str] = []
        self._entity: list[str] = []
        self._state: list[str] = []
        self._detail: list[str] = []
        self._value: list[float] = []
        self.enabled = enabled
        self._kinds_off = frozenset(disabled_kinds)

    def log(self, time: float, kind: str, entity: str, state: str = "", detail: str = "", value: float = math.nan) -> None:
        if not self.enabled or kind in self._kinds_off:
            return
        self._time.append(time)
        self._kind.append(kind)
        self._entity.append(entity)
        self._state.append(state)
        self._detail.append(detail)
        self._value.append(value)

    def __len__(self) -> int:
        return len(self._time)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "time": pd.Series(self._time, dtype="float64"),
                "kind": pd.Categorical(self._kind),
                "entity": pd.Series(self._entity, dtype="string"),
                "state": pd.Categorical(self._state),
                "detail": pd.Categorical(self._detail),
                "value": pd.Series(self._value, dtype="float64"),
            }
        )
        return frame

    def digest(self) -> str:
        """SHA-256 over every row: equal digests mean bit-identical logs."""
        h = hashlib.sha256()
        for row in zip(self._time, self._kind, self._entity, self._state, self._detail, self._value):
            h.update(repr(row).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()
