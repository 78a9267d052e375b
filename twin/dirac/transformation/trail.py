"""The TransformationDB's status trail: one event-log row per file and per task status change.

The TransformationDB calls these listeners on every TransformationFiles and TransformationTasks
status change (`TransformationDB.on_file_status` / `on_task_status`); the rows are the trail the
invariants recount (twin/invariants.py). A class of its own, handed only the event log, so that
the per-task callback runs compiled with the DB that calls it (tools/native.py) instead of in
the World, which holds everything.
"""

from __future__ import annotations

from twin.engine.eventlog import EventLog


class StatusTrail:
    """Writes the rows; counts the TransformationFiles rows created (the TSDB size its query cost reads)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.file_rows = 0

    def on_file_status(self, trans_id: int, lfn: str, old: str | None, new: str, now: float) -> None:
        """A TransformationFiles status change (`old` None: the file was added to the transformation)."""
        if old is None:
            self.file_rows += 1
        self.log.log(now, "file.status", f"trans:{trans_id}/{lfn}", new, old or "")

    def on_task_status(self, trans_id: int, task_id: int, old: str | None, new: str, now: float) -> None:
        """A task's creation (`old` None) or status change."""
        self.log.log(now, "task.status", f"trans:{trans_id}/task:{task_id}", new, old or "")
