"""Replica views and job data movement: DIRAC's DataManager and CTA's in-job data management.

`replicas_for` is what the TransformationAgent hands a plugin (domain spec §1.6 step 6):
for job transformations only active replicas, tape dropped when a disk copy exists,
failover and not-for-jobs SEs dropped; for data-management transformations every
replica. LFNs with no usable replica do not reach the plugin and stay Unused; LFNs the catalog
does not know become MissingInFC, as DIRAC's TransformationAgent sets them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

from twin.dirac.catalog import NO_SUCH_FILE

if TYPE_CHECKING:
    from twin.dirac.context import DataManagerContext


class ReplicaLookup(NamedTuple):
    """What the TransformationAgent learns from one replica look-up."""

    replicas: dict[str, list[str]]
    missing: list[str]
    problematic: list[str]


def output_job_name(lfn: str) -> str:
    """The JobName "<trans>_<task>" of a job output ".../<trans>_<task>_<reschedule>_<k>.dat"."""
    return lfn.rsplit("/", 1)[-1].rsplit("_", 2)[0]


class DataManager:
    def __init__(self, world: "DataManagerContext") -> None:
        self.world = world
        #: Catalog entries removed (cleaning agent, RMS RemoveFile), per JobName of the LFN: the
        #: outputs invariant counts them as accounted for.
        self.removed_per_job: Counter[str] = Counter()
        cfg = world.scenario.dirac
        self.not_for_jobs = set(cfg.ses_not_for_jobs) | set(cfg.ses_for_failover)
        self.job_types = set(cfg.data_processing_types)
        self.no_replica_lookup = {"removal_file"}
        self._for_jobs: dict[str, tuple[Any, bool]] = {}

    def replicas_for(self, trans: dict[str, Any], lfns: list[str]) -> ReplicaLookup:
        """{lfn: [SE]} for the plugin, filtered as getReplicasForJobs / getReplicas do, plus the LFNs the
        catalog does not know (MissingInFC) and those it answered neither way (ProbInFC), as
        TransformationAgent._getDataReplicasDM sorts them."""
        world = self.world
        runtime = world.runtime(trans["TransformationID"])
        if runtime.step.body in self.no_replica_lookup:  # "RemoveFile" bodies: replicas do not matter
            return ReplicaLookup({lfn: ["None"] for lfn in lfns}, [], [])
        bulk = world.catalog.get_replicas(lfns)
        found, failed = bulk.successful, bulk.failed
        missing = [lfn for lfn, reason in failed.items() if NO_SUCH_FILE in reason]
        problematic = [lfn for lfn in lfns if lfn not in found and lfn not in failed]
        if trans["Type"] not in self.job_types:
            replicas = {lfn: list(ses) for lfn, ses in found.items() if ses}
        else:
            replicas = {lfn: ses for lfn, ses in ((lfn, self.job_view(ses)) for lfn, ses in found.items()) if ses}
        return ReplicaLookup(replicas, missing, problematic)

    def job_view(self, ses: Any) -> list[str]:
        """The replicas a job may read (getReplicasForJobs): readable now, not a failover or not-for-jobs
        SE; the disk ones if any. Per call only the read ban is looked at: the rest is the SE's own."""
        usable: list[str] = []
        disk: list[str] = []
        for se in ses:
            storage, is_disk = self._for_jobs.get(se) or self._classify(se)
            if storage is not None and storage.readable:
                usable.append(se)
                if is_disk:
                    disk.append(se)
        return disk or usable

    def _classify(self, se: str) -> tuple[Any, bool]:
        """(the SE if jobs may ever read it, else None; it is a disk SE), kept: neither changes during a run."""
        storage = self.world.grid.ses.get(se)
        if se in self.not_for_jobs or "failover" in se.lower():
            storage = None
        entry = self._for_jobs[se] = (storage, self.world.resources.isDiskSE(se))
        return entry

    def lookup(self, lfn: str) -> tuple[dict[str, str] | None, float]:
        """The file's replicas (None if not in the catalog) and its size in bytes."""
        catalog = self.world.catalog
        replicas = catalog.get_replicas([lfn]).successful.get(lfn)
        return replicas, float(catalog.get_file_sizes([lfn]).successful.get(lfn, 0))

    def remove_file(self, lfn: str) -> None:
        """DataManager.removeFile: the catalog entry and the bytes of every replica on its SE."""
        replicas, size = self.lookup(lfn)
        for se in replicas or {}:
            self.world.grid.ses[se].remove_replica_bytes(size)
        self.world.catalog.remove_files([lfn])
        if replicas is not None:
            self.removed_per_job[output_job_name(lfn)] += 1
