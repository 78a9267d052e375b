"""DIRAC's FTS3 system, for ReplicateAndRegister in FTS mode: FTS3 operations, jobs and files, and
the FTS3Agent that submits bulk jobs, monitors them, retries files and calls the RMS back.

Follows DIRAC 9.1.22, ``DataManagementSystem``:

- ``Agent/RequestOperations/ReplicateAndRegister.fts3Transfer``: the RMS operation becomes one FTS3
  operation with one FTS3 file per (file, missing target); its RMS files go Scheduled, so the request
  is Scheduled and no RequestExecutingAgent takes it until the callback (`FTS3System.schedule`).
- ``Agent/FTS3Agent.execute``: ``monitorJobsLoop`` (active jobs not monitored for MONITORING_DELAY,
  oldest first, JobBulkSize per cycle) then ``treatOperationsLoop`` (OperationBulkSize non-finished
  operations, oldest lastUpdate first), each in a MaxThreads pool.
- ``Client/FTS3Operation.FTS3TransferOperation.prepareNewJobs``: files New or failed in FTS with
  fewer than MaxAttemptsPerFile attempts (else Defunct), grouped by target; a target without write
  access is skipped (no attempt); one random allowed active source per file (DefaultFTS3Plugin.
  selectSourceSE); jobs of at most MaxFilesPerJob files per (source, target).
- ``Client/FTS3Job.submit`` (attempt += 1 per file) and ``monitor`` (FTS-final files released:
  Finished, or Failed to be retried); ``_constructTransferJob`` asks the FTS server for retry=3.
- ``FTS3TransferOperation._callback`` / ``_updateRmsOperationStatus``: when every file is Finished or
  Defunct, RMS files Done (Failed for Defunct), one RegisterReplica operation per target inserted
  before the ReplicateAndRegister, ``putRequest``; the replica reaches the catalog only when the
  RequestExecutingAgent runs that RegisterReplica.

The objects and `prepare_new_jobs` are pure (no clock, no simpy); `FTS3System` runs them on the
simulated grid. Not modelled: multihop and staging jobs, FTS activities/priorities, several agents
(assignment tags, KickAssignedHours), non-recoverable FTS errors (every failure is retried).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.dirac import rms
from twin.engine.queueing import run_in_threads

if TYPE_CHECKING:
    from twin.dirac.context import RequestContext
    from twin.scenario.schema import FTS3AgentConfig

# --- vocabularies (FTS3File / FTS3Job / FTS3Operation ALL_STATES) ------------------------------
NEW, SUBMITTED, FINISHED, FAILED, DEFUNCT, CANCELED = "New", "Submitted", "Finished", "Failed", "Defunct", "Canceled"
FILE_FINAL_STATES = (FINISHED, DEFUNCT)
FILE_RETRY_STATES = (NEW, FAILED, CANCELED)  # INIT_STATE + FTS_FAILED_STATES
ACTIVE, PROCESSED = "Active", "Processed"
OPERATION_FINAL_STATES = (FINISHED, CANCELED, FAILED)
JOB_FINAL_STATES = (CANCELED, FAILED, FINISHED, "Finisheddirty")

#: FTS3Agent MONITORING_DELAY: a job is not monitored more often than every 10 minutes.
MONITORING_DELAY = 600.0
#: FTS3Job._constructTransferJob: retry=3, the FTS server's own retries of a failed file within a job.
FTS_SERVER_RETRIES = 3


class FTS3File:
    """One file to one target SE; ``attempt`` counts the FTS jobs it was submitted in."""

    __slots__ = ("lfn", "target_se", "size", "status", "attempt", "error", "job")

    def __init__(self, lfn: str, target_se: str, size: float) -> None:
        self.lfn, self.target_se, self.size = lfn, target_se, size
        self.status, self.attempt, self.error = NEW, 0, ""
        self.job: FTS3Job | None = None  # the job holding it (ftsGUID), released when FTS-final

    def __repr__(self) -> str:
        return f"FTS3File({self.lfn!r}->{self.target_se}, {self.status}, attempt={self.attempt})"


class FTS3Job:
    """One bulk transfer job of up to MaxFilesPerJob files from one source SE to one target SE.
    ``outcomes[i]`` is filled by the FTS server (the network) when file i ends."""

    __slots__ = ("job_id", "operation", "source_se", "target_se", "files", "status", "last_monitor", "outcomes")

    def __init__(self, job_id: int, operation: "FTS3Operation", source_se: str, target_se: str,
                 files: Sequence[FTS3File], now: float) -> None:
        self.job_id, self.operation, self.source_se, self.target_se = job_id, operation, source_se, target_se
        self.files = list(files)
        self.status = SUBMITTED
        self.last_monitor = now  # FTS3Job.submit sets lastMonitor
        self.outcomes: list[Any] = [None] * len(self.files)


class FTS3Operation:
    """FTS3TransferOperation: the FTS side of one RMS ReplicateAndRegister operation."""

    __slots__ = ("operation_id", "request_id", "rms_op", "source_ses", "files", "status", "last_update", "error")

    def __init__(self, operation_id: int, request_id: int, rms_op: rms.Operation, files: Sequence[FTS3File],
                 now: float) -> None:
        self.operation_id, self.request_id, self.rms_op = operation_id, request_id, rms_op
        self.source_ses = [se.strip() for se in (rms_op.source_se or "").split(",") if se.strip()]
        self.files = list(files)
        self.status, self.last_update, self.error = ACTIVE, now, ""

    def is_totally_processed(self) -> bool:
        """FTS3Operation.isTotallyProcessed: every file Finished or Defunct (status -> Processed)."""
        if self.status == PROCESSED:
            return True
        if all(f.status in FILE_FINAL_STATES for f in self.files):
            self.status = PROCESSED
            return True
        return False

    def files_to_submit(self, max_attempts_per_file: int) -> list[FTS3File]:
        """FTS3Operation._getFilesToSubmit: files out of attempts become Defunct; New or FTS-failed
        files are (re)submitted."""
        todo = []
        for f in self.files:
            if f.attempt >= max_attempts_per_file:
                f.status = DEFUNCT
                f.error = f.error or "Max attempts per file reached"
            elif f.status in FILE_RETRY_STATES:
                todo.append(f)
        return todo

    def __repr__(self) -> str:
        return f"FTS3Operation({self.operation_id}, request={self.request_id}, {self.status}, files={len(self.files)})"


Replicas = Callable[[str], "Mapping[str, Any] | None"]


def prepare_new_jobs(op: FTS3Operation, *, max_files_per_job: int, max_attempts_per_file: int,
                     writable: Callable[[str], bool], active_replicas: Callable[[str, bool], "Sequence[str] | None"],
                     rng: np.random.Generator) -> list[tuple[str, str, list[FTS3File]]]:
    """FTS3TransferOperation.prepareNewJobs: [(source SE, target SE, files)], each at most
    ``max_files_per_job`` files. ``active_replicas(lfn, prefer_disk)`` is DataManager.getActiveReplicas
    (None: not in the catalog, the file goes Defunct)."""
    by_target: dict[str, list[FTS3File]] = {}
    for f in op.files_to_submit(max_attempts_per_file):
        by_target.setdefault(f.target_se, []).append(f)
    jobs: list[tuple[str, str, list[FTS3File]]] = []
    for target, files in by_target.items():
        if not writable(target):
            continue  # _checkSEAccess EACCES: "Write access currently not permitted", no attempt counted
        by_source: dict[str, list[FTS3File]] = {}
        for f in files:
            source = select_source(f, op.source_ses, active_replicas, rng)
            if source:
                by_source.setdefault(source, []).append(f)
        for source, group in by_source.items():
            jobs.extend((source, target, group[i:i + max_files_per_job]) for i in range(0, len(group), max_files_per_job))
    return jobs


def select_source(f: FTS3File, allowed: Sequence[str], active_replicas: Callable[[str, bool], "Sequence[str] | None"],
                  rng: np.random.Generator) -> str:
    """FTS3Utilities.selectUniqueSource + DefaultFTS3Plugin.selectSourceSE: a random active replica
    among the allowed sources (disk preferred when no source is imposed); "" if none (retried later);
    a file gone from the catalog becomes Defunct."""
    replicas = active_replicas(f.lfn, not allowed)
    if replicas is None:
        f.status, f.error = DEFUNCT, "No such file or directory"
        return ""
    candidates = sorted(set(replicas) & set(allowed)) if allowed else sorted(replicas)
    if not candidates:
        return ""
    return candidates[int(rng.integers(len(candidates)))] if len(candidates) > 1 else candidates[0]


def apply_outcomes(job: FTS3Job) -> bool:
    """FTS3Job.monitor + FTS3DB.updateFileStatus: files whose transfer ended are released, Finished
    or Failed (retried by the next prepareNewJobs), except those already final: a file made Defunct
    (out of attempts) while its last job ran stays Defunct; True when the job itself is final."""
    done = 0
    for f, outcome in zip(job.files, job.outcomes):
        if outcome is None:
            continue
        done += 1
        if f.job is job:
            f.job = None
            if f.status not in FILE_FINAL_STATES:  # FTS3DB.updateFileStatus: WHERE status NOT IN FINAL_STATES
                f.status, f.error = (FINISHED, "") if outcome.ok else (FAILED, outcome.error)
    if done < len(job.files):
        return False
    ok = sum(1 for outcome in job.outcomes if outcome.ok)
    job.status = FINISHED if ok == len(job.files) else FAILED if ok == 0 else "Finisheddirty"
    return True


def update_rms_operation(op: FTS3Operation, request: rms.Request, now: float) -> dict[str, list[FTS3File]]:
    """FTS3Operation._updateRmsOperationStatus + _callback: RMS files Done, or Failed if one of their
    FTS files is Defunct/Canceled; a RegisterReplica operation per target with its Finished files is
    inserted before the ReplicateAndRegister. Returns {target: finished files}."""
    rms_op = op.rms_op
    defunct = {f.lfn: f.error for f in op.files if f.status in (DEFUNCT, CANCELED)}
    finished: dict[str, list[FTS3File]] = {}
    for f in op.files:
        if f.status == FINISHED:
            finished.setdefault(f.target_se, []).append(f)
    for lfn in dict.fromkeys(f.lfn for f in op.files):
        opFile = rms_op.file(lfn)
        opFile.status, opFile.error = (rms.FAILED, defunct[lfn]) if lfn in defunct else (rms.DONE, "")
    rms_op.last_update = request.last_update = now
    rms_op.refresh(now)
    for target, files in finished.items():
        register = rms.Operation("RegisterReplica", (f.lfn for f in files), target_se=target,
                                 catalog=rms_op.catalog, status=rms.WAITING, now=now)
        request.insert_before(register, rms_op, now)
    request.refresh(now)
    return finished


class FTS3DB:
    """The FTS3DB tables the agent reads: live operations and active jobs, and the status of every
    operation ever made (final operations leave the live index at once: DeleteGraceDays only bounds
    the table's size, which the twin does not charge)."""

    def __init__(self) -> None:
        self.operations: dict[int, FTS3Operation] = {}  # live ones, in lastUpdate order (persist moves to the end)
        self.status_of: dict[int, str] = {}
        self.counters: Counter[str] = Counter()
        self.jobs: dict[int, FTS3Job] = {}  # active ones, in lastMonitor order (a monitor moves to the end)
        self._next_op = self._next_job = 1

    def new_operation(self, request_id: int, rms_op: rms.Operation, files: Sequence[FTS3File], now: float) -> FTS3Operation:
        op = FTS3Operation(self._next_op, request_id, rms_op, files, now)
        self._next_op += 1
        self.operations[op.operation_id] = op
        self.status_of[op.operation_id] = op.status
        self.counters[op.status] += 1
        return op

    def new_job(self, op: FTS3Operation, source: str, target: str, files: Sequence[FTS3File], now: float) -> FTS3Job:
        job = FTS3Job(self._next_job, op, source, target, files, now)
        self._next_job += 1
        self.jobs[job.job_id] = job
        return job

    def persist(self, op: FTS3Operation, now: float) -> str | None:
        """persistOperation: lastUpdate = now, the stored status follows; returns the old status if it changed."""
        op.last_update = now
        if op.operation_id in self.operations:  # keeps the index in lastUpdate order without sorting
            self.operations[op.operation_id] = self.operations.pop(op.operation_id)
        old = self.status_of[op.operation_id]
        if old == op.status:
            return None
        self.counters[old] -= 1
        self.counters[op.status] += 1
        self.status_of[op.operation_id] = op.status
        if op.status in OPERATION_FINAL_STATES:
            del self.operations[op.operation_id]
        return old

    def non_finished(self, limit: int) -> list[FTS3Operation]:
        """getNonFinishedOperations: Active or Processed, oldest lastUpdate first."""
        return list(itertools.islice(self.operations.values(), limit))

    def active_jobs(self, limit: int, monitored_before: float) -> list[FTS3Job]:
        """getActiveJobs: non-final jobs of Active operations not monitored since ``monitored_before``,
        least recently monitored first."""
        due: list[FTS3Job] = []
        for job in self.jobs.values():
            if len(due) == limit or job.last_monitor >= monitored_before:
                break
            due.append(job)
        return due

    def monitored(self, job: FTS3Job, now: float) -> None:
        """updateJobStatus: lastMonitor = now; a final job leaves the active index."""
        job.last_monitor = now
        self.jobs.pop(job.job_id, None)
        if job.status not in JOB_FINAL_STATES:
            self.jobs[job.job_id] = job

    def unfinished_for(self, rms_op: rms.Operation) -> list[FTS3Operation]:
        return [op for op in self.operations.values() if op.rms_op is rms_op]


class FTS3System:
    """ReplicateAndRegister's FTS side on the simulated grid: scheduling (called by the
    RequestExecutingAgent), the FTS3Agent cycle and the jobs run by the FTS server."""

    def __init__(self, world: "RequestContext", requests: rms.RequestDB, cfg: "FTS3AgentConfig") -> None:
        self.world, self.requests, self.cfg = world, requests, cfg
        self.env = world.sim.env
        network = world.grid.network
        self.network = network
        self.max_files_per_job = network.max_files_per_fts_job
        self.max_attempts_per_file = network.max_attempts_per_file
        self.db = FTS3DB()
        self.rng = world.sim.streams.get("fts3.source")
        self.jobs_submitted = self.files_submitted = self.callbacks = 0

    def start(self) -> None:
        self.world.sim.agent("FTS3Agent", self.cfg.polling_time, self.cycle, 31.0, self.cfg.enabled)

    # ------------------------------------------------------------ ReplicateAndRegister.fts3Transfer
    def schedule(self, request: rms.Request, op: rms.Operation, lfns: Sequence[str]) -> Generator[Any, Any, None]:
        """The Waiting files (Attempt already counted) go to one FTS3 operation: files missing from the
        catalog fail, files already at every target are Done, files without a valid source stay Waiting;
        the rest are Scheduled once persistOperation returns."""
        world, now = self.world, self.env.now
        services = world.services
        targets = [se.strip() for se in op.target_se.split(",") if se.strip()]
        sources = {se.strip() for se in (op.source_se or "").split(",") if se.strip()}
        with services.unmetered():  # charged below as DIRAC's bulk calls
            looked = {lfn: world.datamanager.lookup(lfn) for lfn in lfns}
        for name in ("getReplicas", "getActiveReplicas", "getFileMetadata"):  # __checkReplicas, fts3Transfer
            services.meter("FileCatalogDB", name, len(lfns))
        yield from services.pay("FileCatalog")
        now = self.env.now
        files: list[FTS3File] = []
        for lfn, (replicas, size) in looked.items():
            if replicas is None:
                rms.record_file_result(request, op, lfn, False, now, "No such file or directory", permanent=True)
                continue
            valid = [se for se in replicas if world.resources.readable(se) and (not sources or se in sources)]
            missing = [se for se in targets if se not in replicas]
            if not missing:
                rms.record_file_result(request, op, lfn, True, now)
            elif not valid:
                rms.record_file_result(request, op, lfn, False, now, "No active replica found")
            else:
                files.extend(FTS3File(lfn, target, size) for target in missing)
        if not files:
            return
        yield from services.call("FTS3Manager", "persistOperation", len(files))
        now = self.env.now
        fts_op = self.db.new_operation(request.request_id, op, files, now)  # type: ignore[arg-type]
        self._log(fts_op, now)
        for lfn in dict.fromkeys(f.lfn for f in files):
            opFile = op.file(lfn)
            opFile.status = rms.SCHEDULED
        op.last_update = request.last_update = now
        op.refresh(now)
        request.refresh(now)

    # ------------------------------------------------------------ FTS3Agent.execute
    def cycle(self) -> Generator[Any, Any, None]:
        yield from self.monitor_jobs()
        yield from self.treat_operations()

    def monitor_jobs(self) -> Generator[Any, Any, None]:
        """monitorJobsLoop: JobBulkSize jobs not monitored in the last MONITORING_DELAY, in MaxThreads."""
        jobs = self.db.active_jobs(self.cfg.job_bulk_size, self.env.now - MONITORING_DELAY)
        yield from self.world.services.call("FTS3Manager", "getActiveJobs", max(1, len(jobs)))
        yield from run_in_threads(self.env, map(self._monitor, jobs), self.cfg.max_threads)

    def _monitor(self, job: FTS3Job) -> Generator[Any, Any, None]:
        yield from self.world.services.call("FTS3Manager", "updateFileStatus", len(job.files))
        final = apply_outcomes(job)
        self.db.monitored(job, self.env.now)
        if final:
            self.world.sim.log.log(self.env.now, "fts3.job", f"ftsjob:{job.job_id}", job.status,
                                   f"fts3op:{job.operation.operation_id} {job.source_se}->{job.target_se}",
                                   float(len(job.files)))

    def treat_operations(self) -> Generator[Any, Any, None]:
        """treatOperationsLoop: OperationBulkSize non-finished operations, oldest first, in MaxThreads."""
        ops = self.db.non_finished(self.cfg.operation_bulk_size)
        yield from self.world.services.call("FTS3Manager", "getNonFinishedOperations", max(1, len(ops)))
        yield from run_in_threads(self.env, map(self._treat, ops), self.cfg.max_threads)

    def _treat(self, op: FTS3Operation) -> Generator[Any, Any, None]:
        """FTS3Agent._treatOperation: the callback when every file is final, else new jobs."""
        if op.is_totally_processed():
            yield from self._callback(op)
        else:
            yield from self.world.services.call("ReqManager", "getRequestStatus")
            status = self.requests.status(op.request_id) if op.request_id in self.requests else None
            if status in (None, rms.CANCELED):
                op.status = CANCELED  # the RMS request is gone or canceled: no new jobs
            else:
                self._submit(op)
        yield from self.world.services.call("FTS3Manager", "persistOperation", len(op.files))
        now = self.env.now
        if self.db.persist(op, now) is not None:
            self._log(op, now)

    def _submit(self, op: FTS3Operation) -> None:
        """prepareNewJobs, then FTS3Job.submit for each: attempt += 1, files Submitted, the FTS server runs it."""
        world, now = self.world, self.env.now
        jobs = prepare_new_jobs(op, max_files_per_job=self.max_files_per_job,
                                max_attempts_per_file=self.max_attempts_per_file,
                                writable=world.resources.writable, active_replicas=self._active_replicas, rng=self.rng)
        for source, target, files in jobs:
            job = self.db.new_job(op, source, target, files, now)
            for f in files:
                f.attempt += 1
                f.status, f.job = SUBMITTED, job
            self.jobs_submitted += 1
            self.files_submitted += len(files)
            world.sim.log.log(now, "fts3.job", f"ftsjob:{job.job_id}", SUBMITTED,
                              f"fts3op:{op.operation_id} {source}->{target}", float(len(files)))
            self.env.process(self._run(job))

    def _run(self, job: FTS3Job) -> Generator[Any, Any, None]:
        """The FTS server: the files over the network, each tried 1 + FTS_SERVER_RETRIES times."""
        yield from self.network.fts_transfer([f.size for f in job.files], job.source_se, job.target_se,
                                             max_attempts=1 + FTS_SERVER_RETRIES, outcomes=job.outcomes)

    def _active_replicas(self, lfn: str, prefer_disk: bool) -> list[str] | None:
        """DataManager.getActiveReplicas(preferDisk): replicas on SEs readable in RSS; disk ones only if any."""
        world = self.world
        with world.services.unmetered():  # one bulk getActiveReplicas per operation, charged by _treat
            replicas, _ = world.datamanager.lookup(lfn)
        if replicas is None:
            return None
        active = [se for se in replicas if world.resources.readable(se)]
        if prefer_disk:
            disk = [se for se in active if not world.grid.ses[se].is_tape]
            active = disk or active
        return active

    def _callback(self, op: FTS3Operation) -> Generator[Any, Any, None]:
        """FTS3TransferOperation._callback: only a Scheduled request is updated (a final one means the
        callback was already done); the request changes when putRequest returns."""
        services = self.world.services
        yield from services.call("ReqManager", "getRequestStatus")
        if not self._request_scheduled(op):
            return
        yield from services.call("ReqManager", "getRequest")
        yield from services.call("ReqManager", "putRequest", len(op.files))
        if not self._request_scheduled(op):  # canceled while the calls were on their way
            return
        request, now = self.requests.get(op.request_id), self.env.now
        update_rms_operation(op, request, now)
        self.requests.put_request(request, now)  # through ReqManager: NotBefore from the Waiting files' Attempt
        self.callbacks += 1
        op.status = FINISHED

    def _request_scheduled(self, op: FTS3Operation) -> bool:
        """The callback's status check: a final (or deleted) request means the callback is done (Finished);
        another status than Scheduled keeps the operation pending (tried again next cycle)."""
        status = self.requests.status(op.request_id) if op.request_id in self.requests else rms.CANCELED
        if status in rms.REQUEST_FINAL_STATES:
            op.status = FINISHED
        elif status != rms.SCHEDULED:
            op.error = f"Request with id {op.request_id} is not Scheduled:{status}"
        return status == rms.SCHEDULED

    def _log(self, op: FTS3Operation, now: float) -> None:
        self.world.sim.log.log(now, "fts3.operation", f"fts3op:{op.operation_id}", op.status,
                               f"request:{op.request_id}", float(len(op.files)))

    # ------------------------------------------------------------ accounting
    def summary(self) -> dict[str, Any]:
        files = Counter(f.status for op in self.db.operations.values() for f in op.files)
        return {"operations": {k: v for k, v in self.db.counters.items() if v}, "jobs_submitted": self.jobs_submitted,
                "file_submissions": self.files_submitted, "callbacks": self.callbacks,
                "live_files": dict(files)}


def conserved(system: "FTS3System | None", requests: rms.RequestDB, logged: Mapping[str, Mapping[str, str]] | None) -> bool | None:
    """FTS3 operations recounted: the logged last state of each equals its stored status, the counters
    agree, every non-final operation belongs to a request stored Scheduled, and every Scheduled request
    has one non-final operation (else it would wait for ever). None when the event log is off."""
    if logged is None:
        return None
    trail = dict(logged.get("fts3.operation", {}))
    if system is None:
        return not trail and requests.counters[rms.SCHEDULED] == 0
    db = system.db
    stored = {f"fts3op:{op_id}": status for op_id, status in db.status_of.items()}
    if trail != stored or {k: v for k, v in db.counters.items() if v} != dict(Counter(stored.values())):
        return False
    live = Counter(op.request_id for op in db.operations.values())
    if any(op.request_id in requests and requests.status(op.request_id) not in (rms.SCHEDULED, rms.ASSIGNED) + rms.REQUEST_FINAL_STATES
           for op in db.operations.values()):
        return False
    scheduled = [rid for rid in requests.ids() if requests.status(rid) == rms.SCHEDULED]
    return all(live[rid] == 1 for rid in scheduled)

