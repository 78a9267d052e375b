"""The Request Management System (RMS) as pure logic: requests, the RequestDB and task bodies.

Follows DIRAC 9.1.22: ``RequestManagementSystem/Client/{Request,Operation,File}.py`` (status
derivation), ``private/OperationHandlerBase.getWaitingFilesList`` (Attempt, MaxAttempts),
``Service/ReqManagerHandler.export_putRequest`` (NotBefore back-off), ``DB/RequestDB.py``
(request selection), ``Agent/CleanReqDBAgent.py`` (kick), ``Client/ReqClient.finalizeRequest``
and ``TransformationSystem/Client/RequestTasks.py`` (task body -> request).

Nothing here reads a clock or executes an operation: ``now`` is passed in (seconds), the simulation
runs the handlers and reports per-file outcomes. Typical request-executing cycle::

    for request in db.select(now):                  # Waiting, NotBefore < now -> Assigned
        while (op := next_operation(request)) is not None:
            for lfn in begin_operation(request, op, now):   # Attempt += 1, MaxAttempts
                record_file_result(request, op, lfn, ok, now)
            if op.status != DONE:
                break                               # RequestTask stops at a Waiting operation
        db.put_request(request, now, via_service=False)     # what the 9.1.22 agent does
"""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np

# --- vocabularies ---------------------------------------------------------------------------
WAITING: Final = "Waiting"
QUEUED: Final = "Queued"
SCHEDULED: Final = "Scheduled"
ASSIGNED: Final = "Assigned"
DONE: Final = "Done"
FAILED: Final = "Failed"
CANCELED: Final = "Canceled"

REQUEST_STATES: Final = (WAITING, FAILED, DONE, SCHEDULED, ASSIGNED, CANCELED)
REQUEST_FINAL_STATES: Final = (DONE, FAILED, CANCELED)
OPERATION_STATES: Final = (QUEUED, WAITING, SCHEDULED, ASSIGNED, FAILED, DONE, CANCELED)
OPERATION_FINAL_STATES: Final = (FAILED, DONE, CANCELED)
FILE_STATES: Final = (WAITING, FAILED, DONE, SCHEDULED)

#: MaxAttempts of every handler in RequestManagementSystem/ConfigTemplate.cfg.
MAX_ATTEMPTS: Final = 256
MAX_ATTEMPTS_ERROR: Final = " (Max attempts limit reached)"
#: RequestExecutingAgent RequestsPerCycle / BulkRequest defaults.
REQUESTS_PER_CYCLE: Final = 300
#: RequestDB.getRequest (BulkRequest = 0): one request drawn among the 100 oldest and 50 newest.
OLDEST_CANDIDATES: Final = 100
NEWEST_CANDIDATES: Final = 50
#: CleanReqDBAgent: Assigned for longer than KickGraceHours -> put back; KickLimit per cycle.
KICK_GRACE: Final = 3600.0
KICK_LIMIT: Final = 10000
#: Operation.MAX_FILES
MAX_FILES: Final = 10000
#: Operation attributes a request body may set, DIRAC name -> attribute here.
_OPERATION_ATTRIBUTES = {"SourceSE": "source_se", "TargetSE": "target_se", "Catalog": "catalog", "Arguments": "arguments"}
#: RequestValidator.reqAttrs for the types a transformation body creates: (needs files, needs TargetSE).
_REQUIRED = {
    "ReplicateAndRegister": (True, True),
    "RemoveReplica": (True, True),
    "RemoveFile": (True, False),
    "PhysicalRemoval": (True, True),
    "RegisterReplica": (True, True),
    "ForwardDISET": (False, False),
}

OnStatus = Callable[["Request", "str | None", str, float], None]


