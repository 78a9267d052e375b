"""Legal scenarios that cannot do what they seem to ask: one-line warnings for `twin check` and `twin run`.

The schema refuses what the engine cannot run; what remains legal but cannot finish (no slot
anywhere, a fault that starts after the run ends) is said once, before simulating.
"""

from __future__ import annotations

from twin.engine.clock import format_duration
from twin.scenario.schema import Scenario


def warnings(scenario: Scenario) -> list[str]:
    out = []
    ces = [ce for site in scenario.topology.sites for ce in site.ces]
    jobs = any(step.body == "workflow" for prod in scenario.workload.productions for step in prod.steps)
    if jobs and not any(ce.slots for ce in ces):
        out.append("topology: every CE has slots: 0, so no job can run and the workload cannot finish")
    elif jobs and not any(ce.slots and ce.max_waiting_pilots for ce in ces):
        out.append("topology: every CE with slots has max_waiting_pilots: 0, so the SiteDirector submits no pilot "
                   "and the workload cannot finish")
    end = scenario.run.duration
    deadline = scenario.run.deadline
    if deadline is not None and deadline > end:
        out.append(f"run.deadline {format_duration(deadline)} is after run.duration {format_duration(end)}: "
                   "unless all work finishes first, the verdict can only be 'deadline not reached'")
    for i, fault in enumerate(scenario.faults):
        if fault.start >= end:
            out.append(f"faults[{i}]: starts at {format_duration(fault.start)}, after the run ends "
                       f"(run.duration {format_duration(end)}): it has no effect")
    for i, action in enumerate(scenario.workload.operator_actions):
        if action.at >= end:
            out.append(f"workload.operator_actions[{i}]: at {format_duration(action.at)}, after the run ends "
                       f"(run.duration {format_duration(end)}): it has no effect")
    return out
