"""In-memory TransformationDB: transformations, TransformationFiles, tasks and meta-queries.

Method names, arguments and S_OK/S_ERROR shapes follow DIRAC's TransformationDB / TransformationClient
(DIRAC 9.1.22), so agent code reads as in DIRAC; time stamps are floats (simulation seconds) passed as
``now`` or read from an injected ``clock``. The client-side parts that matter for behaviour live here too:
the file state machine of ``setFileStatusForTransformation`` (Processed sticky, MaxReset, ErrorCount),
``startTransformation``/``stopTransformation`` and ``moveFilesToDerivedTransformation``.

Sized for 10^6 files per transformation: TransformationFiles are stored column-wise (arrays of codes
and numbers, one row per file) with per-status row sets and (Status, UsedSE) counters, and tasks keep
per-ExternalStatus indexes, so the agents' hot calls ("files in Unused/ProbInFC", counts by status or
UsedSE, "Created tasks to submit") cost O(answer), not O(table). Tasks are columns too (~30 B each, no
object per task): a task in a final status is only counted, so a year of finished tasks is its rows.
"""

from __future__ import annotations

import functools
from array import array
from itertools import repeat
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np

from twin.dirac.catalog import Meter, MeteredStore, metered, one_row
from twin.dirac.clients import FileCatalogAPI
from twin.dirac.returnvalues import S_ERROR, S_OK
from twin.codes import Codes
from twin.dirac.transformation import status as st

Result = dict[str, Any]
FileStatusListener = Callable[[int, str, "str | None", str, float], None]
#: (transID, taskID, old status or None when created, new status, now)
TaskStatusListener = Callable[[int, int, "str | None", str, float], None]
#: The pseudo-status reported for rows that cleanTransformation drops (DIRAC deletes them).
DROPPED: Final = "Deleted"

TRANSPARAMS: Final = (
    "TransformationID", "TransformationName", "Description", "LongDescription", "CreationDate",
    "LastUpdate", "Author", "AuthorGroup", "Type", "Plugin", "AgentType", "Status", "FileMask",
    "TransformationGroup", "GroupSize", "InheritedFrom", "Body", "MaxNumberOfTasks", "EventsPerTask",
    "TransformationFamily",
)
MUTABLE_PARAMS: Final = (
    "TransformationName", "Description", "LongDescription", "AgentType", "Status", "GroupSize",
    "MaxNumberOfTasks", "TransformationFamily", "Body",
)
TRANSFILEPARAMS: Final = (
    "TransformationID", "FileID", "Status", "TaskID", "TargetSE", "UsedSE", "ErrorCount", "LastUpdate",
    "InsertedTime",
)
FILE_COLUMNS: Final = ("LFN",) + TRANSFILEPARAMS
TASKSPARAMS: Final = (
    "TaskID", "TransformationID", "ExternalStatus", "ExternalID", "TargetSE", "CreationTime", "LastUpdateTime",
)
NOT_ALL_FILES_AVAILABLE: Final = "Not all supplied files available in the transformation database"
TRANSFORMATION_NOT_FOUND: Final = "Transformation does not exist"
#: TaskID given to inherited files: parent TaskID offset by parent ID (TransformationDB convention).
INHERITED_TASK_OFFSET: Final = 1_000_000


def next_file_status(current: str, proposed: str, error_count: int, force: bool, max_reset: int) -> str:
    """TransformationClient._applyTransformationFilesStateMachine for one file.

    ErrorCount is the value *before* this update (the DB increments it afterwards), so with the default
    counter of 10 the reset that finds ErrorCount == 10 (the 11th failure) yields MaxReset.
    """
    if current == st.PROCESSED and proposed != st.PROCESSED:
        return proposed if force else st.PROCESSED
    if current == st.MAX_RESET:
        return st.MAX_RESET if proposed == st.UNUSED and not force else proposed
    if proposed == st.UNUSED and error_count and error_count % max_reset == 0 and not force:
        return st.MAX_RESET
    return proposed


def file_was_in_error(current: str, new: str) -> bool:
    """TransformationClient._wasFileInError: an Assigned file that ends anywhere but Processed failed."""
    return current == st.ASSIGNED and new != st.PROCESSED


class _FileTable:
    """TransformationFiles of one transformation, column-wise; a row per file, in insertion order."""

    __slots__ = ("row_of", "file_id", "status", "task_id", "error_count", "used_se", "target_se",
                 "last_update", "inserted", "by_status", "by_status_se")

    def __init__(self) -> None:
        self.row_of: dict[int, int] = {}
        self.file_id = array("q")
        self.status = array("B")
        self.task_id = array("q")  # 0 = NULL
        self.error_count = array("l")
        self.used_se = array("l")
        self.target_se = array("l")
        self.last_update = array("d")
        self.inserted = array("d")
        self.by_status: dict[int, set[int]] = {}
        self.by_status_se: dict[tuple[int, int], int] = {}

    def __len__(self) -> int:
        return len(self.file_id)

    def append(self, fid: int, status: int, task_id: int, used_se: int, target_se: int, now: float) -> int:
        row = len(self.file_id)
        self.row_of[fid] = row
        self.file_id.append(fid)
        self.status.append(status)
        self.task_id.append(task_id)
        self.error_count.append(0)
        self.used_se.append(used_se)
        self.target_se.append(target_se)
        self.last_update.append(now)
        self.inserted.append(now)
        self.by_status.setdefault(status, set()).add(row)
        self._count(status, used_se, +1)
        return row

    def _count(self, status: int, used_se: int, delta: int) -> None:
        key = (status, used_se)
        n = self.by_status_se.get(key, 0) + delta
        if n:
            self.by_status_se[key] = n
        else:
            del self.by_status_se[key]

    def set_status(self, row: int, status: int, now: float) -> None:
        old = self.status[row]
        self.by_status[old].discard(row)
        self.by_status.setdefault(status, set()).add(row)
        self._count(old, self.used_se[row], -1)
        self._count(status, self.used_se[row], +1)
        self.status[row] = status
        self.last_update[row] = now

    def assign(self, row: int, task_id: int, used_se: int, assigned: int, now: float) -> None:
        self._count(self.status[row], self.used_se[row], -1)
        self.used_se[row] = used_se
        self._count(self.status[row], used_se, +1)
        self.task_id[row] = task_id
        self.set_status(row, assigned, now)

    def rows_in(self, status_codes: Iterable[int]) -> set[int]:
        by_status = self.by_status
        return set().union(*(by_status.get(code, ()) for code in status_codes))


#: Task statuses whose tasks are kept in the columns only (counted, not indexed): where a year of
#: finished tasks sits, and never iterated in entry order (an ExternalStatus query sorts by TaskID).
_UNINDEXED_TASK_STATES: Final = frozenset(st.TASK_FINAL_STATES) | {st.TASK_COMPLETED}
_INT32: Final = (-(2**31), 2**31 - 1)