# --- objects ----------------------------------------------------------------------------------
class RequestFile:
    """RMS File: one LFN of an operation, with DIRAC's per-file Attempt counter."""

    __slots__ = ("lfn", "status", "attempt", "error")

    def __init__(self, lfn: str, status: str = WAITING, attempt: int = 0, error: str = "") -> None:
        if status not in FILE_STATES:
            raise ValueError(f"Unknown Status: {status}!")
        self.lfn, self.status, self.attempt, self.error = lfn, status, attempt, error

    def __repr__(self) -> str:
        return f"RequestFile({self.lfn!r}, {self.status!r}, attempt={self.attempt})"


class Operation:
    """RMS Operation: a typed action on a list of files, run in order within its request."""

    __slots__ = ("type", "status", "files", "source_se", "target_se", "catalog", "arguments", "error",
                 "params", "last_update", "_by_lfn")

    def __init__(self, type: str, lfns: Iterable[str] = (), *, target_se: str = "", source_se: str = "",
                 catalog: str = "", arguments: str = "", status: str = QUEUED, now: float = 0.0) -> None:
        if status not in OPERATION_STATES:
            raise ValueError(f"unknown Status '{status}'")
        self.type, self.status, self.error = type, status, ""
        self.source_se, self.target_se, self.catalog, self.arguments = source_se, target_se, catalog, arguments
        self.params: dict[str, Any] | None = None  # other body parameters, created on demand
        self.last_update = now
        self.files: list[RequestFile] = []
        self._by_lfn: dict[str, RequestFile] | None = None
        for lfn in lfns:
            self.add_file(lfn)
        self.refresh(now)

    def add_file(self, lfn: str) -> RequestFile:
        if len(self.files) >= MAX_FILES:
            raise RuntimeError("too many Files in a single Operation")
        opFile = RequestFile(lfn)
        self.files.append(opFile)
        if self._by_lfn is not None:
            self._by_lfn.setdefault(lfn, opFile)
        return opFile

    def file(self, lfn: str) -> RequestFile:
        """The (first) file with this LFN; the index is built on first use to keep idle requests small."""
        if self._by_lfn is None:
            self._by_lfn = {}
            for opFile in self.files:
                self._by_lfn.setdefault(opFile.lfn, opFile)
        try:
            return self._by_lfn[lfn]
        except KeyError:
            raise KeyError(f"{lfn} is not a file of operation {self.type}") from None

    def set_parameter(self, name: str, value: Any) -> None:
        """setattr(op, name, value) of RequestTasks; SE lists become DIRAC's comma-separated strings."""
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        attribute = _OPERATION_ATTRIBUTES.get(name)
        if attribute is None:
            self.params = {**(self.params or {}), name: value}
        else:
            setattr(self, attribute, value)

    def refresh(self, now: float) -> str:
        """Operation._notify: the status follows the files (an operation without files keeps its own)."""
        if self.files:
            new = operation_status_from_files(f.status for f in self.files)
            if new != self.status and new in (FAILED, DONE, SCHEDULED):
                self.last_update = now
            self.status = new
        if self.status == DONE:
            self.error = ""
        return self.status

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"Operation({self.type!r}, {self.status!r}, files={len(self.files)})"


