"""In-memory DIRAC File Catalog (DFC): namespace, replicas, typed indexed user metadata, datasets.

A year of operations registers ~10^7 files that must stay (processing inputs, moves, cleaning), so a file
is a row of columns, ~45 bytes, no Python object of its own. Layout:

* a file is a FileID (registration order) with columns: directory, name, size, replica set; the name is
  coded as (shape, number) (`_NameCodec`: production names are digit runs in a fixed pattern) and the
  replica set as a code into the distinct SE tuples, so no LFN string is stored; LFN -> FileID is an
  open-addressing table of FileIDs keyed by (directory, shape, number), 6-12 bytes per file;
* a directory field keeps ``holder -> value`` plus ``value -> holders`` buckets and its distinct values in
  sorted order (bisect) for range operators (directories are few); a file field is one column indexed by
  FileID (`_FileField`), filtered vectorised over the files in a query's scope (the twin's InputDataAgent
  keeps its Input queries up to date per registered file, so it does not re-run them every cycle);
* query answers come by FileID, as the DFC's SQL returns them (FileMetadata.findFilesByMetadata);
* a field is either a directory field or a file field (as in the DFC: DirectoryMetaFields and
  FileMetaFields never share a name) and a directory field is set at most once along any root-to-leaf
  chain (the DFC's "Metadata conflict" rule). So a file's effective metadata is the disjoint union of its
  directory chain and its own values, and a directory match covers the whole subtree below it.

`FileCatalog` is the twin-native store (plain values, raises ValueError / FileNotFoundError);
`FileCatalogClient` is the DIRAC-shaped facade (S_OK / S_ERROR, Successful / Failed) that plugins and
agents receive. Every public call of the store is reported to an optional ``meter(db, op, rows)`` so the
simulation can charge MySQL load, and counted in ``counters``.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple, TypeVar, cast

import numpy as np

from twin.codes import Codes
from twin.dirac.returnvalues import S_ERROR, S_OK

Meter = Callable[[str, str, int], None]
Result = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])
#: The holders of one value of a directory field (a name: `_Field.set` shadows the builtin in its class)
HolderSet = set[int]

NO_SUCH_FILE: Final = "No such file or directory"
DIRECTORY_META: Final = "-d"
FILE_META: Final = "-f"
OPERATORS: Final = ("=", "in", "!=", "nin", "<", "<=", ">", ">=")
_COMPARE: Final = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_LEVEL_NAMES: Final = {DIRECTORY_META: "directory", FILE_META: "file"}
_DIRAC_TYPE_NAMES: Final = {int: "INT", float: "FLOAT", str: "VARCHAR(128)"}
_ROOT: Final = 0


# --- bulk results and metering, shared with the TransformationDB --------------------------------


class Bulk(NamedTuple):
    """Per-item outcome of a bulk call, DIRAC's Successful / Failed pair."""

    successful: dict[str, Any]
    failed: dict[str, str]


def each(items: Iterable[tuple[str, Any]], action: Callable[[str, Any], Any]) -> Bulk:
    """DIRAC bulk semantics: apply `action` per (key, argument); a ValueError or FileNotFoundError fails
    that key only. A None result counts as True."""
    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for key, argument in items:
        try:
            result = action(key, argument)
        except (ValueError, FileNotFoundError) as exc:
            failed[key] = str(exc)
        else:
            done[key] = True if result is None else result
    return Bulk(done, failed)


def result_rows(result: Any) -> int:
    """Rows a call touched, read off its result (a bulk pair, an S_OK value, a container)."""
    if isinstance(result, Bulk):
        return len(result.successful) + len(result.failed)
    if isinstance(result, dict) and "OK" in result:
        result = result.get("Value")
        if isinstance(result, dict) and "Successful" in result:
            return len(result["Successful"]) + len(result.get("Failed", ()))
    if isinstance(result, (list, tuple, set, dict)):
        return len(result)
    return 1


def one_row(_result: Any) -> int:
    return 1


def metered(op: str, rows: Callable[[Any], int] = result_rows) -> Callable[[F], F]:
    """Decorate a public DB method so each call is counted and charged, failed calls with 0 rows."""

    def decorate(method: F) -> F:
        fixed = rows is one_row  # no need to read the result

        @functools.wraps(method)
        def call(self: MeteredStore, *args: Any, **kwargs: Any) -> Any:
            try:
                result = method(self, *args, **kwargs)
            except Exception:
                self._charge(op, 0)
                raise
            self._charge(op, 1 if fixed else rows(result))
            return result

        return cast(F, call)

    return decorate


class MeteredStore:
    """Base of the twin's DIRAC databases: per-operation call counters and the MySQL-load hook."""

    DB_NAME = ""

    def __init__(self, meter: Meter | None = None) -> None:
        self._meter = meter
        self.counters: Counter[str] = Counter()

    def _charge(self, op: str, rows: int) -> None:
        self.counters[op] += 1
        if self._meter is not None:
            self._meter(self.DB_NAME, op, rows)


# --- metadata fields and their indexes ----------------------------------------------------------------


def parse_field_type(ftype: type | str) -> type:
    """Map int/float/str or a DIRAC type name ("INT", "VARCHAR(128)", "float", "string") to a Python type."""
    if isinstance(ftype, type):
        if ftype in (int, float, str):
            return ftype
    elif isinstance(ftype, str):
        low = ftype.strip().lower()
        if low.startswith("int"):
            return int
        if low in ("float", "double"):
            return float
        if low in ("str", "string") or low.startswith("varchar"):
            return str
    raise ValueError(f"Unsupported metadata type {ftype!r}: use int, float or str")


class _MetaField:
    """What a directory field and a file field share: name, value type, level ("-d" / "-f"), the value check;
    each stores values per holder (a directory ID or a FileID) in its own way."""

    __slots__ = ("name", "ptype", "level")

    def __init__(self, name: str, ptype: type, level: str) -> None:
        self.name = name
        self.ptype = ptype
        self.level = level

    def coerce(self, value: Any) -> Any:
        """The value in this field's type, or ValueError: int fields take ints, float fields numbers."""
        ptype = self.ptype
        if not isinstance(value, bool):
            if ptype is int and isinstance(value, int):
                return value
            if ptype is float and isinstance(value, (int, float)):
                return float(value)
            if ptype is str and isinstance(value, str):
                return value
        raise ValueError(
            f"Metadata field {self.name!r} has type {ptype.__name__}; "
            f"value {value!r} of type {type(value).__name__} rejected"
        )

    def set(self, holder: int, value: Any) -> None:
        raise NotImplementedError

    def discard(self, holder: int) -> None:
        raise NotImplementedError


