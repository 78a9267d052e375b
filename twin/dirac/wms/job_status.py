"""Job states and the JobsStateMachine of DIRACCommon 9.1.22 (``WorkloadManagementSystem/Client/JobStatus.py``).

The table is copied state for state. ``next_state`` reproduces
``JobsStateMachine(current).getNextState(proposed)``, the call that ``JobDB.setJobsMajorStatus`` and
``JobStatusUtility.getNewStatus`` make: an allowed proposal is taken; a disallowed one is replaced
by the state's default, which for every job state is the current state ("stay where you are").
``Deleted`` has no transition list and no default, and ``State.transitionRule`` then returns the
proposal itself: in DIRAC a status update on a Deleted job is accepted. This is kept on purpose
(``StateMachine.setState`` would refuse, but the JobDB does not use it).
"""

from __future__ import annotations

from typing import Final

SUBMITTING: Final = "Submitting"
RECEIVED: Final = "Received"
CHECKING: Final = "Checking"
STAGING: Final = "Staging"
SCOUTING: Final = "Scouting"
WAITING: Final = "Waiting"
MATCHED: Final = "Matched"
#: Virtual: DIRAC almost never stores it (StalledJobAgent's reschedule sites do, briefly).
RESCHEDULED: Final = "Rescheduled"
RUNNING: Final = "Running"
STALLED: Final = "Stalled"
COMPLETING: Final = "Completing"
DONE: Final = "Done"
COMPLETED: Final = "Completed"
FAILED: Final = "Failed"
DELETED: Final = "Deleted"
KILLED: Final = "Killed"

#: In DIRAC's declaration order.
JOB_STATES: tuple[str, ...] = (
    SUBMITTING,
    RECEIVED,
    CHECKING,
    SCOUTING,
    STAGING,
    WAITING,
    MATCHED,
    RESCHEDULED,
    RUNNING,
    STALLED,
    COMPLETING,
    DONE,
    COMPLETED,
    FAILED,
    DELETED,
    KILLED,
)

#: Payload work finished.
JOB_FINAL_STATES: frozenset[str] = frozenset({DONE, COMPLETED, FAILED, KILLED})
#: The WMS will not update the job any more.
JOB_REALLY_FINAL_STATES: frozenset[str] = frozenset({DELETED})

#: from-state -> states it may move to (JobsStateMachine.states[...].stateMap).
JOB_STATE_MACHINE: dict[str, frozenset[str]] = {
    DELETED: frozenset(),
    KILLED: frozenset({DELETED}),
    FAILED: frozenset({RESCHEDULED, DELETED}),
    DONE: frozenset({DELETED}),
    COMPLETED: frozenset({DONE, FAILED}),
    COMPLETING: frozenset({DONE, FAILED, COMPLETED, STALLED, KILLED}),
    STALLED: frozenset({RUNNING, FAILED, KILLED}),
    RUNNING: frozenset({STALLED, DONE, FAILED, RESCHEDULED, COMPLETING, KILLED, RECEIVED}),
    RESCHEDULED: frozenset({WAITING, RECEIVED, DELETED, FAILED, KILLED}),
    MATCHED: frozenset({RUNNING, FAILED, RESCHEDULED, KILLED}),
    WAITING: frozenset({MATCHED, RESCHEDULED, DELETED, KILLED}),
    STAGING: frozenset({CHECKING, WAITING, FAILED, KILLED}),
    SCOUTING: frozenset({CHECKING, FAILED, STALLED, KILLED}),
    CHECKING: frozenset({SCOUTING, STAGING, WAITING, RESCHEDULED, FAILED, DELETED, KILLED}),
    RECEIVED: frozenset({SCOUTING, CHECKING, STAGING, WAITING, FAILED, DELETED, KILLED}),
    SUBMITTING: frozenset({RECEIVED, CHECKING, DELETED, KILLED}),
}

#: State levels (ordering used by DIRAC monitoring).
JOB_STATE_LEVEL: dict[str, int] = {
    SUBMITTING: 0,
    RECEIVED: 1,
    CHECKING: 2,
    SCOUTING: 3,
    STAGING: 4,
    WAITING: 5,
    MATCHED: 6,
    RESCHEDULED: 7,
    RUNNING: 8,
    STALLED: 9,
    COMPLETING: 10,
    DONE: 12,
    COMPLETED: 11,
    FAILED: 13,
    KILLED: 14,
    DELETED: 15,
}

#: defState of each State; None where DIRAC has none (only Deleted).
_DEFAULT_STATE: dict[str, str | None] = {state: state for state in JOB_STATES}
_DEFAULT_STATE[DELETED] = None


def next_state(current: str, proposed: str, force: bool = False) -> tuple[str, bool]:
    """The state a job ends in when ``proposed`` is asked from ``current``, and whether it was accepted.

    A rejected proposal leaves the job where it is (``accepted`` False); JobDB then logs the update
    with the source suffixed "(SM)". ``force`` skips the machine, as ``setJobAttributes(force=True)``.
    An unknown state name raises ValueError (DIRAC returns S_ERROR and updates nothing).
    """
    if proposed not in JOB_STATE_MACHINE:
        raise ValueError(f"getNextState: {proposed!r} is not a valid state")
    if force or proposed == current:
        return proposed, True
    allowed = JOB_STATE_MACHINE.get(current)
    if allowed is None:
        raise ValueError(f"{current!r} is not a valid current state")
    if proposed in allowed:
        return proposed, True
    default = _DEFAULT_STATE[current]
    if default is None:
        return proposed, True
    return default, default == proposed