class Request:
    """RMS Request: an ordered list of operations; its status is derived from theirs."""

    __slots__ = ("request_id", "name", "job_id", "owner", "owner_group", "operations", "status", "error",
                 "creation_time", "submit_time", "last_update", "not_before")

    def __init__(self, name: str, operations: Iterable[Operation] = (), *, job_id: int = 0, owner: str = "",
                 owner_group: str = "", now: float = 0.0) -> None:
        self.request_id: int | None = None
        self.name, self.job_id, self.owner, self.owner_group = name, job_id, owner, owner_group
        self.operations: list[Operation] = list(operations)
        self.status, self.error = WAITING, ""
        self.creation_time = self.submit_time = self.last_update = self.not_before = now
        self.refresh(now)

    def add_operation(self, operation: Operation, now: float) -> None:
        self.operations.append(operation)
        self.refresh(now)

    def refresh(self, now: float) -> str:
        """Request._notify run to its fixed point (DIRAC reaches it on the next status read)."""
        new = _request_status(self.operations)
        if new != self.status and new in (DONE, FAILED):
            self.last_update = now
        if new == DONE:
            self.error = ""
        self.status = new
        return new

    def insert_before(self, operation: Operation, before: Operation, now: float) -> None:
        """Request.insertBefore (FTS3TransferOperation._callback puts RegisterReplica before its
        ReplicateAndRegister); the request status follows."""
        self.operations.insert(self.operations.index(before), operation)
        self.refresh(now)

    def delay_next_execution(self, now: float, minutes: float) -> None:
        """Request.delayNextExecution (RequestTask: 24 h without operation, 6 h for a suspended owner)."""
        self.not_before = now + 60.0 * minutes

    def waiting_operation(self) -> Operation | None:
        """Request.getWaiting: the current (Waiting or Scheduled) operation, if any."""
        for op in self.operations:
            if op.status in (FAILED, SCHEDULED, QUEUED, WAITING):
                return None if op.status == FAILED else op
        return None

    def __repr__(self) -> str:
        return f"Request({self.name!r}, id={self.request_id}, {self.status!r}, ops={[op.status for op in self.operations]})"


def operation_status_from_files(file_statuses: Iterable[str]) -> str:
    """Operation._notify: all Failed -> Failed; any Scheduled -> Scheduled; any Waiting -> Queued
    (the request promotes it); any Failed -> Failed; otherwise (also no file) Done."""
    statuses = set(file_statuses)
    if statuses == {FAILED}:
        return FAILED
    if SCHEDULED in statuses:
        return SCHEDULED
    if WAITING in statuses:
        return QUEUED
    if FAILED in statuses:
        return FAILED
    return DONE


def _request_status(operations: Sequence[Operation]) -> str:
    """Request._notify at its fixed point; also promotes/demotes operations so only the first
    unfinished one is Waiting and the later ones are Queued."""
    current: Operation | None = None
    status = WAITING
    for op in operations:
        if current is None:
            if op.status == FAILED:
                return FAILED
            if op.status == SCHEDULED:
                current, status = op, SCHEDULED
            elif op.status in (QUEUED, WAITING):
                current, status = op, WAITING
                op.status = WAITING
            elif op.status == DONE:
                status = DONE
        elif op.status == WAITING:
            op.status = QUEUED
    return status


# --- what the executing agent does with a request --------------------------------------------
def next_operation(request: Request) -> Operation | None:
    """The operation RequestTask runs next: the Waiting one, while the request is Waiting."""
    if request.status != WAITING:
        return None
    op = request.waiting_operation()
    return op if op is not None and op.status == WAITING else None


def begin_operation(request: Request, op: Operation, now: float, max_attempts: int = MAX_ATTEMPTS) -> list[str]:
    """OperationHandlerBase.getWaitingFilesList: Attempt += 1 on every Waiting file, files beyond
    MaxAttempts fail; returns the LFNs the handler still processes in this execution."""
    todo: list[str] = []
    changed = False
    for opFile in op.files:
        if opFile.status != WAITING:
            continue
        opFile.attempt += 1
        if opFile.attempt > max_attempts:
            opFile.status, opFile.error = FAILED, (opFile.error or "") + MAX_ATTEMPTS_ERROR
            changed = True
        else:
            todo.append(opFile.lfn)
    if changed:
        _touch(request, op, now)
    return todo


def record_file_result(request: Request, op: Operation, lfn: str, ok: bool, now: float, error: str = "",
                       permanent: bool = False) -> str:
    """A handler's verdict on one Waiting file: ok -> Done; a failure keeps it Waiting (retried on a
    later execution) unless ``permanent`` (e.g. "No such file") -> Failed. Returns the file status.
    Attempts are counted by `begin_operation`, as in DIRAC."""
    opFile = op.file(lfn)
    if opFile.status != WAITING:
        return opFile.status
    if ok:
        opFile.status, opFile.error = DONE, ""
    else:
        opFile.error = error
        if permanent:
            opFile.status = FAILED
    if opFile.status != WAITING:
        _touch(request, op, now)
    return opFile.status