class _Runs:
    """An append-only float column stored as runs of equal values (row where each run starts, its
    value): CreationTime, where a cycle creates its tasks at one instant (an MC extension of
    thousands of tasks is one run), costs bytes per run, not per task. Read by row, O(log runs)."""

    __slots__ = ("starts", "values", "n", "ordered")

    def __init__(self) -> None:
        self.starts = array("I")
        self.values = array("d")
        self.n = 0
        self.ordered = True  # values never decrease with the row (tasks are created as time goes on)

    def __len__(self) -> int:
        return self.n

    def append(self, value: float, count: int = 1) -> None:
        """`count` rows of `value` (one run more at most)."""
        if not self.values or self.values[-1] != value:
            if self.values and value < self.values[-1]:
                self.ordered = False
            self.starts.append(self.n)
            self.values.append(value)
        self.n += count

    def rows_below(self, value: float) -> int | None:
        """How many rows hold less than `value` when values never decrease (they are then rows 0..k-1);
        None when some value came after a greater one."""
        if not self.ordered:
            return None
        run = bisect_left(self.values, value)
        return self.starts[run] if run < len(self.starts) else self.n

    def __getitem__(self, row: int) -> float:
        if not 0 <= row < self.n:
            raise IndexError(row)
        return self.values[bisect_right(self.starts, row) - 1]

    def __delitem__(self, rows: slice) -> None:
        """Only the tail can go (``del column[-k:]``)."""
        start, stop, step = rows.indices(self.n)
        if stop != self.n or step != 1:
            raise IndexError("only a tail of a run column can be deleted")
        keep = bisect_right(self.starts, start - 1)  # the runs that start before the first row deleted
        del self.starts[keep:], self.values[keep:]
        self.n = start


class _Task:
    """A view of one row of a `_TaskTable` (made on demand, holds nothing of its own)."""

    __slots__ = ("table", "task_id")

    def __init__(self, table: "_TaskTable", task_id: int) -> None:
        self.table = table
        self.task_id = task_id

    @property
    def status(self) -> str:
        return self.table.codes.names[self.table.status[self.task_id - 1]]

    @property
    def external_id(self) -> str:
        return self.table.external_id_of(self.task_id)

    @external_id.setter
    def external_id(self, value: str) -> None:
        self.table.set_external_id(self.task_id, value)

    @property
    def target_se(self) -> str:
        return self.table.se_codes.names[self.table.target_se[self.task_id - 1]]

    @property
    def creation_time(self) -> float:
        return self.table.creation_time[self.task_id - 1]

    @property
    def last_update_time(self) -> float:
        return self.table.last_update_time[self.task_id - 1]

    @property
    def inputs(self) -> tuple[int, ...]:
        """The task's FileIDs."""
        return tuple(self.table.inputs_of(self.task_id))


class _TaskTable:
    """Tasks of one transformation (TaskID = row + 1) as columns, ~19 B per task: status code, ExternalID
    as an int (text only when it is not one), TargetSE code, LastUpdateTime, CreationTime as runs (one
    per creating cycle), the end of its FileIDs in one flat array. Statuses a task works through are indexed (ExternalStatus -> TaskIDs in order of
    entering it); the final ones are only counted, so a finished task is nothing but its row.

    `notify(taskID, old, new, now)` hears every creation (old None) and status change."""

    __slots__ = ("codes", "se_codes", "status", "external_id", "external_text", "target_se", "creation_time",
                 "last_update_time", "inputs_end", "inputs", "by_status", "unindexed", "seen", "notify")

    def __init__(self, notify: Callable[[int, "str | None", str, float], None] | None = None,
                 se_codes: "Codes[str] | None" = None) -> None:
        self.codes: Codes[str] = Codes()
        self.se_codes: Codes[str] = se_codes if se_codes is not None else Codes()
        self.status = array("B")
        self.external_id = array("i")
        self.external_text: dict[int, str] = {}  # TaskID -> an ExternalID that is not an int32 in canonical form
        self.target_se = array("H")
        self.creation_time = _Runs()  # tasks are created in batches at one instant
        self.last_update_time = array("d")
        self.inputs_end = array("I")
        self.inputs = array("q")
        self.by_status: dict[str, dict[int, None]] = {}
        self.unindexed: dict[str, int] = {}
        self.seen: dict[str, None] = {}  # statuses in order of first use: the order of counts()
        self.notify = notify

    def __len__(self) -> int:
        return len(self.status)

    def get(self, task_id: int) -> _Task | None:
        return _Task(self, task_id) if _is_task_id(task_id, len(self.status)) else None

    def all(self) -> list[_Task]:
        return [_Task(self, task_id) for task_id in range(1, len(self.status) + 1)]

    def add(self, target_se: str, now: float, inputs: tuple[int, ...]) -> _Task:
        task_id = len(self.status) + 1
        self.status.append(self._code(st.TASK_CREATED))
        self.external_id.append(0)
        self.target_se.append(self.se_codes.code(target_se))
        self.creation_time.append(now)
        self.last_update_time.append(now)
        self.inputs.extend(inputs)
        self.inputs_end.append(len(self.inputs))
        self._enter(st.TASK_CREATED, task_id)
        if self.notify is not None:
            self.notify(task_id, None, st.TASK_CREATED, now)
        return _Task(self, task_id)

    def add_inputless(self, n: int, target_se: str, now: float) -> range:
        """`n` input-less Created tasks at once (an MC extension): what `n` calls of `add` do, column by
        column; each creation is still heard by `notify`, in TaskID order. Their TaskIDs."""
        first = len(self.status) + 1
        ids = range(first, first + max(0, n))
        if not ids:
            return ids
        self.status.extend(array("B", [self._code(st.TASK_CREATED)]) * len(ids))
        self.external_id.extend(array("i", [0]) * len(ids))
        self.target_se.extend(array("H", [self.se_codes.code(target_se)]) * len(ids))
        self.creation_time.append(now, len(ids))
        self.last_update_time.extend(array("d", [now]) * len(ids))
        self.inputs_end.extend(array("I", [len(self.inputs)]) * len(ids))
        self.seen[st.TASK_CREATED] = None
        self.by_status.setdefault(st.TASK_CREATED, {}).update(dict.fromkeys(ids))
        if self.notify is not None:
            for task_id in ids:
                self.notify(task_id, None, st.TASK_CREATED, now)
        return ids

    def inputs_of(self, task_id: int) -> array:
        """The FileIDs of a task (a slice of the flat column)."""
        row = task_id - 1
        return self.inputs[self.inputs_end[row - 1] if row else 0:self.inputs_end[row]]

    def valid(self, task_ids: Iterable[Any]) -> bool:
        """Every ID is a TaskID of this table (what `get` would find, i.e. `_is_task_id` of each), checked in C:
        all ints (bools too, as the handler's type check), the least above 0, the greatest at most the rows."""
        ids = task_ids if isinstance(task_ids, (list, tuple)) else list(task_ids)
        return all(map(isinstance, ids, repeat(int))) and (not ids or (min(ids) > 0 and max(ids) <= len(self.status)))

    def _code(self, status: str) -> int:
        code = self.codes.code(status)
        if code > 255:
            raise ValueError("More than 256 distinct task statuses")
        return code

    def _enter(self, status: str, task_id: int) -> None:
        self.seen[status] = None
        if status in _UNINDEXED_TASK_STATES:
            self.unindexed[status] = self.unindexed.get(status, 0) + 1
        else:
            self.by_status.setdefault(status, {})[task_id] = None

    def _leave(self, status: str, task_id: int) -> None:
        if status in _UNINDEXED_TASK_STATES:
            self.unindexed[status] -= 1
        else:
            del self.by_status[status][task_id]

    def set_status(self, task: _Task, status: str, now: float) -> None:
        self.set_statuses((task.task_id,), status, now)

    def set_statuses(self, task_ids: Iterable[int], status: str, now: float) -> None:
        """Each task to `status` in turn (listener told of each change), LastUpdateTime refreshed even
        when unchanged; the status's code and index are looked up once, not per task."""
        codes, names, column, last = self.codes.codes, self.codes.names, self.status, self.last_update_time
        by_status, unindexed, notify = self.by_status, self.unindexed, self.notify
        code = codes.get(status, -1)
        indexed = status not in _UNINDEXED_TASK_STATES
        target: dict[int, None] | None = None  # the status's index, made at its first entry
        entered = False
        for task_id in task_ids:
            row = task_id - 1
            old_code = column[row]
            if old_code != code:
                if code < 0:
                    code = self._code(status)
                old = names[old_code]
                if old in _UNINDEXED_TASK_STATES:
                    unindexed[old] -= 1
                else:
                    del by_status[old][task_id]
                if not entered:
                    entered = True
                    self.seen[status] = None
                    if indexed:
                        target = by_status.setdefault(status, {})
                if target is not None:
                    target[task_id] = None
                else:
                    unindexed[status] = unindexed.get(status, 0) + 1
                column[row] = code
                if notify is not None:
                    notify(task_id, old, status, now)
            last[row] = now

    def ids_in(self, status: str) -> Iterable[int]:
        """TaskIDs in `status`: in order of entering it for an indexed status, by TaskID for a final one."""
        if status not in _UNINDEXED_TASK_STATES:
            return self.by_status.get(status, ())
        code = self.codes.codes.get(status)
        if code is None or not self.unindexed.get(status):
            return ()
        return (np.flatnonzero(np.frombuffer(self.status, dtype=np.uint8) == code) + 1).tolist()

    def external_id_of(self, task_id: int) -> str:
        text = self.external_text.get(task_id)
        return text if text is not None else str(self.external_id[task_id - 1])

    def set_external_int(self, task_id: int, value: int) -> None:
        """An int32 ExternalID (a JobID): what `set_external_id(str(value))` stores, without the parse."""
        self.external_id[task_id - 1] = value
        if self.external_text:
            self.external_text.pop(task_id, None)

    def set_external_id(self, task_id: int, value: str) -> None:
        """Kept as an int32 when `value` is one written canonically (a JobID), else as text."""
        number = int(value) if value.isascii() and value.lstrip("-").isdigit() else None
        if number is not None and str(number) == value and _INT32[0] <= number <= _INT32[1]:
            self.external_id[task_id - 1] = number
            self.external_text.pop(task_id, None)
        else:
            self.external_id[task_id - 1] = 0
            self.external_text[task_id] = value

    def counts(self) -> dict[str, int]:
        by_status, unindexed = self.by_status, self.unindexed
        counts = {status: len(by_status[status]) if status in by_status else unindexed[status] for status in self.seen}
        return {status: n for status, n in counts.items() if n}


