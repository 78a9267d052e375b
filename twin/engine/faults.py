"""The fault schedule: faults are data in the scenario, applied at simulated times.

Components that can fail register a handler per fault kind when they are built
("site_down" -> the Site, "se_banned" -> the StorageElement...). The schedule
starts one small process per fault entry (a handful per scenario, not per job),
calls the handler with active=True at `start` and active=False at `end`, and writes
both edges to the event log so every fault leaves a trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import simpy

from twin.engine.eventlog import EventLog

FaultHandler = Callable[[str, dict[str, Any], bool], None]


class FaultSpec(Protocol):
    kind: str
    target: str
    start: float
    end: float | None
    params: dict[str, Any]


@dataclass
class FaultSchedule:
    env: simpy.Environment
    log: EventLog
    handlers: dict[str, tuple[FaultHandler, Callable[[str], bool]]] = field(default_factory=dict)
    active: set[tuple[str, str]] = field(default_factory=set)

    def register(self, kind: str, handler: FaultHandler, has_target: Callable[[str], bool]) -> None:
        """Declare that `kind` faults are applied by `handler`; `has_target` validates targets."""
        self.handlers[kind] = (handler, has_target)

    def check(self, faults: list[FaultSpec]) -> list[str]:
        """Problems (unknown kind, unknown target) as messages, index-tagged for the scenario path."""
        problems = []
        for i, fault in enumerate(faults):
            if fault.kind not in self.handlers:
                problems.append(f"faults[{i}].kind: expected one of {sorted(self.handlers)}, got {fault.kind!r}")
            elif not self.handlers[fault.kind][1](fault.target):
                problems.append(f"faults[{i}].target: no {fault.kind} target named {fault.target!r} in the topology")
        return problems

    def schedule(self, faults: list[FaultSpec]) -> None:
        for fault in faults:
            self.env.process(self._apply(fault))

    def _apply(self, fault: FaultSpec):
        handler = self.handlers[fault.kind][0]
        yield self.env.timeout(fault.start)
        self._edge(fault, handler, True)
        if fault.end is not None:
            yield self.env.timeout(fault.end - fault.start)
            self._edge(fault, handler, False)

    def _edge(self, fault: FaultSpec, handler: FaultHandler, active: bool) -> None:
        key = (fault.kind, fault.target)
        (self.active.add if active else self.active.discard)(key)
        self.log.log(self.env.now, "fault.start" if active else "fault.end", f"{fault.kind}:{fault.target}", fault.kind, repr(fault.params) if fault.params else "")
        handler(fault.target, fault.params, active)
