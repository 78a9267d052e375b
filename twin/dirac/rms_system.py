"""The RMS running on the simulated grid: RequestTaskAgent submission and the
RequestExecutingAgent with its operation handlers (ReplicateAndRegister, RemoveReplica,
RemoveFile) moving real bytes over the simulated network and storage.

Pure request logic (states, attempts, back-off, selection) is twin.dirac.rms. ReplicateAndRegister
runs in the scenario's `dirac.replication_mode`: "direct" (DIRAC's DMMode, file-by-file third-party
copies registered at once) or "fts3" (FTSMode: the files go to an FTS3 operation, the request waits
Scheduled until the FTS3Agent's callback, then RegisterReplica registers the replicas; twin/dirac/fts3.py).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Generator

from twin.dirac import fts3, rms
from twin.dirac.fts3 import FTS3System
from twin.engine.queueing import ServerPool

if TYPE_CHECKING:
    from twin.dirac.context import RequestContext

REQUEST_TASK_STATES_IGNORED = {rms.ASSIGNED}
#: What an operation handler's process returns for one file: (ok, error, permanent).
Outcome = Generator[Any, Any, tuple[bool, str, bool]]


class RequestManagement:
    def __init__(self, world: "RequestContext") -> None:
        self.world = world
        self.cfg = world.scenario.dirac
        self.env = world.sim.env
        self.db = rms.RequestDB(world.sim.streams.get("rms.select"), on_status=self._on_status)
        self.workers = ServerPool(self.env, self.cfg.request_workers, "rms:workers")
        self.task_of: dict[int, tuple[int, int]] = {}
        self.executing = 0
        self._running: set[int | None] = set()  # RequestIDs executing now (a selected request has one)
        self.bytes_replicated = 0.0
        self.files_replicated = 0
        self.replicas_removed = 0
        fts3 = self.cfg.replication_mode == "fts3"
        self.fts: FTS3System | None = FTS3System(world, self.db, self.cfg.fts3_agent) if fts3 else None

    def start(self) -> None:
        sim, cfg = self.world.sim, self.cfg
        sim.agent("RequestExecutingAgent", cfg.request_executing_agent.polling_time, self.executing_cycle, 23.0,
                  cfg.request_executing_agent.enabled)
        if self.fts is not None:
            self.fts.start()
        for status in (rms.WAITING, rms.ASSIGNED, rms.DONE, rms.FAILED):
            sim.metrics.gauge(f"rms.requests_{status.lower()}", functools.partial(self._count, status))

    def _count(self, status: str) -> int:
        """The number of requests stored with this status (a gauge)."""
        return self.db.counters[status]

    def movement(self) -> dict[str, Any]:
        """How ReplicateAndRegister ran: its mode, the RMS Attempts spent on its files, the FTS3 side."""
        attempts = sum(f.attempt for rid in self.db.ids() for op in self.db.get(rid).operations
                       if op.type == "ReplicateAndRegister" for f in op.files)
        out: dict[str, Any] = {"replication_mode": self.cfg.replication_mode, "replicate_attempts": attempts}
        if self.fts is not None:
            out["fts3"] = self.fts.summary()
        return out

    def fts3_conserved(self, logged: Any) -> bool | None:
        """FTS3 operations recounted against the event log and the ReqDB (twin.dirac.fts3.conserved)."""
        return fts3.conserved(self.fts, self.db, logged)

    def _on_status(self, request: rms.Request, old: str | None, new: str, now: float) -> None:
        self.world.sim.log.log(now, "request.status", f"request:{request.request_id}", new, request.name)
        if new in REQUEST_TASK_STATES_IGNORED or request.request_id not in self.task_of:
            return
        trans_id, task_id = self.task_of[request.request_id]
        self.world.ts.note_external_status(trans_id, task_id, new, new in rms.REQUEST_FINAL_STATES, self.world.sim.now)

    # ------------------------------------------------------------------ RequestTaskAgent submission
    def submit_task(self, trans: dict[str, Any], task: dict[str, Any]) -> Generator[Any, Any, int | None]:
        world, now = self.world, self.world.sim.now
        trans_id, task_id = trans["TransformationID"], task["TaskID"]
        lfns = [lfn for lfn in task["InputData"].split(";") if lfn]
        try:
            request = rms.build_request(f"{trans_id:08d}_{task_id:08d}", lfns, trans["Body"], task["TargetSE"], task, now=now)
        except rms.RequestBodyError as exc:
            world.sim.log.log(now, "task.refused", f"trans:{trans_id}/task:{task_id}", "bad body", str(exc)[:120])
            return None
        yield from world.services.call("ReqManager", "putRequest", len(lfns))
        request_id = self.db.put_request(request, world.sim.now)  # the request exists once putRequest returned
        self.task_of[request_id] = (trans_id, task_id)
        return request_id  # the task manager records Submitted + RequestID (updateDBAfterTaskSubmission)

    # ------------------------------------------------------------------ RequestExecutingAgent
    def executing_cycle(self) -> Generator[Any, Any, None]:
        """Take only as many requests as the process pool can start now (DIRAC waits for a free slot),
        so a request is never executed twice at once, even when CleanReqDBAgent kicks it back."""
        self.db.kick_assigned(self.env.now)
        free = self.workers.capacity - self.executing
        requests = self.db.select(self.env.now, min(self.cfg.requests_per_cycle, max(0, free))) if free > 0 else []
        yield from self.world.services.call("ReqManager", "getBulkRequests", max(1, len(requests)))
        for request in requests:
            if request.request_id in self._running:
                continue
            self._running.add(request.request_id)
            self.executing += 1
            self.env.process(self._execute(request))

    def _execute(self, request: rms.Request) -> Generator[Any, Any, None]:
        yield self.workers.acquire()
        try:
            while (op := rms.next_operation(request)) is not None:
                if op.type == "ReplicateAndRegister" and self._banned_in_rss(request, op):
                    break  # no Attempt counted: the request waits for a later cycle
                yield from self._run_operation(request, op)
                request.refresh(self.env.now)
                if op.status != rms.DONE:
                    break
        finally:
            self.workers.release()
            self.executing -= 1
            self._running.discard(request.request_id)
        # DIRAC 9.1.22's agent puts the request back through RequestDB directly: the 2*ln(attempt)
        # minutes back-off of ReqManagerHandler is NOT applied on this path (read in the code).
        self.db.put_request(request, self.env.now, via_service=False)
        yield from self.world.services.call("ReqManager", "putRequest")

    def _run_operation(self, request: rms.Request, op: rms.Operation) -> Generator[Any, Any, None]:
        """The handler on the Waiting files (Attempt counted first); ReplicateAndRegister in FTS3 mode
        hands them all to one FTS3 operation (ReplicateAndRegister.fts3Transfer)."""
        lfns = rms.begin_operation(request, op, self.env.now, self.cfg.request_max_attempts)
        if op.type == "ReplicateAndRegister" and self.fts is not None:
            if lfns:
                yield from self.fts.schedule(request, op, lfns)
            return
        handler = HANDLERS.get(op.type)
        for lfn in lfns:
            if handler is None:
                rms.record_file_result(request, op, lfn, False, self.env.now, f"no handler for {op.type}", permanent=True)
                continue
            ok, error, permanent = yield from handler(self, op, lfn)
            rms.record_file_result(request, op, lfn, ok, self.env.now, error, permanent)

    def _banned_in_rss(self, request: rms.Request, op: rms.Operation) -> bool:
        """ReplicateAndRegister.__call__'s checkSEsRSS branches, run before getWaitingFilesList so no
        Attempt is counted: a source SE banned for reading sends the request back as it is (retried next
        cycle); a target banned for writing sets NotBefore one hour ahead (DMSRequestOperationsBase.
        checkSEsRSS: "Banning is temporary, next attempt in an hour", Request.delayNextExecution(60)).
        The RSS AlwaysBanned policy, which fails the files instead, is not modelled."""
        resources, now = self.world.resources, self.env.now
        banned_sources = [se for se in _split(op.source_se) if not resources.readable(se)]
        if banned_sources:
            op.error = f"SourceSE {op.source_se} is banned for reading"
        else:
            banned_targets = [se for se in _split(op.target_se) if not resources.writable(se)]
            if not banned_targets:
                return False
            op.error = f"{banned_targets} currently banned"
            request.delay_next_execution(now, 60)
        self.world.sim.log.log(now, "request.banned", f"request:{request.request_id}", op.type, op.error)
        return True

    # ------------------------------------------------------------------ handlers: (ok, error, permanent)
    def _replicate(self, op: rms.Operation, lfn: str) -> Outcome:
        world = self.world
        replicas, size = world.datamanager.lookup(lfn)
        yield from world.services.pay("FileCatalog")  # the look-up is paid before the copy, by this process
        if replicas is None:
            return False, "No such file or directory", True
        sources = [se for se in _split(op.source_se) if se in replicas] or [se for se in replicas if world.resources.readable(se)]
        if not sources:
            return False, "No valid source replica", False
        for target in _split(op.target_se):
            if target in replicas:
                continue
            ok = yield from world.grid.network.copy(sources[0], target, size)
            if not ok:
                return False, f"transfer {sources[0]} -> {target} failed", False
            yield from self._register(lfn, target, size)
        return True, "", False

    def _register(self, lfn: str, target: str, size: float) -> Generator[Any, Any, None]:
        """DataManager.registerReplica: the replica is in the catalog once the addReplica call returned."""
        world = self.world
        world.services.meter("FileCatalogDB", "addReplica")
        yield from world.services.pay("FileCatalog")
        with world.services.unmetered():  # paid just above
            world.catalog.add_replicas({lfn: target})
        self.bytes_replicated += size
        self.files_replicated += 1

    def _register_replica(self, op: rms.Operation, lfn: str) -> Outcome:
        """RegisterReplica (inserted by the FTS3 callback): a file gone from the catalog fails."""
        world = self.world
        replicas, size = world.datamanager.lookup(lfn)
        if replicas is None:
            yield from world.services.pay("FileCatalog")
            return False, "No such file or directory", True
        for target in _split(op.target_se):
            if target not in replicas:
                yield from self._register(lfn, target, size)
        return True, "", False

    def _remove_replica(self, op: rms.Operation, lfn: str) -> Outcome:
        world = self.world
        replicas, size = world.datamanager.lookup(lfn)
        if replicas is None:
            return True, "", False  # DIRAC treats a missing file as already removed
        for se in _split(op.target_se):
            if se not in replicas:
                continue
            if len(replicas) <= 1:
                return False, "cannot remove the last replica", True
            world.catalog.remove_replicas({lfn: se})
            world.grid.ses[se].remove_replica_bytes(size)
            replicas = {k: v for k, v in replicas.items() if k != se}
            self.replicas_removed += 1
        yield from world.services.pay("FileCatalog")
        return True, "", False

    def _remove_file(self, op: rms.Operation, lfn: str) -> Outcome:
        self.world.datamanager.remove_file(lfn)
        yield from self.world.services.pay("FileCatalog")
        return True, "", False


def _split(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


HANDLERS: dict[str, Callable[[RequestManagement, rms.Operation, str], Outcome]] = {
    "ReplicateAndRegister": RequestManagement._replicate,
    "RemoveReplica": RequestManagement._remove_replica,
    "RemoveFile": RequestManagement._remove_file,
    "RegisterReplica": RequestManagement._register_replica,
}