class _Transformation:
    __slots__ = ("params", "additional", "files", "tasks", "queries")

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.additional: dict[str, Any] = {}
        self.files = _FileTable()
        self.tasks = _TaskTable()
        self.queries: dict[str, dict[str, Any]] = {}

    @property
    def id(self) -> int:
        return self.params["TransformationID"]


def _matches(value: Any, wanted: Any) -> bool:
    return value in wanted if isinstance(wanted, (list, tuple, set)) else value == wanted


def _select(items: Iterable[Any], get: Callable[[Any, str], Any], cond: Mapping[str, Any],
            older: float | None, newer: float | None, time_stamp: str | None) -> list[Any]:
    """SQL-like WHERE: equality / IN on `cond`, and time_stamp >= newer, time_stamp < older."""
    checks = list(cond.items())
    stamp = time_stamp if newer is not None or older is not None else None  # only a bound makes it a condition
    out = []
    for item in items:
        for attr, wanted in checks:
            if not _matches(get(item, attr), wanted):
                break
        else:
            if stamp and (newer is not None and get(item, stamp) < newer
                          or older is not None and get(item, stamp) >= older):
                continue
            out.append(item)
    return out


def _order_page(items: list[Any], get: Callable[[Any, str], Any], order: str | list[str] | None,
                limit: int | None, offset: int | None) -> list[Any]:
    """ORDER BY "Attr[:ASC|:DESC]" (applied last to first, so the first is the major key), LIMIT, OFFSET."""
    if not (order or limit or offset):
        return items
    orders = [order] if isinstance(order, str) else list(order or [])
    for spec in reversed(orders):
        attr, _, direction = spec.partition(":")
        items.sort(key=lambda item: _sort_key(get(item, attr)), reverse=direction.upper() == "DESC")
    start = offset or 0
    return items[start:start + limit] if limit else items[start:]


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is not None, value)


def _is_task_id(task_id: Any, n: int) -> bool:
    """A TaskID of a table of `n` tasks: an int (as the handler's `int` type check, so also a bool) in 1..n."""
    return isinstance(task_id, int) and 0 < task_id <= n


