"""TransformationCleaningAgent (DIRAC's Agent/TransformationCleaningAgent.py, PollingTime 3600):
archive transformations Completed for longer than ArchiveAfter (7 days), and clean those an operator
set to Cleaning: kill their jobs, cancel their requests, remove their output files from the catalog and
the storage, then set Cleaned.

Simplified: the TransformationDB rows are kept (DIRAC's cleanTransformation deletes them), so the
report can still account for every file and task of a cleaned transformation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from twin.dirac.transformation import status as st
from twin.dirac.wms import job_status as js

if TYPE_CHECKING:
    from twin.dirac.context import CleaningContext


class TransformationCleaningAgent:
    def __init__(self, world: "CleaningContext") -> None:
        self.world = world
        self.archive_after = world.scenario.dirac.archive_after
        self.files_removed = 0

    def start(self) -> None:
        timing = self.world.scenario.dirac.cleaning_agent
        self.world.sim.agent("TransformationCleaningAgent", timing.polling_time, self.cycle, 2400.0, timing.enabled)

    def cycle(self) -> Iterator[Any]:
        world = self.world
        now = world.sim.now
        for trans in world.tsdb.getTransformations({"Status": [st.COMPLETED, st.CLEANING]})["Value"]:
            trans_id = trans["TransformationID"]
            if trans["Status"] == st.CLEANING:
                yield from self._clean(trans_id)
            elif now - trans["LastUpdate"] > self.archive_after:
                world.set_transformation_status(trans_id, st.ARCHIVED)
        yield from world.services.pay("TransformationManager")

    def _clean(self, trans_id: int) -> Iterator[Any]:
        world = self.world
        wms, rms = world.wms, world.rms
        for job in wms.jobs_of(trans_id):
            if job.status not in js.JOB_FINAL_STATES:
                wms.kill(job, "Killed by TransformationCleaningAgent")
        for request_id, (owner, _task) in list(rms.task_of.items()):
            if owner == trans_id:
                rms.db.cancel(request_id, world.sim.now)
        yield from world.services.call("JobManager", "killJob", 1)
        for lfn in world.runtime(trans_id).outputs:
            world.datamanager.remove_file(lfn)
            self.files_removed += 1
        world.runtime(trans_id).outputs.clear()
        yield from world.services.pay("FileCatalog")
        world.set_transformation_status(trans_id, st.CLEANED)