def record_operation_result(request: Request, op: Operation, ok: bool, now: float, error: str = "",
                            permanent: bool = False) -> str:
    """Outcome of an operation without files (ForwardDISET): Done, kept Waiting, or Failed."""
    if op.files:
        raise ValueError(f"operation {op.type} has files: use record_file_result")
    if ok or permanent:
        op.status = DONE if ok else FAILED
        op.last_update = now  # Operation._LastUpdate only: it does not reach the request
    op.error = "" if ok else error
    request.refresh(now)
    return op.status


def record_timeout(request: Request) -> None:
    """RequestExecutingAgent.putRequest after ETIME: Attempt += 1 on every file of the waiting operation."""
    op = request.waiting_operation()
    for opFile in op.files if op is not None else ():
        opFile.attempt += 1


def _touch(request: Request, op: Operation, now: float) -> None:
    """A file changed status: File.Status -> Operation.LastUpdate -> Request.LastUpdate, then _notify."""
    op.last_update = request.last_update = now
    op.refresh(now)
    request.refresh(now)


def backoff_delay(request: Request, constant_delay_min: float = 0.0) -> float:
    """ReqManagerHandler.putRequest delay in seconds: ConstantRequestDelay if set, else
    2·ln(max Attempt of the Waiting files of the waiting operation) minutes (0 at Attempt <= 1)."""
    if constant_delay_min:
        return 60.0 * constant_delay_min
    op = request.waiting_operation()
    attempts = [f.attempt for f in op.files if f.status == WAITING] if op is not None else []
    top = max(attempts, default=0)
    return 60.0 * 2.0 * math.log(top) if top else 0.0


def finalize_job_status(job_status: str, job_minor_status: str) -> tuple[str, str]:
    """ReqClient.finalizeRequest for a Done request of a job: (new job status or "" to keep it,
    minor status "Requests done"). A Completed job goes Done / Failed / Killed by its minor status."""
    if job_status != "Completed":
        return "", "Requests done"
    new = {"Pending Requests": "Done", "Application Finished With Errors": "Failed",
           "Marked for termination": "Killed"}.get(job_minor_status)
    if new is None:
        raise ValueError("Unexpected jobMinorStatus")
    return new, "Requests done"


# --- the database ---------------------------------------------------------------------------
class _Row:
    """What the ReqDB table holds beside the request itself: its stored status and times."""

    __slots__ = ("request", "request_id", "status", "last_update", "not_before", "version")

    def __init__(self, request: Request, request_id: int) -> None:
        self.request = request
        self.request_id = request_id
        self.status = request.status
        self.last_update = request.last_update
        self.not_before = request.not_before
        self.version = 0