def _ids(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _unknown(_trans_name: Any) -> Result:
    """DIRAC's exact message: callers compare it (TransformationDB._getTransformationID)."""
    return S_ERROR(TRANSFORMATION_NOT_FOUND)


def _unknown_task(trans: _Transformation, task_ids: list[Any]) -> Result:
    return S_ERROR(f"Unknown task in transformation {trans.id}: {task_ids}")


class TransformationDB(MeteredStore):
    """The TS database. Public methods return S_OK/S_ERROR and are metered as db="TransformationDB"."""

    DB_NAME = "TransformationDB"

    def __init__(
        self,
        meter: Meter | None = None,
        clock: Callable[[], float] | None = None,
        catalog: FileCatalogAPI | None = None,
        files_max_reset_counter: int = st.FILES_MAX_RESET_COUNTER,
        extendable_types: Iterable[str] = st.EXTENDABLE_TRANSFORMATION_TYPES,
        on_file_status: FileStatusListener | None = None,
        on_task_status: TaskStatusListener | None = None,
    ) -> None:
        """`catalog` serves the Input meta-query run once by addTransformation; `on_file_status` is called
        (transID, lfn, old, new, now) on every file status change, old=None when a file is added, and
        `on_task_status` (transID, taskID, old, new, now) likewise for tasks: the trail the event log keeps."""
        super().__init__(meter)
        self._clock = clock or (lambda: 0.0)
        self.catalog = catalog
        self.files_max_reset_counter = files_max_reset_counter
        self.extendable_types = {t.lower() for t in extendable_types}
        self.on_file_status = on_file_status
        self._on_task_status = on_task_status
        self._trans: dict[int, _Transformation] = {}
        self._names: dict[str, int] = {}
        self._next_id = 1
        self._lfn: Codes[str] = Codes([""])  # DataFiles: LFN <-> FileID, global ("" holds 0: FileIDs start at 1)
        self._status: Codes[str] = Codes()
        self._se: Codes[str] = Codes()
        self._unknown_se = self._se.code(st.UNKNOWN_SE)
        self._unused = self._status_code(st.UNUSED)
        self._assigned = self._status_code(st.ASSIGNED)

    # --- helpers ------------------------------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else float(now)

    def _status_code(self, status: str) -> int:
        code = self._status.code(status)
        if code > 255:
            raise ValueError("More than 256 distinct TransformationFiles statuses")
        return code

    def _lookup(self, trans_name: int | str) -> _Transformation | None:
        if isinstance(trans_name, str) and not trans_name.isdigit():
            trans_id = self._names.get(trans_name)
        else:
            trans_id = int(trans_name)
        return self._trans.get(trans_id) if trans_id is not None else None

    def _row_of_lfn(self, trans: _Transformation, lfn: str) -> int | None:
        fid = self._lfn.codes.get(lfn)
        return None if fid is None else trans.files.row_of.get(fid)

    def _notify(self, trans: _Transformation, row: int, old: str | None, new: str, now: float) -> None:
        if self.on_file_status is not None:
            self.on_file_status(trans.id, self._lfn.names[trans.files.file_id[row]], old, new, now)

    @property
    def on_task_status(self) -> TaskStatusListener | None:
        return self._on_task_status

    @on_task_status.setter
    def on_task_status(self, listener: TaskStatusListener | None) -> None:
        """Every task table hears its changes through `listener` bound to its TransformationID (no
        wrapper between a task's status change and the listener: six changes per job)."""
        self._on_task_status = listener
        for trans in self._trans.values():
            trans.tasks.notify = self._task_listener(trans.id)

    def _task_listener(self, trans_id: int) -> Callable[[int, "str | None", str, float], None] | None:
        listener = self._on_task_status
        return None if listener is None else functools.partial(listener, trans_id)

    def _trans_dict(self, trans: _Transformation, extra_params: bool, columns: Iterable[str] | None = None) -> dict:
        params = trans.params if columns is None else {c: trans.params[c] for c in columns if c in trans.params}
        out = dict(params)
        if extra_params:
            out.update(trans.additional)
        return out

    # --- transformations ------------------------------------------------------------------------------

    @metered("addTransformation", one_row)
    def addTransformation(
        self,
        transName: str,
        description: str,
        longDescription: str,
        transType: str,
        plugin: str,
        agentType: str,
        fileMask: str,
        transformationGroup: str = "General",
        groupSize: int = 1,
        inheritedFrom: int = 0,
        body: str = "",
        maxTasks: int = 0,
        eventsPerTask: int = 0,
        addFiles: bool = True,
        inputMetaQuery: dict[str, Any] | None = None,
        outputMetaQuery: dict[str, Any] | None = None,
        author: str = "",
        authorGroup: str = "",
        now: float | None = None,
    ) -> Result:
        """Create a transformation in status New; S_OK(transID)."""
        if transName in self._names:
            return S_ERROR(f"Transformation with name {transName} already exists with "
                           f"TransformationID = {self._names[transName]}")
        parent = self._lookup(inheritedFrom) if inheritedFrom else None
        if inheritedFrom and parent is None:
            return _unknown(inheritedFrom)
        t = self._now(now)
        trans_id = self._next_id
        self._next_id += 1
        trans = _Transformation({
            "TransformationID": trans_id, "TransformationName": transName, "Description": description,
            "LongDescription": longDescription, "CreationDate": t, "LastUpdate": t, "Author": author,
            "AuthorGroup": authorGroup, "Type": transType, "Plugin": plugin, "AgentType": agentType,
            "Status": st.NEW, "FileMask": fileMask, "TransformationGroup": transformationGroup,
            "GroupSize": groupSize, "InheritedFrom": inheritedFrom, "Body": body, "MaxNumberOfTasks": maxTasks,
            "EventsPerTask": eventsPerTask, "TransformationFamily": 0,
        })
        trans.tasks.notify = self._task_listener(trans_id)
        self._trans[trans_id] = trans
        self._names[transName] = trans_id
        for query_type, query in (("Input", inputMetaQuery), ("Output", outputMetaQuery)):
            if query:
                trans.queries[query_type] = dict(query)
        if parent is not None:
            self._derive_from(parent, trans, t)
        if addFiles and inputMetaQuery and self.catalog is not None:
            found = self._attach_input_files(trans, inputMetaQuery, t)
            if not found["OK"]:
                return found
        return S_OK(trans_id)

    def _attach_input_files(self, trans: _Transformation, query: dict[str, Any], now: float) -> Result:
        """The one-off Input query of addTransformation (InputDataAgent keeps it up to date afterwards)."""
        found = self.catalog.findFilesByMetadata(query)  # type: ignore[union-attr]
        if found["OK"] and found["Value"]:
            self._add_files(trans, found["Value"], now)
        return found

    def _derive_from(self, parent: _Transformation, child: _Transformation, now: float) -> None:
        """Parent -> Completing/Automatic; its files are copied as "<status>-inherited" (not Removed)."""
        parent.params.update(Status=st.COMPLETING, AgentType=st.AGENT_TYPE_AUTOMATIC, LastUpdate=now)
        src = parent.files
        names = self._status.names
        for row in range(len(src)):
            status = names[src.status[row]]
            if status == st.REMOVED:
                continue
            if "-" not in status:
                status = f"{status}-inherited"
            task_id = src.task_id[row]
            if task_id:
                task_id += INHERITED_TASK_OFFSET * parent.id
            new_row = child.files.append(src.file_id[row], self._status_code(status), task_id,
                                         src.used_se[row], src.target_se[row], now)
            self._notify(child, new_row, None, status, now)

    @metered("getTransformations")
    def getTransformations(
        self,
        condDict: dict[str, Any] | None = None,
        older: float | None = None,
        newer: float | None = None,
        timeStamp: str = "LastUpdate",
        orderAttribute: str | None = None,
        limit: int | None = None,
        extraParams: bool = False,
        offset: int | None = None,
        columns: list[str] | None = None,
    ) -> Result:
        """Transformation dicts; with extraParams the AdditionalParameters are merged in (plugins' params)."""
        get = lambda trans, attr: trans.params.get(attr)  # noqa: E731
        chosen = _select(self._trans.values(), get, condDict or {}, older, newer, timeStamp)
        chosen = _order_page(chosen, get, orderAttribute, limit, offset)
        return S_OK([self._trans_dict(trans, extraParams, columns) for trans in chosen])

    @metered("getTransformation", one_row)
    def getTransformation(self, transName: int | str, extraParams: bool = False) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        return S_OK(self._trans_dict(trans, extraParams))

    @metered("getTransformationParameters", one_row)
    def getTransformationParameters(self, transName: int | str, parameters: str | list[str]) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        merged = self._trans_dict(trans, True)
        names = [parameters] if isinstance(parameters, str) else list(parameters)
        missing = [name for name in names if name not in merged]
        if missing:
            return S_ERROR(f"Parameter {missing[0]} not defined for transformation {transName}")
        if len(names) == 1:
            return S_OK(merged[names[0]])
        return S_OK({name: merged[name] for name in names})

    @metered("getTransformationWithStatus")
    def getTransformationWithStatus(self, status: str | list[str]) -> Result:
        return S_OK([tid for tid, trans in self._trans.items() if _matches(trans.params["Status"], status)])

    @metered("setTransformationParameter", one_row)
    def setTransformationParameter(self, transName: int | str, paramName: str, paramValue: Any,
                                   now: float | None = None) -> Result:
        """Core parameters must be mutable; any other name is an AdditionalParameter (ints kept as int,
        everything else stored as its string form, as the DB does)."""
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        if paramName not in TRANSPARAMS:
            trans.additional[paramName] = int(paramValue) if isinstance(paramValue, int) else str(paramValue)
            return S_OK()
        if paramName not in MUTABLE_PARAMS:
            return S_ERROR(f"Can not update the '{paramName}' transformation parameter")
        if paramName == "TransformationName":
            if paramValue in self._names and self._names[paramValue] != trans.id:
                return S_ERROR(f"Transformation with name {paramValue} already exists")
            del self._names[trans.params["TransformationName"]]
            self._names[paramValue] = trans.id
        trans.params[paramName] = paramValue
        trans.params["LastUpdate"] = self._now(now)
        return S_OK()

    @metered("getAdditionalParameters")
    def getAdditionalParameters(self, transName: int | str) -> Result:
        trans = self._lookup(transName)
        return _unknown(transName) if trans is None else S_OK(dict(trans.additional))

    @metered("deleteTransformationParameter", one_row)
    def deleteTransformationParameter(self, transName: int | str, paramName: str) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        if paramName in TRANSPARAMS:
            return S_ERROR("Can not delete core transformation parameter")
        trans.additional.pop(paramName, None)
        return S_OK()

    def startTransformation(self, transID: int | str, now: float | None = None) -> Result:
        """Client call: Status Active and AgentType Automatic (two parameter updates, as in DIRAC)."""
        return self._set_status_and_agent(transID, st.ACTIVE, st.AGENT_TYPE_AUTOMATIC, now)

    def stopTransformation(self, transID: int | str, now: float | None = None) -> Result:
        """Client call: Status Stopped and AgentType Manual."""
        return self._set_status_and_agent(transID, st.STOPPED, st.AGENT_TYPE_MANUAL, now)

    def _set_status_and_agent(self, trans_id: int | str, status: str, agent_type: str, now: float | None) -> Result:
        res = self.setTransformationParameter(trans_id, "Status", status, now=now)
        if not res["OK"]:
            return res
        return self.setTransformationParameter(trans_id, "AgentType", agent_type, now=now)

    def completeTransformation(self, transID: int | str, now: float | None = None) -> Result:
        return self.setTransformationParameter(transID, "Status", st.COMPLETED, now=now)

    @metered("cleanTransformation", one_row)
    def cleanTransformation(self, transName: int | str, now: float | None = None) -> Result:
        """Drop files, tasks and meta-queries; Status TransformationCleaned (TaskIDs restart at 1)."""
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        t = self._now(now)
        for row in range(len(trans.files)):
            self._notify(trans, row, self._status.names[trans.files.status[row]], DROPPED, t)
        notify = trans.tasks.notify
        if notify is not None:
            for task in trans.tasks.all():
                notify(task.task_id, task.status, DROPPED, t)
        trans.files = _FileTable()
        trans.tasks = _TaskTable(trans.tasks.notify)
        trans.queries.clear()
        trans.params["Status"] = st.TRANSFORMATION_CLEANED
        trans.params["LastUpdate"] = t
        return S_OK(trans.id)

    # --- meta-queries ---------------------------------------------------------------------------------

    @metered("createTransformationMetaQuery", one_row)
    def createTransformationMetaQuery(self, transName: int | str, queryDict: dict[str, Any], queryType: str) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        if queryType in trans.queries:
            return S_ERROR(f"The {queryType} MetaQuery already exists for transformation {trans.id}")
        trans.queries[queryType] = dict(queryDict)
        return S_OK()

    @metered("getTransformationMetaQuery", one_row)
    def getTransformationMetaQuery(self, transName: int | str, queryType: str) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        query = trans.queries.get(queryType)
        if query is None:
            return S_ERROR(f"No {queryType} MetaQuery found for transformation {trans.id}")
        return S_OK(dict(query))

    @metered("deleteTransformationMetaQuery", one_row)
    def deleteTransformationMetaQuery(self, transName: int | str, queryType: str) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        trans.queries.pop(queryType, None)
        return S_OK()

    # --- TransformationFiles ----------------------------------------------------------------------------

    @metered("addFilesToTransformation")
    def addFilesToTransformation(self, transName: int | str, lfns: list[str], now: float | None = None) -> Result:
        """Attach LFNs as Unused; idempotent: an LFN already attached is "Present" and left untouched."""
        if not lfns:
            return S_ERROR("Zero length LFN list")
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        return S_OK({"Successful": self._add_files(trans, lfns, self._now(now)), "Failed": {}})

    def _add_files(self, trans: _Transformation, lfns: Iterable[str], now: float) -> dict[str, str]:
        table = trans.files
        row_of = table.row_of
        outcome: dict[str, str] = {}
        file_id = self._lfn.code
        for lfn in lfns:
            fid = file_id(lfn)
            if fid in row_of:
                outcome[lfn] = "Present"
                continue
            row = table.append(fid, self._unused, 0, self._unknown_se, self._unknown_se, now)
            outcome[lfn] = "Added"
            self._notify(trans, row, None, st.UNUSED, now)
        return outcome

    def _file_records(self, pairs: list[tuple[_Transformation, int]]) -> list[dict[str, Any]]:
        """Rows as DIRAC dicts (LFN + TRANSFILEPARAMS); the hot loop of every file read, kept flat."""
        lfns, statuses, ses = self._lfn.names, self._status.names, self._se.names
        records = []
        for trans, row in pairs:
            table = trans.files
            fid = table.file_id[row]
            records.append({
                "LFN": lfns[fid], "TransformationID": trans.id, "FileID": fid, "Status": statuses[table.status[row]],
                "TaskID": table.task_id[row] or None, "TargetSE": ses[table.target_se[row]],
                "UsedSE": ses[table.used_se[row]], "ErrorCount": table.error_count[row],
                "LastUpdate": table.last_update[row], "InsertedTime": table.inserted[row],
            })
        return records

    def _file_getter(self) -> Callable[[tuple[_Transformation, int], str], Any]:
        """Column accessor on (transformation, row) pairs, for WHERE / ORDER BY / GROUP BY."""
        def get(item: tuple[_Transformation, int], attr: str) -> Any:
            trans, row = item
            table = trans.files
            if attr == "Status":
                return self._status.names[table.status[row]]
            if attr == "LFN":
                return self._lfn.names[table.file_id[row]]
            if attr in ("UsedSE", "TargetSE"):
                return self._se.names[(table.used_se if attr == "UsedSE" else table.target_se)[row]]
            if attr == "TransformationID":
                return trans.id
            if attr == "TaskID":
                return table.task_id[row] or None
            columns: dict[str, array[Any]] = {"FileID": table.file_id, "ErrorCount": table.error_count,
                                              "LastUpdate": table.last_update, "InsertedTime": table.inserted}
            column = columns[attr]
            return column[row]
        return get

    def _selected_transformations(self, cond: Mapping[str, Any]) -> list[_Transformation]:
        if "TransformationID" not in cond:
            return list(self._trans.values())
        found = (self._trans.get(tid) for tid in _ids(cond["TransformationID"]))
        return [trans for trans in found if trans is not None]

    def _candidate_rows(self, trans: _Transformation, cond: Mapping[str, Any]) -> tuple[Iterable[int], str | None]:
        """Rows that may match, from the most selective index, and the condition that index settled."""
        table = trans.files
        if "LFN" in cond:
            rows = (self._row_of_lfn(trans, lfn) for lfn in _ids(cond["LFN"]))
            return sorted({row for row in rows if row is not None}), "LFN"
        if "FileID" in cond:
            return sorted({table.row_of[f] for f in _ids(cond["FileID"]) if f in table.row_of}), "FileID"
        if "TaskID" in cond and None not in _ids(cond["TaskID"]):
            tasks, row_of = trans.tasks, table.row_of
            if not tasks.inputs:  # no task has input files (MC): nothing to look up per task
                return [], None
            known = [task_id for task_id in _ids(cond["TaskID"]) if tasks.valid((task_id,))]
            return sorted({row_of[f] for task_id in known for f in tasks.inputs_of(task_id) if f in row_of}), None
        if "Status" in cond:
            codes = [self._status.codes[s] for s in _ids(cond["Status"]) if s in self._status.codes]
            return sorted(table.rows_in(codes)), "Status"
        return range(len(table)), None

    def _file_rows(self, cond: Mapping[str, Any], older: float | None, newer: float | None,
                   time_stamp: str | None) -> list[tuple[_Transformation, int]]:
        get = self._file_getter()
        timed = older is not None or newer is not None
        selected: list[tuple[_Transformation, int]] = []
        for trans in self._selected_transformations(cond):
            rows, settled = self._candidate_rows(trans, cond)
            pairs = [(trans, row) for row in rows]
            rest = {k: v for k, v in cond.items() if k not in ("TransformationID", settled)}
            selected.extend(_select(pairs, get, rest, older, newer, time_stamp) if rest or timed else pairs)
        return selected

    @metered("getTransformationFiles")
    def getTransformationFiles(
        self,
        condDict: dict[str, Any] | None = None,
        older: float | None = None,
        newer: float | None = None,
        timeStamp: str = "LastUpdate",
        orderAttribute: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        columns: list[str] | None = None,
    ) -> Result:
        """File dicts (LFN + TRANSFILEPARAMS) per transformation in insertion order; None TaskID if unassigned."""
        cond = condDict or {}
        bad = [key for key in cond if key not in FILE_COLUMNS]
        if bad:
            return S_ERROR(f"Invalid key {bad[0]} in condDict")
        if columns is not None and not set(columns) <= set(FILE_COLUMNS):
            return S_ERROR(f"Invalid columns requested, valid columns are: {list(FILE_COLUMNS)}")
        pairs = _order_page(self._file_rows(cond, older, newer, timeStamp), self._file_getter(),
                            orderAttribute, limit, offset)
        records = self._file_records(pairs)
        if columns is not None:
            records = [{c: rec[c] for c in columns} for rec in records]
        return S_OK(records)

    @metered("setFileStatusForTransformation")
    def setFileStatusForTransformation(
        self,
        transName: int | str,
        newLFNsStatus: dict[str, str] | str | None = None,
        lfns: list[str] | str | None = None,
        force: bool = False,
        now: float | None = None,
    ) -> Result:
        """Client state machine then DB update; S_OK({lfn: new status}) for the files that changed.

        `newLFNsStatus` is {lfn: status}, or one status for all of `lfns`. LFNs not in the transformation
        are ignored. ErrorCount is incremented when an Assigned file goes anywhere but Processed.
        """
        if isinstance(newLFNsStatus, str):
            if not lfns:
                return S_OK({})
            newLFNsStatus = dict.fromkeys([lfns] if isinstance(lfns, str) else lfns, newLFNsStatus)
        if not newLFNsStatus:
            return S_OK({})
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        t = self._now(now)
        changed: dict[str, str] = {}
        for lfn, proposed in newLFNsStatus.items():
            row = self._row_of_lfn(trans, lfn)
            if row is not None and self._move_file(trans, row, proposed, force, t):
                changed[lfn] = self._status.names[trans.files.status[row]]
        return S_OK(changed)

    def _move_file(self, trans: _Transformation, row: int, proposed: str, force: bool, now: float) -> bool:
        table = trans.files
        current = self._status.names[table.status[row]]
        new = next_file_status(current, proposed, table.error_count[row], force, self.files_max_reset_counter)
        if new == current:
            return False
        if file_was_in_error(current, new):
            table.error_count[row] += 1
        table.set_status(row, self._status_code(new), now)
        self._notify(trans, row, current, new, now)
        return True

    @metered("getTransformationStats")
    def getTransformationStats(self, transName: int | str) -> Result:
        """{status: count} over non-inherited statuses, plus "Total"."""
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        names = self._status.names
        stats = {names[code]: len(rows) for code, rows in sorted(trans.files.by_status.items(),
                                                                  key=lambda kv: names[kv[0]])
                 if rows and "-" not in names[code]}
        stats["Total"] = sum(stats.values())
        return S_OK(stats)

    # --- counters ------------------------------------------------------------------------------------

    @metered("getCounters")
    def getCounters(self, table: str, attrList: list[str], condDict: dict[str, Any] | None,
                    older: float | None = None, newer: float | None = None, timeStamp: str | None = None) -> Result:
        """SELECT attrs, COUNT(*) ... GROUP BY attrs ORDER BY attrs, as [({attr: value}, count), ...].

        TransformationFiles grouped/filtered by TransformationID, Status, UsedSE and TransformationTasks by
        TransformationID, ExternalStatus are served from the counters; anything else is counted row by row.
        """
        cond = condDict or {}
        timed = older is not None or newer is not None
        if table == "TransformationFiles":
            if not timed and set(attrList) | set(cond) <= {"TransformationID", "Status", "UsedSE"}:
                counts = self._file_counts_indexed(attrList, cond)
            else:
                counts = self._group(self._file_rows(cond, older, newer, timeStamp), self._file_getter(), attrList)
        elif table == "TransformationTasks":
            if not timed and set(attrList) | set(cond) <= {"TransformationID", "ExternalStatus"}:
                counts = self._task_counts_indexed(attrList, cond)
            else:
                counts = self._group(self._task_rows(cond, older, newer, timeStamp), _task_get, attrList)
        elif table == "Transformations":
            rows = _select(self._trans.values(), lambda t, a: t.params.get(a), cond, older, newer, timeStamp)
            counts = self._group(rows, lambda t, a: t.params.get(a), attrList)
        else:
            return S_ERROR(f"Invalid table argument: {table}")
        ordered = sorted(counts.items(), key=lambda kv: tuple(_sort_key(v) for v in kv[0]))
        return S_OK([(dict(zip(attrList, key)), n) for key, n in ordered if n])

    @staticmethod
    def _group(items: Iterable[Any], get: Callable[[Any, str], Any], attrs: list[str]) -> dict[tuple, int]:
        counts: dict[tuple, int] = {}
        for item in items:
            key = tuple(get(item, attr) for attr in attrs)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def _file_counts_indexed(self, attrs: list[str], cond: Mapping[str, Any]) -> dict[tuple, int]:
        counts: dict[tuple, int] = {}
        for trans in self._selected_transformations(cond):
            for (status_code, se_code), n in trans.files.by_status_se.items():
                values = {"TransformationID": trans.id, "Status": self._status.names[status_code],
                          "UsedSE": self._se.names[se_code]}
                if all(_matches(values[attr], wanted) for attr, wanted in cond.items()):
                    key = tuple(values[attr] for attr in attrs)
                    counts[key] = counts.get(key, 0) + n
        return counts

    def _task_counts_indexed(self, attrs: list[str], cond: Mapping[str, Any]) -> dict[tuple, int]:
        counts: dict[tuple, int] = {}
        for trans in self._selected_transformations(cond):
            for status, n in trans.tasks.counts().items():
                values = {"TransformationID": trans.id, "ExternalStatus": status}
                if all(_matches(values[attr], wanted) for attr, wanted in cond.items()):
                    key = tuple(values[attr] for attr in attrs)
                    counts[key] = counts.get(key, 0) + n
        return counts

    # --- tasks ------------------------------------------------------------------------------------------

    @metered("addTaskForTransformation", one_row)
    def addTaskForTransformation(self, transID: int | str, lfns: list[str] | None = None, se: str = st.UNKNOWN_SE,
                                 now: float | None = None) -> Result:
        """New Created task; its files become Assigned with TaskID and UsedSE=se. All-or-nothing: any LFN
        not attached or not in Unused/ProbInFC refuses the whole task."""
        trans = self._lookup(transID)
        if trans is None:
            return _unknown(transID)
        table = trans.files
        names = self._status.names
        rows: dict[int, None] = {}
        for lfn in lfns or ():
            row = self._row_of_lfn(trans, lfn)
            if row is None or names[table.status[row]] not in st.ALLOWED_STATUS_FOR_TASKS:
                return S_ERROR(NOT_ALL_FILES_AVAILABLE)
            rows[row] = None
        t = self._now(now)
        task = trans.tasks.add(se, t, tuple(table.file_id[row] for row in rows))
        se_code = self._se.code(se)
        for row in rows:
            old = names[table.status[row]]
            table.assign(row, task.task_id, se_code, self._assigned, t)
            self._notify(trans, row, old, st.ASSIGNED, t)
        return S_OK(task.task_id)

    @metered("extendTransformation")
    def extendTransformation(self, transName: int | str, nTasks: int, now: float | None = None) -> Result:
        """Add nTasks input-less Created tasks to an extendable (MC simulation) transformation."""
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        if str(trans.params["Type"]).lower() not in self.extendable_types:
            return S_ERROR("Can not extend non-SIMULATION type production")
        return S_OK(list(trans.tasks.add_inputless(nTasks, st.UNKNOWN_SE, self._now(now))))

    def _task_record(self, trans: _Transformation, task: _Task, input_vector: bool) -> dict[str, Any]:
        record = {
            "TaskID": task.task_id, "TransformationID": trans.id, "ExternalStatus": task.status,
            "ExternalID": task.external_id, "TargetSE": task.target_se, "CreationTime": task.creation_time,
            "LastUpdateTime": task.last_update_time,
        }
        if input_vector:
            record["InputVector"] = self._input_vector(task)
        return record

    def _input_vector(self, task: _Task) -> str:
        """TaskInputs.InputVector: the task LFNs joined by ';' ("" for input-less tasks)."""
        names = self._lfn.names
        return ";".join([names[fid] for fid in task.table.inputs_of(task.task_id)])

    def _task_rows(self, cond: Mapping[str, Any], older: float | None, newer: float | None,
                   time_stamp: str | None) -> list[tuple[_Transformation, _Task]]:
        timed = older is not None or newer is not None
        selected: list[tuple[_Transformation, _Task]] = []
        for trans in self._selected_transformations(cond):
            candidates, settled = self._candidate_tasks(trans.tasks, cond)
            pairs = [(trans, task) for task in candidates if task is not None]
            rest = {k: v for k, v in cond.items() if k not in ("TransformationID", settled)}
            selected.extend(_select(pairs, _task_get, rest, older, newer, time_stamp) if rest or timed else pairs)
        return selected

    @staticmethod
    def _candidate_tasks(tasks: _TaskTable, cond: Mapping[str, Any]) -> tuple[Sequence[_Task | None], str | None]:
        if "TaskID" in cond:
            return [tasks.get(task_id) for task_id in dict.fromkeys(_ids(cond["TaskID"]))], "TaskID"
        if "ExternalStatus" in cond:
            ids = sorted(set().union(*(tasks.ids_in(s) for s in _ids(cond["ExternalStatus"]))))
            return [tasks.get(task_id) for task_id in ids], "ExternalStatus"
        return tasks.all(), None

    @metered("getTransformationTasks")
    def getTransformationTasks(
        self,
        condDict: dict[str, Any] | None = None,
        older: float | None = None,
        newer: float | None = None,
        timeStamp: str = "CreationTime",
        orderAttribute: str | None = None,
        limit: int | None = None,
        inputVector: bool = False,
        offset: int | None = None,
    ) -> Result:
        cond = condDict or {}
        bad = [key for key in cond if key not in TASKSPARAMS]
        if bad:
            return S_ERROR(f"Invalid key {bad[0]} in condDict")
        pairs = _order_page(self._task_rows(cond, older, newer, timeStamp), _task_get, orderAttribute, limit, offset)
        return S_OK([self._task_record(trans, task, inputVector) for trans, task in pairs])

    @metered("getTasksToSubmit")
    def getTasksToSubmit(self, transName: int | str, numTasks: int, site: str = "", now: float | None = None) -> Result:
        """Reserve up to numTasks Created tasks older than 30 s (in order of entering Created).

        S_OK(transformation dict + "JobDictionary": {TaskID: {TaskID, TransformationID, TargetSE,
        Status ("Created", as read before reserving), InputData (';'-joined LFNs)}}).
        """
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        t = self._now(now)
        cutoff = t - st.TASK_SUBMIT_MIN_AGE_S
        tasks = trans.tasks
        created, creation_time = tasks.by_status.get(st.TASK_CREATED, ()), tasks.creation_time
        old_enough = creation_time.rows_below(cutoff)  # tasks 1..old_enough were created before the cutoff
        chosen: list[int] = []
        for task_id in created:
            if len(chosen) >= numTasks:
                break
            if task_id <= old_enough if old_enough is not None else creation_time[task_id - 1] < cutoff:
                chosen.append(task_id)
        jobs: dict[int, dict[str, Any]] = {}
        se_names, target_se, trans_id = tasks.se_codes.names, tasks.target_se, trans.id
        inputs_of, lfns = tasks.inputs_of, self._lfn.names
        for task_id in chosen:
            job = jobs[task_id] = {"TaskID": task_id, "TransformationID": trans_id, "TargetSE": se_names[target_se[task_id - 1]],
                                   "Status": st.TASK_CREATED,
                                   "InputData": ";".join([lfns[fid] for fid in inputs_of(task_id)])}  # `_input_vector`
            if site:
                job["Site"] = site
        tasks.set_statuses(chosen, st.TASK_RESERVED, t)
        trans_dict = self._trans_dict(trans, False)
        trans_dict["JobDictionary"] = jobs
        return S_OK(trans_dict)

    def _unknown_tasks(self, trans: _Transformation, task_ids: list[Any]) -> Result | None:
        """The S_ERROR for a list naming a task the transformation does not have (None: all known)."""
        return None if trans.tasks.valid(task_ids) else _unknown_task(trans, task_ids)

    # TaskIDs are typed Any: they come from callers as they are and are checked here (`_unknown_tasks`).
    @metered("setTaskStatus")
    def setTaskStatus(self, transName: int | str, taskID: Any, status: str,
                      now: float | None = None) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        task_ids = _ids(taskID)
        error = self._unknown_tasks(trans, task_ids)
        if error is not None:
            return error
        trans.tasks.set_statuses(task_ids, status, self._now(now))
        return S_OK()

    @metered("setTaskStatusAndWmsID", one_row)
    def setTaskStatusAndWmsID(self, transName: int | str, taskID: Any, status: str, taskWmsID: Any,
                              now: float | None = None) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        error = self._unknown_tasks(trans, [taskID])
        if error is not None:
            return error
        trans.tasks.set_external_id(taskID, str(taskWmsID))
        trans.tasks.set_statuses((taskID,), status, self._now(now))
        return S_OK()

    def set_tasks_status_and_wms_ids(self, trans_id: int, submitted: Iterable[tuple[Any, Any]], status: str,
                                     now: float | None = None) -> list[Result]:
        """What one setTaskStatusAndWmsID(trans_id, taskID, status, JobID) call per (taskID, JobID) does
        (TaskManager.updateDBAfterTaskSubmission makes one per submitted task), applied in one pass: each
        still counted and charged as a call, and the same S_OK/S_ERROR per task, in order."""
        op = "setTaskStatusAndWmsID"
        trans = self._lookup(trans_id)
        t = self._now(now)
        results: list[Result] = []
        accepted: list[int] = []
        tasks = trans.tasks if trans is not None else None
        n = len(tasks) if tasks is not None else 0
        for task_id, job_id in submitted:
            if tasks is None or not _is_task_id(task_id, n):
                results.append(_unknown(trans_id) if trans is None else _unknown_task(trans, [task_id]))
                continue
            if type(job_id) is int and _INT32[0] <= job_id <= _INT32[1]:
                tasks.set_external_int(task_id, job_id)
            else:
                tasks.set_external_id(task_id, str(job_id))
            accepted.append(task_id)
            results.append(S_OK())
        if tasks is not None:  # the status changes in call order (the listener hears them so); ExternalIDs are not heard
            tasks.set_statuses(accepted, status, t)
        for _ in results:
            self._charge(op, 1)
        return results

    @metered("getTaskInputVector")
    def getTaskInputVector(self, transName: int | str, taskID: Any) -> Result:
        trans = self._lookup(transName)
        if trans is None:
            return _unknown(transName)
        found = ((task_id, trans.tasks.get(task_id)) for task_id in _ids(taskID))
        return S_OK({task_id: self._input_vector(task) for task_id, task in found if task is not None and task.inputs})

    @metered("getTransformationTaskStats")
    def getTransformationTaskStats(self, transName: int | str = "") -> Result:
        """{ExternalStatus: count} plus TotalCreated, for one transformation or (no name) for all."""
        if transName:
            trans = self._lookup(transName)
            if trans is None:
                return _unknown(transName)
            selected = [trans]
        else:
            selected = list(self._trans.values())
        stats: dict[str, int] = {}
        for trans in selected:
            for status, n in trans.tasks.counts().items():
                stats[status] = stats.get(status, 0) + n
        stats = dict(sorted(stats.items()))
        stats["TotalCreated"] = sum(stats.values())
        return S_OK(stats)

    # --- the simulation's own reads (not DIRAC calls, not metered): the invariant recount ----------------

    def status_columns(self, table: str) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """(TransformationID, status codes per row, code -> status) of "TransformationTasks" (row = TaskID - 1)
        or "TransformationFiles" (row = the file's row, see `file_rows`): the records, not their counters."""
        for trans_id, trans in self._trans.items():
            if table == "TransformationTasks":
                yield trans_id, np.array(trans.tasks.status, dtype=np.int64), list(trans.tasks.codes.names)
            else:
                yield trans_id, np.array(trans.files.status, dtype=np.int64), list(self._status.names)

    def file_rows(self, trans_id: int, lfns: Iterable[str]) -> np.ndarray:
        """Each LFN's row in the transformation's TransformationFiles, -1 where it has none."""
        trans = self._trans.get(trans_id)
        row_of = trans.files.row_of if trans is not None else {}
        file_ids = self._lfn.codes
        return np.fromiter((row_of.get(file_ids.get(lfn, -1), -1) for lfn in lfns), dtype=np.int64)

    # --- derived transformations (client logic) ---------------------------------------------------------

    def moveFilesToDerivedTransformation(self, transDict: dict[str, Any], resetUnused: bool = True,
                                         now: float | None = None) -> Result:
        """TransformationClient.moveFilesToDerivedTransformation: hand the parent's Unused/MaxReset files to
        the derived transformation; S_OK((parentID, {moveStatus: count}))."""
        prod = transDict["TransformationID"]
        parent = int(transDict.get("InheritedFrom", 0) or 0)
        if not parent:
            return S_OK((parent, {}))
        res = self.getTransformationFiles({"TransformationID": parent, "Status": [st.UNUSED, st.MAX_RESET]})
        if not res["OK"]:
            return res
        parent_files = res["Value"]
        if not parent_files:
            return S_OK((parent, {}))
        res = self.getTransformationFiles({"TransformationID": prod, "LFN": [f["LFN"] for f in parent_files]})
        if not res["OK"]:
            return res
        derived_status = {f["LFN"]: f["Status"] for f in res["Value"]}
        moved, in_parent, in_derived = self._plan_move(parent_files, derived_status, resetUnused)
        for status, lfns in in_parent.items():
            self.setFileStatusForTransformation(parent, status, lfns, now=now)
        for status, lfns in in_derived.items():
            self.setFileStatusForTransformation(prod, status, lfns, now=now)
        self._inherit_processed(prod, parent, now)
        return S_OK((parent, moved))

    @staticmethod
    def _plan_move(parent_files: list[dict[str, Any]], derived_status: dict[str, str], reset_unused: bool
                   ) -> tuple[dict[str, int], dict[str, list[str]], dict[str, list[str]]]:
        moved: dict[str, int] = {}
        in_parent: dict[str, list[str]] = {}
        in_derived: dict[str, list[str]] = {}
        for record in parent_files:
            lfn, parent_status = record["LFN"], record["Status"]
            if lfn not in derived_status:
                continue
            status = move_status = parent_status
            if parent_status == st.MAX_RESET:
                status, move_status = (st.UNUSED, "Unused from MaxReset") if reset_unused else (st.MAXRESET_INHERITED,
                                                                                              parent_status)
            if derived_status[lfn].endswith("-inherited"):
                in_derived.setdefault(status, []).append(lfn)
                moved[move_status] = moved.get(move_status, 0) + 1
            target = st.NOT_PROCESSED if parent_status == st.UNUSED else st.MOVED
            in_parent.setdefault(target, []).append(lfn)
        return moved, in_parent, in_derived

    def _inherit_processed(self, prod: int, parent: int, now: float | None) -> None:
        """Derived files still Assigned-/Unused-inherited whose parent file got Processed -> Processed-inherited."""
        res = self.getTransformationFiles({"TransformationID": prod,
                                           "Status": [st.ASSIGNED_INHERITED, st.UNUSED_INHERITED]})
        if not res["OK"] or not res["Value"]:
            return
        res = self.getTransformationFiles({"TransformationID": parent, "LFN": [f["LFN"] for f in res["Value"]]})
        processed = [f["LFN"] for f in res["Value"] if f["Status"] == st.PROCESSED] if res["OK"] else []
        if processed:
            self.setFileStatusForTransformation(prod, st.PROCESSED_INHERITED, processed, now=now)


def _task_get(item: tuple[_Transformation, _Task], attr: str) -> Any:
    trans, task = item
    if attr == "TransformationID":
        return trans.id
    return getattr(task, _TASK_ATTRS[attr])


_TASK_ATTRS = {
    "TaskID": "task_id", "ExternalStatus": "status", "ExternalID": "external_id", "TargetSE": "target_se",
    "CreationTime": "creation_time", "LastUpdateTime": "last_update_time",
}


class TransformationClient:
    """DIRAC's TransformationClient over a `TransformationDB`: satisfies TransformationClientAPI; every
    other DIRAC method is passed straight through to the DB."""

    def __init__(self, db: TransformationDB) -> None:
        self.db = db

    def getCounters(self, table: str, attrList: list[str], condDict: dict[str, Any]) -> Result:
        return self.db.getCounters(table, attrList, condDict)

    def addFilesToTransformation(self, transID: int, lfns: list[str]) -> Result:
        return self.db.addFilesToTransformation(transID, lfns)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.db, name)