class _Field(_MetaField):
    """One metadata field: type, holder -> value, value -> holders, and its distinct values in order.

    A bucket holding a single holder is stored as the bare int (most file values, e.g. run numbers, are
    unique), so 10^6 files do not cost 10^6 sets. Sorted values are maintained lazily: new values are
    buffered and merged in on the next range query, so loading files in any order stays cheap; a value
    whose bucket empties stays listed (``_stale`` counts them) until a linear compaction, and while any
    stale value is listed, range scans check liveness value by value instead of slicing directly.
    """

    __slots__ = ("values", "buckets", "_order", "_pending", "_stale")

    def __init__(self, name: str, ptype: type, level: str) -> None:
        super().__init__(name, ptype, level)
        self.values: dict[int, Any] = {}
        self.buckets: dict[Any, int | set[int]] = {}
        self._order: list[Any] = []
        self._pending: list[Any] = []
        self._stale = 0

    def set(self, holder: int, value: Any) -> None:
        if holder in self.values:
            if self.values[holder] == value:
                return
            self.discard(holder)
        self.values[holder] = value
        bucket = self.buckets.get(value)
        if bucket is None:
            self.buckets[value] = holder
            self._pending.append(value)
        elif isinstance(bucket, int):
            self.buckets[value] = {bucket, holder}
        else:
            bucket.add(holder)

    def discard(self, holder: int) -> None:
        value = self.values.pop(holder, _MISSING)
        if value is _MISSING:
            return
        bucket = self.buckets[value]
        if isinstance(bucket, int):
            del self.buckets[value]
            self._stale += 1
            return
        bucket.discard(holder)
        if len(bucket) == 1:
            self.buckets[value] = bucket.pop()

    def _sorted(self) -> list[Any]:
        if self._pending:
            self._order.extend(self._pending)
            self._pending.clear()
            self._order.sort()  # two runs: Timsort merges them in linear time
        if self._stale and self._stale * 8 > len(self._order):
            self._order = self._live(self._order)
            self._stale = 0
        return self._order

    def _live(self, ordered: list[Any]) -> list[Any]:
        """`ordered` without values whose bucket emptied, and without repeats (a value can be re-listed)."""
        buckets = self.buckets
        out: list[Any] = []
        previous = _MISSING
        for value in ordered:
            if value != previous and value in buckets:
                out.append(value)
            previous = value
        return out

    def matching_values(self, ops: list[tuple[str, Any]]) -> list[Any]:
        """Distinct stored values satisfying every (op, operand); cost ~ number of values returned."""
        allowed: set[Any] | None = None
        excluded: set[Any] = set()
        ranges = [(op, operand) for op, operand in ops if op in _COMPARE]
        for op, operand in ops:
            if op in ("=", "in"):
                wanted = set(operand) if op == "in" else {operand}
                allowed = wanted if allowed is None else allowed & wanted
            elif op in ("!=", "nin"):
                excluded.update(operand if op == "nin" else (operand,))
        if allowed is not None:
            candidates = sorted(
                v for v in allowed if v in self.buckets and all(_COMPARE[op](v, x) for op, x in ranges))
        else:
            candidates = self._in_range(ranges)
        return [v for v in candidates if v not in excluded] if excluded else candidates

    def _in_range(self, ranges: list[tuple[str, Any]]) -> list[Any]:
        """Live distinct values within the tightest bounds, by bisection on the sorted values."""
        order = self._sorted()
        start, end = 0, len(order)
        for op, operand in ranges:
            if op in (">", ">="):
                start = max(start, (bisect_right if op == ">" else bisect_left)(order, operand))
            else:
                end = min(end, (bisect_left if op == "<" else bisect_right)(order, operand))
        return self._live(order[start:end]) if self._stale else order[start:end]

    def holders(self, values: list[Any]) -> HolderSet:
        """Holders of any of `values` (a fresh set: callers may keep it)."""
        single: HolderSet = set()
        several: list[HolderSet] = []
        for value in values:
            bucket = self.buckets[value]
            if isinstance(bucket, int):
                single.add(bucket)
            else:
                several.append(bucket)
        return single.union(*several)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final[Any] = _Missing()


def _parse_condition(field: _MetaField, condition: Any) -> list[tuple[str, Any]]:
    """A DIRAC MetaQuery value ({op: operand}, a list, or a scalar) as typed (op, operand) pairs."""
    if isinstance(condition, dict):
        pairs = list(condition.items())
    elif isinstance(condition, (list, tuple, set)):
        pairs = [("in", list(condition))]
    else:
        pairs = [("=", condition)]
    ops: list[tuple[str, Any]] = []
    for op, operand in pairs:
        if op not in OPERATORS:
            raise ValueError(f"Illegal query operator {op!r} for {field.name!r}; allowed: {OPERATORS}")
        many = isinstance(operand, (list, tuple, set))
        if op in _COMPARE:
            if many:
                raise ValueError("Illegal query: list of values for comparison operation")
            ops.append((op, field.coerce(operand)))
        elif op in ("in", "nin") or many:
            seq = operand if many else [operand]
            ops.append(("nin" if op in ("!=", "nin") else "in", [field.coerce(v) for v in seq]))
        else:
            ops.append((op, field.coerce(operand)))
    return ops


def _satisfies(value: Any, ops: list[tuple[str, Any]]) -> bool:
    """MetaQuery.applyQuery for one field of one holder (used by push-mode style checks)."""
    if value is _MISSING:
        return False
    for op, operand in ops:
        if op == "=" and value != operand or op == "!=" and value == operand:
            return False
        if op == "in" and value not in operand or op == "nin" and value in operand:
            return False
        if op in _COMPARE and not _COMPARE[op](value, operand):
            return False
    return True


_NO_INT: Final = -(2**63)
_NO_INT32: Final = -(2**31)
_INT64: Final = (-(2**63) + 1, 2**63 - 1)


def _append(column: array, value: int, wide: str) -> array:
    """`column` with `value` appended, copied to the wider typecode first if `value` does not fit: columns
    start narrow (most values are small) and pay for width only once a value needs it."""
    try:
        column.append(value)
    except OverflowError:
        column = array(wide, column)
        column.append(value)
    return column