class RequestDB:
    """ReqDB: stored status per request, an index of Waiting requests by NotBefore (a heap) feeding
    an index by LastUpdate, and counters by stored status.

    ``select`` follows RequestDB.getBulkRequests (the agent's default, BulkRequest=300): the oldest by
    LastUpdate, no randomness. ``bulk=False`` follows getRequest: each pick is drawn with ``rng``
    among the 100 oldest and the 50 newest. ``on_status(request, old, new, now)`` is called on every
    change of the stored status (``old`` is None on insertion).
    """

    def __init__(self, rng: np.random.Generator | None = None, *, constant_delay_min: float = 0.0,
                 on_status: OnStatus | None = None) -> None:
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.constant_delay_min = constant_delay_min
        self.on_status = on_status
        self.counters: Counter[str] = Counter()
        self._rows: dict[int, _Row] = {}
        self._by_name: dict[str, int] = {}
        self._pending: list[tuple[float, int, int]] = []  # (NotBefore, id, version), not yet eligible
        self._eligible: list[tuple[float, int, int]] = []  # (LastUpdate, id, version), NotBefore passed
        self._assigned: set[int] = set()
        self._next_id = 1

    # -- reads
    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._rows

    def ids(self) -> list[int]:
        """Every RequestID in the table (for the conservation recount)."""
        return list(self._rows)

    def get(self, request_id: int) -> Request:
        return self._rows[request_id].request

    def get_by_name(self, name: str) -> Request | None:
        request_id = self._by_name.get(name)
        return None if request_id is None else self._rows[request_id].request

    def status(self, request_id: int) -> str:
        """The stored status (Assigned while an agent holds the request)."""
        return self._rows[request_id].status

    def not_before(self, request_id: int) -> float:
        return self._rows[request_id].not_before

    # -- writes
    def put_request(self, request: Request, now: float, *, via_service: bool = True) -> int:
        """Insert or update a request; returns its RequestID.

        ``via_service``: ReqClient.putRequest -> ReqManagerHandler, which sets NotBefore (back-off on
        an update, none on the first insertion, a future NotBefore kept). ``via_service=False`` is
        RequestDB.putRequest as the 9.1.22 RequestExecutingAgent calls it: NotBefore is left as it is.
        A request canceled in the DB is not put back.
        """
        request.refresh(now)
        request_id = request.request_id
        row = self._rows.get(request_id) if request_id is not None else None
        if row is not None and request_id is not None and row.status == CANCELED:
            return request_id
        if via_service and request.status not in REQUEST_FINAL_STATES and request.not_before < now:
            delay = backoff_delay(request, self.constant_delay_min) if row is not None else 0.0
            request.not_before = now + delay
        if row is None or request_id is None:
            request_id = request.request_id = self._next_id
            self._next_id += 1
            row = self._rows[request_id] = _Row(request, request_id)
            self._by_name[request.name] = request_id
            old = None
        else:
            old = row.status
        row.last_update, row.not_before = request.last_update, request.not_before
        self._set_status(row, request.status, old, now)
        return request_id

    def select(self, now: float, n: int = REQUESTS_PER_CYCLE, *, bulk: bool = True) -> list[Request]:
        """Up to ``n`` Waiting requests with NotBefore < now, set Assigned (getBulkRequests / getRequest)."""
        self._release(now)
        ids = self._pop_oldest(n) if bulk else self._draw(n)
        picked = []
        for request_id in ids:
            row = self._rows[request_id]
            row.last_update = now  # the UPDATE ... SET Status='Assigned', LastUpdate=now
            self._set_status(row, ASSIGNED, WAITING, now)
            picked.append(row.request)
        return picked

    def kick_assigned(self, now: float, grace: float = KICK_GRACE, limit: int = KICK_LIMIT) -> list[int]:
        """CleanReqDBAgent: requests Assigned for more than ``grace`` go back to their own status."""
        stale = sorted((self._rows[rid].last_update, rid) for rid in self._assigned)[:limit]
        kicked = [rid for last, rid in stale if last < now - grace]
        for request_id in kicked:
            self.put_request(self._rows[request_id].request, now, via_service=False)
        return kicked

    def cancel(self, request_id: int, now: float) -> bool:
        """ReqClient.cancelRequest: the stored status becomes Canceled unless already final."""
        row = self._rows[request_id]
        if row.status in REQUEST_FINAL_STATES:
            return False
        self._set_status(row, CANCELED, row.status, now)
        return True

    def delete(self, request_id: int) -> None:
        """RequestDB.deleteRequest (CleanReqDBAgent removes finished requests after 60 days)."""
        row = self._rows.pop(request_id)
        row.version += 1
        self._assigned.discard(request_id)
        self.counters[row.status] -= 1
        if self._by_name.get(row.request.name) == request_id:
            del self._by_name[row.request.name]

    def finalize(self, request_id: int, job_status: str, job_minor_status: str) -> tuple[str, str]:
        """ReqClient.finalizeRequest: only a Done request finalizes its job (see finalize_job_status)."""
        status = self._rows[request_id].status
        if status != DONE:
            raise ValueError(f"The request {request_id} isn't 'Done' but '{status}', this should never happen, "
                             "why are we here?")
        return finalize_job_status(job_status, job_minor_status)

    # -- internals
    def _set_status(self, row: _Row, new: str, old: str | None, now: float) -> None:
        row.version += 1
        row.status = new
        if new == ASSIGNED:
            self._assigned.add(row.request_id)
        else:
            self._assigned.discard(row.request_id)
        if old is not None:
            self.counters[old] -= 1
        self.counters[new] += 1
        if new == WAITING:
            heapq.heappush(self._pending, (row.not_before, row.request_id, row.version))
        if self.on_status is not None and new != old:
            self.on_status(row.request, old, new, now)

    def _valid(self, request_id: int, version: int) -> bool:
        row = self._rows.get(request_id)
        return row is not None and row.version == version

    def _release(self, now: float) -> None:
        """Move Waiting requests whose NotBefore has passed (strictly) to the LastUpdate index."""
        while self._pending and self._pending[0][0] < now:
            _, request_id, version = heapq.heappop(self._pending)
            if self._valid(request_id, version):
                heapq.heappush(self._eligible, (self._rows[request_id].last_update, request_id, version))

    def _pop_oldest(self, n: int) -> list[int]:
        ids: list[int] = []
        while self._eligible and len(ids) < n:
            _, request_id, version = heapq.heappop(self._eligible)
            if self._valid(request_id, version):
                ids.append(request_id)
        return ids

    def _draw(self, n: int) -> list[int]:
        """n successive getRequest calls: each draws uniformly in (100 oldest ∪ 50 newest) of what is left."""
        live = [entry for entry in self._eligible if self._valid(entry[1], entry[2])]
        oldest = [rid for _, rid, _ in heapq.nsmallest(OLDEST_CANDIDATES + n, live)]
        newest = [rid for _, rid, _ in heapq.nlargest(NEWEST_CANDIDATES + n, live)]
        taken: set[int] = set()
        ids: list[int] = []
        while len(ids) < n:
            candidates = sorted(set(_first_free(oldest, taken, OLDEST_CANDIDATES))
                                | set(_first_free(newest, taken, NEWEST_CANDIDATES)))
            if not candidates:
                break
            pick = candidates[int(self.rng.integers(len(candidates)))]
            taken.add(pick)
            ids.append(pick)
        return ids