class _FileField(_MetaField):
    """A file metadata field as one column indexed by FileID: int64 / float64 values, or str values as
    codes into a label list; no per-file object. Values a column cannot hold (an int outside int64, a
    NaN) sit in a sparse `extra` dict. Queries are vectorised over the FileIDs in scope (the file
    fields are not indexed by value: the twin runs file-field queries once per transformation and
    keeps its Input queries up to date per registered file, so a per-value index would cost ~100 B per
    file for nothing)."""

    __slots__ = ("column", "extra", "labels", "label_codes")

    def __init__(self, name: str, ptype: type) -> None:
        super().__init__(name, ptype, FILE_META)
        self.column: array[Any] = array("I" if ptype is str else "i" if ptype is int else "d")  # int: "q" once needed
        self.extra: dict[int, Any] = {}
        self.labels: list[Any] = [None]  # code 0: no value
        self.label_codes: dict[Any, int] = {}

    def _missing(self) -> Any:
        if self.ptype is int:
            return _NO_INT32 if self.column.typecode == "i" else _NO_INT
        return 0 if self.ptype is str else math.nan

    def _widen(self) -> None:
        """int32 -> int64 column (the missing marker moves with it)."""
        self.column = array("q", (_NO_INT if v == _NO_INT32 else v for v in self.column))

    def _raw(self, value: Any) -> Any:
        """The column's representation of `value`, or None when only `extra` can hold it."""
        if self.ptype is str:
            code = self.label_codes.get(value)
            if code is None:
                code = self.label_codes[value] = len(self.labels)
                self.labels.append(value)
            return code
        if self.ptype is int:
            if self.column.typecode == "i" and not _NO_INT32 < value <= 2**31 - 1:
                self._widen()
            return value if _INT64[0] <= value <= _INT64[1] else None
        return None if value != value else value

    def get(self, fid: int) -> Any:
        if self.extra and fid in self.extra:
            return self.extra[fid]
        if fid >= len(self.column):
            return _MISSING
        raw = self.column[fid]
        if self.ptype is str:
            return self.labels[raw] if raw else _MISSING
        if self.ptype is int:
            return _MISSING if raw == self._missing() else raw
        return _MISSING if raw != raw else raw

    def set(self, fid: int, value: Any) -> None:
        raw = self._raw(value)  # first: it may widen the column
        column = self.column
        if fid == len(column) and raw is not None:  # the newest file (the usual case): no padding, no extra
            column.append(raw)
            return
        if fid >= len(column):
            column.extend([self._missing()] * (fid + 1 - len(column)))
        if raw is None:
            column[fid] = self._missing()
            self.extra[fid] = value
        else:
            column[fid] = raw
            self.extra.pop(fid, None)

    def discard(self, fid: int) -> None:
        self.extra.pop(fid, None)
        if fid < len(self.column):
            self.column[fid] = self._missing()

    def mask(self, fids: np.ndarray, ops: list[tuple[str, Any]]) -> np.ndarray:
        """Which of the (sorted) `fids` hold a value satisfying every (op, operand)."""
        column = self.column
        dtype = np.uint32 if self.ptype is str else np.int64 if self.ptype is int else np.float64
        values = np.full(len(fids), _NO_INT if self.ptype is int else self._missing(), dtype=dtype)
        inside = fids < len(column)
        if len(column):
            stored = np.frombuffer(column, dtype=np.dtype(column.typecode))[fids[inside]].astype(dtype)
            if column.typecode == "i":
                stored[stored == _NO_INT32] = _NO_INT
            values[inside] = stored
        if self.ptype is str:
            allowed = [code for code, label in enumerate(self.labels) if code and _satisfies(label, ops)]
            hits = np.isin(values, allowed)
        elif self.ptype is int and not all(_fits_int64(operand) for _, operand in ops):
            distinct = np.unique(values[values != _NO_INT])
            hits = np.isin(values, [v for v in distinct.tolist() if _satisfies(v, ops)])
        else:
            hits = values != _NO_INT if self.ptype is int else ~np.isnan(values)
            for op, operand in ops:
                hits &= _vector_op(values, op, operand)
        for fid, value in self.extra.items():
            at = np.searchsorted(fids, fid)
            if at < len(fids) and fids[at] == fid:
                hits[at] = _satisfies(value, ops)
        return hits


def _fits_int64(operand: Any) -> bool:
    items = operand if isinstance(operand, list) else [operand]
    return all(_INT64[0] <= v <= _INT64[1] for v in items)


def _vector_op(values: np.ndarray, op: str, operand: Any) -> np.ndarray:
    if op == "=":
        return values == operand
    if op == "!=":
        return values != operand
    if op == "in":
        return np.isin(values, operand)
    if op == "nin":
        return ~np.isin(values, operand)
    return _COMPARE[op](values, operand)


# --- names: an LFN is its directory plus a name coded as (shape, number) -------------------------------

_DIGIT_SPLIT: Final = re.compile(r"([0-9]+)")  # split keeping the runs: literals at even, runs at odd indexes
_MAX_DIGITS: Final = 18  # a name's digits packed into one int64
_TEXT: Final = 0xFFFF  # shape code of a name kept as text
_REMOVED: Final = 0xFFFF  # replica-set code of a removed file (its name stays decodable)
_EMPTY: Final = -1  # an LFN-table slot never used
_TOMB: Final = -2  # a slot whose file was removed
_ASCII_DIGITS: Final = frozenset(b"0123456789")
_MASK_DIGITS: Final = bytes.maketrans(b"0123456789", b"\0" * 10)


class _NameCodec:
    """File names as (shape code, int): the shape is the name with its digit runs cut out (the literal
    parts and each run's width); the int is the runs' digits concatenated. Production names
    ("00000012_00000345_0_1.dat") take 10 bytes instead of a ~70-byte string; a name with more than
    18 digits (or beyond 65,534 shapes) is kept as text.

    A name of a known shape is coded without the regex split (a fifth of an output's registration):
    its UTF-8 bytes with every ASCII digit masked to NUL are the shape's key (equal masks, equal
    literals and run widths; UTF-8 never puts a digit byte inside another character), and the number
    is what is left once the shape's literal bytes are deleted."""

    __slots__ = ("codes", "shapes", "_by_mask")

    def __init__(self) -> None:
        self.codes: dict[tuple[tuple[str, ...], tuple[int, ...]], int] = {}
        self.shapes: list[tuple[tuple[str, ...], tuple[int, ...], int]] = []
        #: a known shape's masked name -> (its code, its literal bytes to delete; None: no digits)
        self._by_mask: dict[bytes, tuple[int, bytes | None]] = {}

    def encode(self, name: str, create: bool) -> tuple[int, int] | None:
        """(shape, number); (_TEXT, 0) for a name kept as text; None for an unknown shape when not creating."""
        try:
            raw = name.encode()
        except UnicodeEncodeError:  # a lone surrogate: the reference coding only
            return self._split_encode(name, create)
        known = self._by_mask.get(raw.translate(_MASK_DIGITS))
        if known is not None and b"\0" not in raw:  # a NUL in the name would pass for a digit
            code, literals = known
            return (code, int(raw.translate(None, literals))) if literals is not None else (code, 0)
        coded = self._split_encode(name, create)
        if coded is not None and coded[0] != _TEXT and b"\0" not in raw:
            code = coded[0]
            literals = bytes(set(raw) - _ASCII_DIGITS) if self.shapes[code][2] else None
            self._by_mask[raw.translate(_MASK_DIGITS)] = (code, literals)
        return coded

    def _split_encode(self, name: str, create: bool) -> tuple[int, int] | None:
        """The reference coding, by splitting the digit runs out (and the only one that adds shapes)."""
        parts = _DIGIT_SPLIT.split(name)  # literal, run, literal, ..., literal: one regex pass
        runs = parts[1::2]
        widths = tuple(map(len, runs))
        total = sum(widths)
        if total > _MAX_DIGITS:
            return _TEXT, 0
        key = (tuple(parts[0::2]), widths)
        code = self.codes.get(key)
        if code is None:
            if not create:
                return None
            if len(self.shapes) >= _TEXT:
                return _TEXT, 0
            code = self.codes[key] = len(self.shapes)
            self.shapes.append((key[0], widths, total))
        return code, int("".join(runs)) if runs else 0

    def decode(self, code: int, number: int) -> str:
        literals, widths, total = self.shapes[code]
        digits = f"{number:0{total}d}" if total else ""
        parts = [literals[0]]
        start = 0
        for literal, width in zip(literals[1:], widths):
            parts.append(digits[start:start + width])
            parts.append(literal)
            start += width
        return "".join(parts)