def _first_free(ordered: list[int], taken: set[int], k: int) -> list[int]:
    out: list[int] = []
    for rid in ordered:
        if rid not in taken:
            out.append(rid)
            if len(out) == k:
                break
    return out


# --- transformation task -> request (RequestTasks) -------------------------------------------
class RequestBodyError(ValueError):
    """The task cannot become a request (DIRAC logs it and drops the task from this submission)."""


BodyOperations = Sequence[tuple[str, Mapping[str, Any]] | Sequence[Any]]


def build_request(task_name: str, lfns: Sequence[str], body: str | BodyOperations | None, target_se: str,
                  task: Mapping[str, Any] | None = None, *, now: float = 0.0) -> Request:
    """RequestTasks.prepareTransformationTasks for one task.

    ``body`` is (a) a JSON list (or the decoded list) of (OperationType, {param: value}): a value
    containing "TASK:<key>" takes the task's field (TargetSE, InputData, or a key of ``task``) and
    every LFN goes into every operation; or (b) the legacy "<RequestType>;<OperationType>" string
    (empty: ReplicateAndRegister), one operation with TargetSE = the task's TargetSE.
    """
    operations = _decode_body(body)
    if operations is None:
        legacy = body if isinstance(body, str) else ""  # None, or the legacy "<RequestType>;<OperationType>"
        request = Request(task_name, [_single_operation(legacy, lfns, target_se, now)], now=now)
    else:
        if not lfns:
            raise RequestBodyError("No input data")
        fields = {"TargetSE": target_se, "InputData": list(lfns), **(task or {})}
        request = Request(task_name, [_body_operation(spec, lfns, fields, now) for spec in operations], now=now)
    _validate(request)
    return request


def _decode_body(body: str | BodyOperations | None) -> BodyOperations | None:
    """The multi-operation list, or None for the legacy single-operation form (JSON decoding fails)."""
    if body is None or not isinstance(body, str):
        return body
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    if not isinstance(decoded, list):
        raise RequestBodyError(f"expected a list of (OperationType, parameters), got {type(decoded).__name__}")
    return decoded


def _single_operation(body: str, lfns: Sequence[str], target_se: str, now: float) -> Operation:
    operation_type = "ReplicateAndRegister"
    if body:
        parts = body.split(";")
        if len(parts) != 2:
            raise RequestBodyError(f"expected '<RequestType>;<OperationType>', got {body!r}")
        operation_type = parts[1]
    return Operation(operation_type, lfns, target_se=target_se, now=now)


def _body_operation(spec: Any, lfns: Sequence[str], fields: Mapping[str, Any], now: float) -> Operation:
    if not (isinstance(spec, (list, tuple)) and len(spec) == 2 and isinstance(spec[1], Mapping)):
        raise RequestBodyError(f"expected (OperationType, {{parameter: value}}), got {spec!r}")
    operation_type, parameters = spec
    op = Operation(operation_type, now=now)
    for name, value in parameters.items():
        if isinstance(value, str) and "TASK:" in value:
            key = value.split("TASK:")[1]
            if key not in fields:
                raise RequestBodyError(f"Parameter {key} does not exist in taskDict")
            value = fields[key]
        op.set_parameter(name, value)
    for lfn in lfns:
        op.add_file(lfn)
    op.refresh(now)
    return op


def _validate(request: Request) -> None:
    """RequestValidator checks a transformation body can fail: operations, files, TargetSE."""
    if not request.operations:
        raise RequestBodyError(f"Operations not present in request '{request.name}'")
    for index, op in enumerate(request.operations):
        needs_files, needs_target = _REQUIRED.get(op.type, (bool(op.files), False))
        if needs_files != bool(op.files):
            verb = "hasn't got" if needs_files else "has got"
            raise RequestBodyError(f"Operation #{index} of type '{op.type}' {verb} files to process.")
        if needs_target and not op.target_se:
            raise RequestBodyError(f"Operation #{index} of type '{op.type}' is missing TargetSE attribute.")


def moving_body(source_se: str | Sequence[str], target_se: str | Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """The "Moving" body of DIRAC's ReplicationTransformation.createDataTransformation, as CTA's
    cta-transformation-move-dataset creates it: replicate Source -> Target, then remove the source."""
    source = source_se if isinstance(source_se, str) else ",".join(source_se)
    targets = [target_se] if isinstance(target_se, str) else list(target_se)
    return [("ReplicateAndRegister", {"SourceSE": source, "TargetSE": targets}),
            ("RemoveReplica", {"TargetSE": source})]


def transformation_body(kind: str, source_se: str | Sequence[str] = (),
                        target_se: str | Sequence[str] = ()) -> str:
    """The TS Body (a string, as stored) for a data-manipulation step kind of the scenario schema."""
    if kind == "moving":
        return json.dumps(moving_body(source_se, target_se))
    legacy = {"replication": "", "removal_file": "Removal;RemoveFile", "removal_replica": "Removal;RemoveReplica"}
    if kind not in legacy:
        raise ValueError(f"expected one of {['moving', *legacy]}, got {kind!r}")
    return legacy[kind]