# --- namespace ----------------------------------------------------------------------------------------


class _Dir:
    """A directory: tree links, the FileIDs registered in it (ascending; removed ones skipped), own metadata."""

    __slots__ = ("id", "path", "parent", "children", "files", "dead", "meta", "below")

    def __init__(self, did: int, path: str, parent: int) -> None:
        self.id = did
        self.path = path
        self.parent = parent
        self.children: list[int] = []
        self.files = array("i")
        self.dead = 0  # removed files still listed in `files`
        self.meta: dict[str, Any] = {}
        #: directory-metadata keys held strictly below this directory -> how many holders
        self.below: dict[str, int] = {}


def _split_lfn(lfn: str) -> tuple[str, str]:
    if not isinstance(lfn, str) or not lfn.startswith("/"):
        raise ValueError(f"LFN must be an absolute path string, got {lfn!r}")
    head, _, name = lfn.rpartition("/")
    if not name:
        raise ValueError(f"LFN must name a file, got {lfn!r}")
    return head or "/", name


def _norm_dir(path: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"Path must be an absolute path string, got {path!r}")
    return path.rstrip("/") or "/"


def _as_list(lfns: Iterable[str] | str) -> list[str]:
    return [lfns] if isinstance(lfns, str) else list(lfns)


class FileCatalog(MeteredStore):
    """The DFC contents and its indexes; see the module docstring for the layout and the rules."""

    DB_NAME = "FileCatalogDB"

    def __init__(self, meter: Meter | None = None) -> None:
        super().__init__(meter)
        #: called with the LFN after each new file is registered (push-mode filters hook here)
        self.on_file_registered: list[Callable[[str], None]] = []
        self._fields: dict[str, _MetaField] = {}
        self._file_fields: list[_FileField] = []
        self._dirs: list[_Dir] = [_Dir(_ROOT, "/", -1)]
        self._dir_ids: dict[str, int] = {"/": _ROOT}
        # per FileID: directory, name (shape, number), size, replica-set code (_REMOVED once removed)
        self._file_dir = array("H")  # widened to "i" past 65,535 directories (`_append`)
        self._shape = array("H")
        self._number = array("q")
        self._sizes = array("I")  # widened to "q" by the first file of 4 GiB or more
        self._rset = array("H")
        self._names = _NameCodec()
        self._text: dict[int, str] = {}  # FileID -> name kept as text
        self._odd: dict[str, int] = {}  # LFNs not spelled "<directory path>/<name>" (e.g. "//x") -> FileID
        self._replica_sets: Codes[tuple[str, ...]] = Codes([()])  # code 0: no replica
        # LFN -> FileID: open addressing over FileIDs, keyed by (directory, shape, number or text name)
        self._slots = array("i", [_EMPTY]) * 8
        self._used_slots = 0
        self._live = 0
        self._datasets: dict[str, tuple[dict[str, Any], str]] = {}

    # Introspection for the simulation's own bookkeeping: not DFC calls, so not metered.
    def __len__(self) -> int:
        return self._live

    def __contains__(self, lfn: object) -> bool:
        return isinstance(lfn, str) and self.file_id(lfn) is not None

    def lfns(self, path: str = "/") -> Iterator[str]:
        """Every LFN registered below `path`, by FileID (registration order), one at a time."""
        lfn = self.lfn
        return (lfn(fid) for fid in self._subtree_files([self._did(path)]).tolist())

    def file_id(self, lfn: str) -> int | None:
        """The FileID of a registered LFN, else None."""
        if self._odd and lfn in self._odd:
            return self._odd[lfn]
        head, _, name = lfn.rpartition("/")
        if head == "/" or not name:  # "//x" is not "/x": only an odd spelling registered as such
            return None
        did = self._dir_ids.get(head) if head else _ROOT
        if did is None:
            return None
        coded = self._names.encode(name, create=False)
        if coded is None:
            return None
        fid = self._slots[self._slot(self._key(did, coded, name))]
        return fid if fid >= 0 else None

    def lfn(self, fid: int) -> str:
        """The LFN of a FileID, also after the file was removed (FileIDs are never reused)."""
        did, code = self._file_dir[fid], self._shape[fid]
        name = self._text[fid] if code == _TEXT else self._names.decode(code, self._number[fid])
        path = self._dirs[did].path
        lfn = f"{path}/{name}" if path != "/" else f"/{name}"
        return lfn if fid not in self._text or not self._odd else self._odd_lfn(fid, lfn)

    def _odd_lfn(self, fid: int, lfn: str) -> str:
        return next((odd for odd, f in self._odd.items() if f == fid), lfn)

    # --- the LFN index ------------------------------------------------------------------------------

    @staticmethod
    def _key(did: int, coded: tuple[int, int], name: str) -> tuple[int, int, Any]:
        code, number = coded
        return (did, code, name) if code == _TEXT else (did, code, number)

    def _key_of(self, fid: int) -> tuple[int, int, Any]:
        code = self._shape[fid]
        return self._file_dir[fid], code, self._text[fid] if code == _TEXT else self._number[fid]

    def _slot(self, key: tuple[int, int, Any]) -> int:
        """The slot holding `key`'s FileID, else the empty slot that ends its probe sequence.

        A numbered name is compared column by column, number first (the one that differs between
        neighbours), without building the probed file's key: an upload probes ~5 slots."""
        slots = self._slots
        mask = len(slots) - 1
        i = hash(key) & mask
        did, code, number = key
        if code == _TEXT:
            while True:
                fid = slots[i]
                if fid == _EMPTY or fid >= 0 and self._key_of(fid) == key:
                    return i
                i = (i + 1) & mask
        numbers, shapes, dirs = self._number, self._shape, self._file_dir
        wanted: int = number  # a numbered name's key holds its number (an int: compared as one when compiled)
        while True:
            fid = slots[i]
            if fid == _EMPTY or fid >= 0 and numbers[fid] == wanted and shapes[fid] == code and dirs[fid] == did:
                return i
            i = (i + 1) & mask

    def _index(self, fid: int, key: tuple[int, int, Any], slot: int = -1) -> None:
        """`slot`: the empty slot a probe for `key` just ended on, used unless the table grows first."""
        if (self._used_slots + 1) * 3 > len(self._slots) * 2:
            self._rehash()
            slot = -1
        self._slots[slot if slot >= 0 else self._slot(key)] = fid
        self._used_slots += 1

    def _rehash(self) -> None:
        """Grow (or clean of removed entries) to a third full: 6-12 bytes per file. Live keys are distinct,
        so each FileID goes to the first empty slot from its key's home, with no key compared (the same
        table `_slot` would build, in a fifth of the time: growth re-inserts every file ~1.5 times)."""
        size = 8
        while size < 3 * (self._live + 1):
            size *= 2
        slots = self._slots = array("i", [_EMPTY]) * size
        mask = size - 1
        odd = set(self._odd.values())
        text = self._text
        used = 0
        for fid, (did, code, number, rset) in enumerate(zip(self._file_dir, self._shape, self._number, self._rset)):
            if rset == _REMOVED or fid in odd:
                continue
            i = hash((did, code, text[fid] if code == _TEXT else number)) & mask
            while slots[i] != _EMPTY:
                i = (i + 1) & mask
            slots[i] = fid
            used += 1
        self._used_slots = used

    # --- lookups ------------------------------------------------------------------------------------

    def _fid(self, lfn: str) -> int:
        fid = self.file_id(lfn)
        if fid is None:
            raise FileNotFoundError(f"{NO_SUCH_FILE}: {lfn}")
        return fid

    def _did(self, path: str) -> int:
        did = self._dir_ids.get(_norm_dir(path))
        if did is None:
            raise FileNotFoundError(f"{NO_SUCH_FILE}: {path}")
        return did

    def _chain(self, did: int) -> Iterator[int]:
        """`did` and its ancestors, deepest first."""
        dirs = self._dirs
        while did != -1:
            yield did
            did = dirs[did].parent

    def _ensure_dir(self, path: str) -> int:
        did = self._dir_ids.get(path)
        if did is not None:
            return did
        if self.file_id(path) is not None:
            raise ValueError(f"{path} is a file, not a directory")
        parent = self._ensure_dir(path.rpartition("/")[0] or "/")
        did = len(self._dirs)
        self._dirs.append(_Dir(did, path, parent))
        self._dirs[parent].children.append(did)
        self._dir_ids[path] = did
        return did

    # --- namespace and replicas -------------------------------------------------------------------

    @metered("createDirectory", one_row)
    def create_directory(self, path: str) -> None:
        self._ensure_dir(_norm_dir(path))

    @metered("addFile", one_row)
    def add_file(
        self, lfn: str, size: Any, se: str | Iterable[str] | None = None, metadata: Mapping[str, Any] | None = None
    ) -> int:
        """Register a file (with its replicas and file metadata, atomically), then notify listeners; its FileID."""
        return self._register(lfn, size, se, metadata)

    @metered("addFile")
    def add_files(self, files: Mapping[str, Mapping[str, Any]]) -> Bulk:
        """Bulk addFile: {lfn: {"Size": int, "SE": str | [str], "Metadata": {...}}}."""

        def register(lfn: str, info: Mapping[str, Any]) -> None:
            self._register(lfn, info.get("Size", 0), info.get("SE"), info.get("Metadata"))

        return each(files.items(), register)

    def add_files_paid(self, files: Iterable[tuple[str, int, str | Iterable[str] | None, Mapping[str, Any] | None]]) -> list[int]:
        """addFile per (lfn, size, se, metadata), each counted as an addFile call but not charged: the caller
        metered and paid their DB load before they took effect (the WMS's putAndRegister, whose catalog
        writes count only once the FileCatalog call has returned). Their FileIDs, in order."""
        fids = []
        counters = self.counters
        for lfn, size, se, metadata in files:
            counters["addFile"] += 1
            fids.append(self._register(lfn, size, se, metadata))
        return fids

    def _register(
        self, lfn: str, size: Any, se: str | Iterable[str] | None, metadata: Mapping[str, Any] | None
    ) -> int:
        """The new file's FileID. Its name is coded and its key probed once (the file_id check, the
        coding and the index insertion each did it again: a third of an output upload's CPU)."""
        head, name = _split_lfn(lfn)
        canonical = head != "/" or lfn == "/" + name  # else not "<directory path>/<name>" (e.g. "//x"): no index key
        did = self._dir_ids.get(head)
        coded = self._names.encode(name, create=False)
        slot = -1
        if canonical and did is not None and coded is not None:
            slot = self._slot(self._key(did, coded, name))
            if self._slots[slot] >= 0:
                raise ValueError(f"File already registered: {lfn}")
        if lfn in self._odd or lfn in self._dir_ids:
            raise ValueError(f"File already registered: {lfn}")
        # `size` is typed Any: this check is the contract (a compiled `int` parameter would raise TypeError first)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"File size must be a non-negative int, got {size!r}")
        typed = self._typed(metadata or {}, FILE_META)
        if did is None:
            did = self._ensure_dir(head)
        if coded is None:  # a new name shape
            coded = self._names.encode(name, create=True)
            assert coded is not None
        fid = len(self._rset)
        self._file_dir = _append(self._file_dir, did, "i")
        self._shape.append(coded[0])
        self._number.append(coded[1])
        self._sizes = _append(self._sizes, size, "q")
        self._rset.append(self._replica_code(((se,) if isinstance(se, str) else tuple(dict.fromkeys(se))) if se else ()))
        if coded[0] == _TEXT:
            self._text[fid] = name
        if not canonical:  # indexed by its spelling
            self._text[fid] = name
            self._odd[lfn] = fid
        else:
            self._index(fid, self._key(did, coded, name), slot)
        self._live += 1
        self._dirs[did].files.append(fid)
        for key, value in typed.items():
            self._fields[key].set(fid, value)
        for listener in self.on_file_registered:
            listener(lfn)
        return fid

    def _replica_code(self, ses: tuple[str, ...]) -> int:
        code = self._replica_sets.codes.get(ses)
        if code is not None:
            return code
        if len(self._replica_sets) >= _REMOVED:
            raise ValueError("More than 65,534 distinct replica sets")
        return self._replica_sets.code(ses)

    @metered("removeFile")
    def remove_files(self, lfns: Iterable[str] | str) -> Bulk:
        """Remove files with their replicas and metadata; an unknown LFN counts as removed (DFC)."""
        done: dict[str, Any] = {}
        for lfn in _as_list(lfns):
            fid = self.file_id(lfn)
            if fid is not None:
                self._unregister(fid, lfn)
            done[lfn] = True
        return Bulk(done, {})

    def _unregister(self, fid: int, lfn: str) -> None:
        if self._odd.pop(lfn, None) is None:
            self._slots[self._slot(self._key_of(fid))] = _TOMB
        node = self._dirs[self._file_dir[fid]]
        node.dead += 1
        if node.dead * 2 > len(node.files):
            node.files = array("i", [f for f in node.files if f != fid and self._rset[f] != _REMOVED])
            node.dead = 0
        for field in self._file_fields:
            field.discard(fid)
        self._rset[fid] = _REMOVED
        self._live -= 1

    @metered("addReplica")
    def add_replicas(self, replicas: Mapping[str, str]) -> Bulk:
        """{lfn: se}: record a new replica; adding an existing one succeeds unchanged."""
        return self._edit_replicas(replicas, lambda ses, se: ses if se in ses else ses + (se,))

    @metered("removeReplica")
    def remove_replicas(self, replicas: Mapping[str, str]) -> Bulk:
        """{lfn: se}: drop a replica; the file stays registered even with no replica left (as in the DFC)."""
        return self._edit_replicas(replicas, lambda ses, se: tuple(s for s in ses if s != se))

    def _edit_replicas(
        self, replicas: Mapping[str, str], edit: Callable[[tuple[str, ...], str], tuple[str, ...]]
    ) -> Bulk:
        done: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for lfn, se in replicas.items():
            fid = self.file_id(lfn)
            if fid is None:
                failed[lfn] = NO_SUCH_FILE
            else:
                self._rset[fid] = self._replica_code(edit(self._replica_sets.names[self._rset[fid]], se))
                done[lfn] = True
        return Bulk(done, failed)

    @metered("getFileSize")
    def get_file_sizes(self, lfns: Iterable[str] | str) -> Bulk:
        return self._read_files(lfns, lambda fid, lfn: self._sizes[fid])

    @metered("getReplicas")
    def get_replicas(self, lfns: Iterable[str] | str) -> Bulk:
        """{lfn: {se: pfn}}; the twin's PFN is the LFN itself."""
        return self._read_files(lfns, lambda fid, lfn: dict.fromkeys(self._replica_sets.names[self._rset[fid]], lfn))

    def get_replicas_and_sizes(self, lfns: Iterable[str] | str) -> tuple[Bulk, Bulk]:
        """getReplicas then getFileSize of the same LFNs, each charged as its own call, each LFN looked up
        once (a job's input download asks both, CTAODownloadInputData)."""
        replicas: dict[str, Any] = {}
        sizes: dict[str, Any] = {}
        failed: dict[str, str] = {}
        names, rset, size_of = self._replica_sets.names, self._rset, self._sizes
        for lfn in _as_list(lfns):
            fid = self.file_id(lfn)
            if fid is None:
                failed[lfn] = NO_SUCH_FILE
            else:
                replicas[lfn] = dict.fromkeys(names[rset[fid]], lfn)
                sizes[lfn] = size_of[fid]
        rows = len(replicas) + len(failed)
        self._charge("getReplicas", rows)
        self._charge("getFileSize", rows)
        return Bulk(replicas, failed), Bulk(sizes, dict(failed))

    def _read_files(self, lfns: Iterable[str] | str, read: Callable[[int, str], Any]) -> Bulk:
        done: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for lfn in _as_list(lfns):
            fid = self.file_id(lfn)
            if fid is None:
                failed[lfn] = NO_SUCH_FILE
            else:
                done[lfn] = read(fid, lfn)
        return Bulk(done, failed)

    # --- metadata fields and values ---------------------------------------------------------------

    @metered("addMetadataField", one_row)
    def add_metadata_field(self, name: str, ftype: type | str, meta_type: str = DIRECTORY_META) -> None:
        """Declare a typed field for directories ("-d", DIRAC's default) or files ("-f")."""
        if meta_type not in _LEVEL_NAMES:
            raise ValueError(f"meta_type must be {DIRECTORY_META!r} or {FILE_META!r}, got {meta_type!r}")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Invalid metadata field name {name!r}")
        ptype = parse_field_type(ftype)
        existing = self._fields.get(name)
        if existing is not None:
            if existing.level == meta_type and existing.ptype is ptype:
                return
            raise ValueError(
                f"Metadata field {name!r} already defined as {_LEVEL_NAMES[existing.level]} field "
                f"of type {existing.ptype.__name__}"
            )
        if meta_type == FILE_META:
            self._file_fields.append(_FileField(name, ptype))
            self._fields[name] = self._file_fields[-1]
        else:
            self._fields[name] = _Field(name, ptype, meta_type)

    @metered("getMetadataFields", one_row)
    def get_metadata_fields(self) -> dict[str, dict[str, str]]:
        """{"DirectoryMetaFields": {name: type}, "FileMetaFields": {...}} with DIRAC type names."""
        out: dict[str, dict[str, str]] = {"DirectoryMetaFields": {}, "FileMetaFields": {}}
        for field in self._fields.values():
            group = "FileMetaFields" if field.level == FILE_META else "DirectoryMetaFields"
            out[group][field.name] = _DIRAC_TYPE_NAMES[field.ptype]
        return out

    def _typed(self, metadata: Mapping[str, Any], level: str) -> dict[str, Any]:
        """Validate names, levels and types of a whole metadata dict before anything is written."""
        typed: dict[str, Any] = {}
        for key, value in metadata.items():
            field = self._fields.get(key)
            if field is None:
                raise ValueError(f"Metadata field {key!r} is not defined")
            if field.level != level:
                raise ValueError(
                    f"Metadata field {key!r} is a {_LEVEL_NAMES[field.level]} field; "
                    f"it cannot be set on a {_LEVEL_NAMES[level]}"
                )
            typed[key] = field.coerce(value)
        return typed

    @metered("setMetadata", one_row)
    def set_metadata(self, path: str, metadata: Mapping[str, Any]) -> None:
        """Set metadata on a file (file fields) or a directory (directory fields, inherited below)."""
        self._set_metadata(path, metadata)

    @metered("setMetadataBulk")
    def set_metadata_bulk(self, path_metadata: Mapping[str, Mapping[str, Any]]) -> Bulk:
        return each(path_metadata.items(), self._set_metadata)

    def _set_metadata(self, path: str, metadata: Mapping[str, Any]) -> None:
        fid = self.file_id(path)
        if fid is not None:
            for key, value in self._typed(metadata, FILE_META).items():
                self._fields[key].set(fid, value)
            return
        did = self._did(path)
        typed = self._typed(metadata, DIRECTORY_META)
        for key in typed:
            self._check_no_conflict(did, key)
        for key, value in typed.items():
            self._set_dir_value(did, key, value)

    def _check_no_conflict(self, did: int, key: str) -> None:
        """A directory field may be held once per root-to-leaf chain, so inheritance is unambiguous."""
        node = self._dirs[did]
        holder = next((d for d in self._chain(node.parent) if key in self._dirs[d].meta), None)
        if holder is not None or node.below.get(key):
            where = self._dirs[holder].path if holder is not None else "a subdirectory"
            raise ValueError(f"Metadata conflict detected for {key} for directory {node.path} (also set on {where})")

    def _set_dir_value(self, did: int, key: str, value: Any) -> None:
        node = self._dirs[did]
        if key not in node.meta:
            for d in self._chain(node.parent):
                below = self._dirs[d].below
                below[key] = below.get(key, 0) + 1
        node.meta[key] = value
        self._fields[key].set(did, value)

    @metered("removeMetadata", one_row)
    def remove_metadata(self, path: str, keys: Iterable[str]) -> None:
        fid = self.file_id(path)
        if fid is not None:
            for key in keys:
                if key in self._fields:
                    self._fields[key].discard(fid)
            return
        node = self._dirs[self._did(path)]
        for key in keys:
            if node.meta.pop(key, _MISSING) is _MISSING:
                continue
            self._fields[key].discard(node.id)
            for d in self._chain(node.parent):
                below = self._dirs[d].below
                below[key] -= 1
                if not below[key]:
                    del below[key]

    def _dir_metadata(self, did: int) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for d in self._chain(did):
            meta.update(self._dirs[d].meta)
        return meta

    def _file_metadata(self, fid: int) -> dict[str, Any]:
        meta = self._dir_metadata(self._file_dir[fid])
        for field in self._file_fields:
            value = field.get(fid)
            if value is not _MISSING:
                meta[field.name] = value
        return meta

    @metered("getFileUserMetadata")
    def get_file_user_metadata(self, lfn: str) -> dict[str, Any]:
        """Effective metadata: inherited directory values plus the file's own."""
        return self._file_metadata(self._fid(lfn))

    @metered("getDirectoryUserMetadata")
    def get_directory_user_metadata(self, path: str) -> dict[str, Any]:
        return self._dir_metadata(self._did(path))

    # --- meta-queries -----------------------------------------------------------------------------

    @metered("findFilesByMetadata")
    def find_files_by_metadata(self, query: Mapping[str, Any], path: str = "/") -> list[str]:
        """LFNs below `path` whose effective metadata satisfies the DIRAC MetaQuery `query`."""
        return self._find(query, path)

    @metered("fileMatches", one_row)
    def file_matches(self, lfn: str, query: Mapping[str, Any]) -> bool:
        """Does one file satisfy `query` (MetaQuery.applyQuery on its effective metadata)?"""
        meta = self._file_metadata(self._fid(lfn))
        return all(
            _satisfies(meta.get(key, _MISSING), _parse_condition(self._field(key), cond))
            for key, cond in query.items()
        )

    # Unmetered helpers for the simulation's own bookkeeping (the InputDataAgent's incremental view):
    # one metadata read per registered file, checked against pre-parsed queries.
    def effective_metadata(self, lfn: str) -> dict[str, Any]:
        return self._file_metadata(self._fid(lfn))

    def compile_query(self, query: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
        """A predicate on effective metadata equivalent to `file_matches` for `query`, parsed once."""
        parsed = [(key, _parse_condition(self._field(key), cond)) for key, cond in query.items()]
        return lambda meta: all(_satisfies(meta.get(key, _MISSING), ops) for key, ops in parsed)

    def _field(self, key: str) -> _MetaField:
        field = self._fields.get(key)
        if field is None:
            raise ValueError(f"Metadata field {key!r} is not defined")
        return field

    def _find(self, query: Mapping[str, Any], path: str) -> list[str]:
        lfn = self.lfn
        return [lfn(fid) for fid in self._find_ids(query, path).tolist()]

    def _find_ids(self, query: Mapping[str, Any], path: str) -> np.ndarray:
        """FileIDs (ascending: the DFC returns them by FileID, FileMetadata.findFilesByMetadata) below `path`
        satisfying `query`: directory terms select subtrees, file terms filter their files column-wise."""
        base = self._did(path)
        dir_terms: list[tuple[_Field, list[Any]]] = []
        file_terms: list[tuple[_FileField, list[tuple[str, Any]]]] = []
        for key, cond in query.items():
            field = self._field(key)
            if isinstance(field, _FileField):
                file_terms.append((field, _parse_condition(field, cond)))
            elif isinstance(field, _Field):
                dir_terms.append((field, field.matching_values(_parse_condition(field, cond))))
        tops = self._matching_tops(dir_terms, base)
        fids = self._subtree_files(tops) if tops else np.zeros(0, dtype=np.int64)
        for file_field, ops in file_terms:
            if not len(fids):
                break
            fids = fids[file_field.mask(fids, ops)]
        return fids

    def _matching_tops(self, dir_terms: list[tuple[_Field, list[Any]]], base: int) -> list[int]:
        """Disjoint directories whose whole subtrees satisfy every directory term, clipped to `base`.

        A directory satisfies all terms iff, for each term, some directory on its chain holds a matching
        value. The deepest of those holders is itself a holder satisfying all terms, so only holders of
        matching values need checking (O(holders x depth)), never the directory tree. Two such points are
        never nested: the lower one would see a second holder of its own key on its chain (a conflict).
        """
        if not dir_terms:
            return [base]
        holder_sets = [field.holders(values) for field, values in dir_terms]
        if not all(holder_sets):
            return []
        points = {
            h for holders in holder_sets for h in holders
            if all(self._chain_hits(h, other) for other in holder_sets)
        }
        return self._clip(sorted(points), base)

    def _chain_hits(self, did: int, dirs: set[int]) -> bool:
        return any(d in dirs for d in self._chain(did))

    def _clip(self, tops: list[int], base: int) -> list[int]:
        if base == _ROOT:
            return tops
        clipped = []
        for top in tops:
            if self._chain_hits(top, {base}):
                clipped.append(top)
            elif self._chain_hits(base, {top}):
                return [base]
        return clipped

    def _subtree_files(self, tops: list[int]) -> np.ndarray:
        """Live FileIDs in the subtrees of `tops`, ascending."""
        live = np.frombuffer(self._rset, dtype=np.uint16) != _REMOVED if len(self._rset) else np.zeros(0, bool)
        if tops == [_ROOT]:
            return np.flatnonzero(live)
        dirs = self._dirs
        stack = list(tops)
        parts = []
        while stack:
            node = dirs[stack.pop()]
            if len(node.files):
                parts.append(np.frombuffer(node.files, dtype=np.int32).astype(np.int64))
            stack.extend(node.children)
        if not parts:
            return np.zeros(0, dtype=np.int64)
        fids = np.sort(np.concatenate(parts))
        return fids[live[fids]]

    # --- datasets ---------------------------------------------------------------------------------

    @metered("addDataset", one_row)
    def add_dataset(self, name: str, query: Mapping[str, Any], path: str = "/") -> None:
        """A named meta-query; its file count and size are computed whenever they are asked for."""
        if name in self._datasets:
            raise ValueError(f"Dataset {name} already exists")
        self._find(query, path)  # validates fields, operators and operand types now
        self._datasets[name] = (dict(query), _norm_dir(path))

    @metered("removeDataset", one_row)
    def remove_dataset(self, name: str) -> None:
        self._dataset(name)
        del self._datasets[name]

    def _dataset(self, name: str) -> tuple[dict[str, Any], str]:
        dataset = self._datasets.get(name)
        if dataset is None:
            raise FileNotFoundError(f"Unknown MetaDataset {name}")
        return dataset

    @metered("getDatasets")
    def get_datasets(self) -> list[str]:
        return list(self._datasets)

    @metered("getDatasetParameters", one_row)
    def get_dataset_parameters(self, name: str) -> dict[str, Any]:
        """{"DatasetName", "MetaQuery", "Path", "NumberOfFiles", "TotalSize"} evaluated now."""
        query, path = self._dataset(name)
        fids = self._find_ids(query, path)
        sizes = self._sizes
        total = sum(sizes[fid] for fid in fids.tolist())
        return {"DatasetName": name, "MetaQuery": dict(query), "Path": path,
                "NumberOfFiles": len(fids), "TotalSize": total}

    @metered("getDatasetFiles")
    def get_dataset_files(self, name: str) -> list[str]:
        query, path = self._dataset(name)
        return self._find(query, path)


class LfnList:
    """A list of registered LFNs held as catalog FileIDs (8 bytes each instead of a string), e.g. the
    outputs a transformation's jobs registered, which the cleaning agent removes; an LFN removed from the
    catalog since still reads back (FileIDs keep their name), one never registered is kept as text."""

    __slots__ = ("catalog", "fids", "text")

    def __init__(self, catalog: FileCatalog) -> None:
        self.catalog = catalog
        self.fids = array("i")
        self.text: dict[int, str] = {}  # position -> LFN not in the catalog when listed

    def extend(self, lfns: Iterable[str]) -> None:
        for lfn in lfns:
            fid = self.catalog.file_id(lfn)
            if fid is None:
                self.text[len(self.fids)] = lfn
                fid = -1
            self.fids.append(fid)

    def extend_ids(self, fids: Iterable[int]) -> None:
        """Files by the FileIDs their registration returned (no look-up by name)."""
        self.fids.extend(fids)

    def __len__(self) -> int:
        return len(self.fids)

    def __iter__(self) -> Iterator[str]:
        lfn, text = self.catalog.lfn, self.text
        return (text[i] if fid < 0 else lfn(fid) for i, fid in enumerate(self.fids))

    def clear(self) -> None:
        self.fids = array("i")
        self.text.clear()


# --- DIRAC-shaped facade ----------------------------------------------------------------------------


def _wrap(call: Callable[..., Any], *args: Any) -> Result:
    """Run a store call and shape it the DIRAC way: Bulk -> Successful/Failed, errors -> S_ERROR."""
    try:
        value = call(*args)
    except (ValueError, FileNotFoundError) as exc:
        return S_ERROR(str(exc))
    if isinstance(value, Bulk):
        return S_OK({"Successful": value.successful, "Failed": value.failed})
    return S_OK(value)


def _per_name(call: Callable[[str], Any], names: Iterable[str] | str) -> Result:
    return _wrap(each, ((name, name) for name in _as_list(names)), lambda name, _: call(name))


class FileCatalogClient:
    """DIRAC's FileCatalogClient over a `FileCatalog`: satisfies twin.dirac.clients.FileCatalogAPI."""

    def __init__(self, catalog: FileCatalog) -> None:
        self.catalog = catalog

    # FileCatalogAPI
    def getFileSize(self, lfns: Iterable[str] | str) -> Result:
        return _wrap(self.catalog.get_file_sizes, lfns)

    def getFileUserMetadata(self, lfn: str) -> Result:
        return _wrap(self.catalog.get_file_user_metadata, lfn)

    def findFilesByMetadata(self, query: dict[str, Any], path: str = "/") -> Result:
        return _wrap(self.catalog.find_files_by_metadata, query, path)

    def getReplicas(self, lfns: Iterable[str] | str, allStatus: bool = False) -> Result:
        return _wrap(self.catalog.get_replicas, lfns)

    # Registration, as jobs and the RMS do it
    def addFile(self, lfns: dict[str, dict[str, Any]]) -> Result:
        """{lfn: {"Size": n, "SE": se, ...}}; a twin extension "Metadata" sets file metadata atomically."""
        return _wrap(self.catalog.add_files, lfns)

    def addReplica(self, lfns: dict[str, dict[str, Any]]) -> Result:
        return _wrap(self.catalog.add_replicas, {lfn: info["SE"] for lfn, info in lfns.items()})

    def removeReplica(self, lfns: dict[str, dict[str, Any]]) -> Result:
        return _wrap(self.catalog.remove_replicas, {lfn: info["SE"] for lfn, info in lfns.items()})

    def removeFile(self, lfns: Iterable[str] | str) -> Result:
        return _wrap(self.catalog.remove_files, lfns)

    def createDirectory(self, path: str) -> Result:
        return _wrap(self.catalog.create_directory, path)

    def addMetadataField(self, fieldName: str, fieldType: str, metaType: str = DIRECTORY_META) -> Result:
        return _wrap(self.catalog.add_metadata_field, fieldName, fieldType, metaType)

    def getMetadataFields(self) -> Result:
        return _wrap(self.catalog.get_metadata_fields)

    def setMetadata(self, path: str, metadatadict: dict[str, Any]) -> Result:
        return _wrap(self.catalog.set_metadata, path, metadatadict)

    def setMetadataBulk(self, pathMetadataDict: dict[str, dict[str, Any]]) -> Result:
        return _wrap(self.catalog.set_metadata_bulk, pathMetadataDict)

    def getDirectoryUserMetadata(self, path: str) -> Result:
        return _wrap(self.catalog.get_directory_user_metadata, path)

    # Datasets
    def addDataset(self, datasets: dict[str, dict[str, Any]]) -> Result:
        return _wrap(each, datasets.items(), self.catalog.add_dataset)

    def removeDataset(self, datasets: list[str] | str) -> Result:
        return _per_name(self.catalog.remove_dataset, datasets)

    def getDatasetParameters(self, datasets: list[str] | str) -> Result:
        return _per_name(self.catalog.get_dataset_parameters, datasets)

    def getDatasetFiles(self, datasets: list[str] | str) -> Result:
        return _per_name(self.catalog.get_dataset_files, datasets)
