"""In-memory DIRAC File Catalog (DFC): namespace, replicas, typed indexed user metadata, datasets.

The twin's InputDataAgent runs the Input meta-query of every Active transformation every 120 s against
~10^6 files, so a query is answered from per-field indexes in time proportional to its answer, never by
scanning the namespace. Layout:

* files are integer ids with column arrays (size, directory, replicas); file metadata lives in the field
  indexes only, so a file costs no per-record dict;
* every metadata field keeps ``holder -> value`` plus ``value -> holders`` buckets and its distinct values
  in sorted order (bisect) for range operators;
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
import operator
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from twin.dirac.returnvalues import S_ERROR, S_OK

Meter = Callable[[str, str, int], None]
Result = dict[str, Any]

NO_SUCH_FILE = "No such file or directory"
DIRECTORY_META = "-d"
FILE_META = "-f"
OPERATORS = ("=", "in", "!=", "nin", "<", "<=", ">", ">=")
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_LEVEL_NAMES = {DIRECTORY_META: "directory", FILE_META: "file"}
_DIRAC_TYPE_NAMES = {int: "INT", float: "FLOAT", str: "VARCHAR(128)"}
_ROOT = 0
_EXACT_COUNT_LIMIT = 4096


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


def metered(op: str, rows: Callable[[Any], int] = result_rows) -> Callable:
    """Decorate a public DB method so each call is counted and charged, failed calls with 0 rows."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def call(self: MeteredStore, *args: Any, **kwargs: Any) -> Any:
            try:
                result = method(self, *args, **kwargs)
            except Exception:
                self._charge(op, 0)
                raise
            self._charge(op, rows(result))
            return result

        return call

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
    if ftype in (int, float, str):
        return ftype  # type: ignore[return-value]
    if isinstance(ftype, str):
        low = ftype.strip().lower()
        if low.startswith("int"):
            return int
        if low in ("float", "double"):
            return float
        if low in ("str", "string") or low.startswith("varchar"):
            return str
    raise ValueError(f"Unsupported metadata type {ftype!r}: use int, float or str")


class _Field:
    """One metadata field: type, holder -> value, value -> holders, and its distinct values in order.

    A bucket holding a single holder is stored as the bare int (most file values, e.g. run numbers, are
    unique), so 10^6 files do not cost 10^6 sets. Sorted values are maintained lazily: new values are
    buffered and merged in on the next range query, so loading files in any order stays cheap; a value
    whose bucket empties stays listed (``_stale`` counts them) until a linear compaction, and while any
    stale value is listed, range scans check liveness value by value instead of slicing directly.
    """

    __slots__ = ("name", "ptype", "level", "values", "buckets", "_order", "_pending", "_stale")

    def __init__(self, name: str, ptype: type, level: str) -> None:
        self.name = name
        self.ptype = ptype
        self.level = level
        self.values: dict[int, Any] = {}
        self.buckets: dict[Any, int | set[int]] = {}
        self._order: list[Any] = []
        self._pending: list[Any] = []
        self._stale = 0

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
        if holder in self.values:
            if self.values[holder] == value:
                return
            self.discard(holder)
        self.values[holder] = value
        bucket = self.buckets.get(value)
        if bucket is None:
            self.buckets[value] = holder
            self._pending.append(value)
        elif type(bucket) is int:
            self.buckets[value] = {bucket, holder}
        else:
            bucket.add(holder)

    def discard(self, holder: int) -> None:
        value = self.values.pop(holder, _MISSING)
        if value is _MISSING:
            return
        bucket = self.buckets[value]
        if type(bucket) is int:
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

    def holders(self, values: list[Any]) -> set[int]:
        """Holders of any of `values` (a fresh set: callers may keep it)."""
        buckets = [self.buckets[v] for v in values]
        return {b for b in buckets if type(b) is int}.union(*(b for b in buckets if type(b) is not int))

    def count(self, values: list[Any]) -> int:
        return sum(1 if type(b) is int else len(b) for b in map(self.buckets.__getitem__, values))

    def estimate(self, values: list[Any]) -> int:
        """Holders of `values`, exact for short lists; a long list (unique-valued fields such as run numbers)
        is costed by its length, a lower bound, since it only steers which side of a query drives."""
        return self.count(values) if len(values) <= _EXACT_COUNT_LIMIT else len(values)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _parse_condition(field: _Field, condition: Any) -> list[tuple[str, Any]]:
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


# --- namespace ----------------------------------------------------------------------------------------


class _Dir:
    """A directory: tree links, the files directly in it, subtree file count, own metadata."""

    __slots__ = ("id", "path", "parent", "children", "files", "nfiles", "meta", "below")

    def __init__(self, did: int, path: str, parent: int) -> None:
        self.id = did
        self.path = path
        self.parent = parent
        self.children: list[int] = []
        self.files: set[int] = set()
        self.nfiles = 0
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
        self._fields: dict[str, _Field] = {}
        self._file_fields: list[_Field] = []
        self._dirs: list[_Dir] = [_Dir(_ROOT, "/", -1)]
        self._dir_ids: dict[str, int] = {"/": _ROOT}
        self._file_ids: dict[str, int] = {}
        self._lfns: list[str | None] = []
        self._sizes = array("q")
        self._file_dir = array("l")
        self._replicas: list[tuple[str, ...]] = []
        self._datasets: dict[str, tuple[dict[str, Any], str]] = {}

    # Introspection for the simulation's own bookkeeping: not DFC calls, so not metered.
    def __len__(self) -> int:
        return len(self._file_ids)

    def __contains__(self, lfn: object) -> bool:
        return lfn in self._file_ids

    # --- lookups ------------------------------------------------------------------------------------

    def _fid(self, lfn: str) -> int:
        fid = self._file_ids.get(lfn)
        if fid is None:
            raise FileNotFoundError(f"{NO_SUCH_FILE}: {lfn}")
        return fid

    def _did(self, path: str) -> int:
        did = self._dir_ids.get(_norm_dir(path))
        if did is None:
            raise FileNotFoundError(f"{NO_SUCH_FILE}: {path}")
        return did

    def _chain(self, did: int) -> Iterable[int]:
        """`did` and its ancestors, deepest first."""
        dirs = self._dirs
        while did != -1:
            yield did
            did = dirs[did].parent

    def _ensure_dir(self, path: str) -> int:
        did = self._dir_ids.get(path)
        if did is not None:
            return did
        if path in self._file_ids:
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
        self, lfn: str, size: int, se: str | Iterable[str] | None = None, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Register a file (with its replicas and file metadata, atomically), then notify listeners."""
        self._register(lfn, size, se, metadata)

    @metered("addFile")
    def add_files(self, files: Mapping[str, Mapping[str, Any]]) -> Bulk:
        """Bulk addFile: {lfn: {"Size": int, "SE": str | [str], "Metadata": {...}}}."""
        return each(files.items(), lambda lfn, info: self._register(
            lfn, info.get("Size", 0), info.get("SE"), info.get("Metadata")))

    def _register(
        self, lfn: str, size: int, se: str | Iterable[str] | None, metadata: Mapping[str, Any] | None
    ) -> None:
        head, _ = _split_lfn(lfn)
        if lfn in self._file_ids or lfn in self._dir_ids:
            raise ValueError(f"File already registered: {lfn}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"File size must be a non-negative int, got {size!r}")
        typed = self._typed(metadata or {}, FILE_META)
        did = self._ensure_dir(head)
        fid = len(self._lfns)
        self._file_ids[lfn] = fid
        self._lfns.append(lfn)
        self._sizes.append(size)
        self._file_dir.append(did)
        self._replicas.append(tuple(dict.fromkeys(_as_list(se))) if se else ())
        self._dirs[did].files.add(fid)
        for d in self._chain(did):
            self._dirs[d].nfiles += 1
        for key, value in typed.items():
            self._fields[key].set(fid, value)
        for listener in self.on_file_registered:
            listener(lfn)

    @metered("removeFile")
    def remove_files(self, lfns: Iterable[str] | str) -> Bulk:
        """Remove files with their replicas and metadata; an unknown LFN counts as removed (DFC)."""
        done: dict[str, Any] = {}
        for lfn in _as_list(lfns):
            fid = self._file_ids.pop(lfn, None)
            if fid is not None:
                self._unregister(fid)
            done[lfn] = True
        return Bulk(done, {})

    def _unregister(self, fid: int) -> None:
        did = self._file_dir[fid]
        self._dirs[did].files.discard(fid)
        for d in self._chain(did):
            self._dirs[d].nfiles -= 1
        for field in self._file_fields:
            field.discard(fid)
        self._lfns[fid] = None
        self._replicas[fid] = ()

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
            fid = self._file_ids.get(lfn)
            if fid is None:
                failed[lfn] = NO_SUCH_FILE
            else:
                self._replicas[fid] = edit(self._replicas[fid], se)
                done[lfn] = True
        return Bulk(done, failed)

    @metered("getFileSize")
    def get_file_sizes(self, lfns: Iterable[str] | str) -> Bulk:
        return self._read_files(lfns, lambda fid: self._sizes[fid])

    @metered("getReplicas")
    def get_replicas(self, lfns: Iterable[str] | str) -> Bulk:
        """{lfn: {se: pfn}}; the twin's PFN is the LFN itself."""
        return self._read_files(lfns, lambda fid: dict.fromkeys(self._replicas[fid], self._lfns[fid]))

    def _read_files(self, lfns: Iterable[str] | str, read: Callable[[int], Any]) -> Bulk:
        done: dict[str, Any] = {}
        failed: dict[str, str] = {}
        ids = self._file_ids
        for lfn in _as_list(lfns):
            fid = ids.get(lfn)
            if fid is None:
                failed[lfn] = NO_SUCH_FILE
            else:
                done[lfn] = read(fid)
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
        field = _Field(name, ptype, meta_type)
        self._fields[name] = field
        if meta_type == FILE_META:
            self._file_fields.append(field)

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
        fid = self._file_ids.get(path)
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
        fid = self._file_ids.get(path)
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
            value = field.values.get(fid, _MISSING)
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

    def _field(self, key: str) -> _Field:
        field = self._fields.get(key)
        if field is None:
            raise ValueError(f"Metadata field {key!r} is not defined")
        return field

    def _find(self, query: Mapping[str, Any], path: str) -> list[str]:
        base = self._did(path)
        dir_terms: list[tuple[_Field, list[Any]]] = []
        file_terms: list[tuple[_Field, list[Any]]] = []
        for key, cond in query.items():
            field = self._field(key)
            term = (field, field.matching_values(_parse_condition(field, cond)))
            (file_terms if field.level == FILE_META else dir_terms).append(term)
        tops = self._matching_tops(dir_terms, base)
        if not tops:
            return []
        if not file_terms:
            return [self._lfns[f] for f in self._subtree_files(tops)]  # type: ignore[misc]
        return self._filter_files(tops, file_terms)

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

    def _subtree_files(self, tops: list[int]) -> Iterable[int]:
        dirs = self._dirs
        stack = list(reversed(tops))
        while stack:
            node = dirs[stack.pop()]
            yield from node.files
            stack.extend(reversed(node.children))

    def _filter_files(self, tops: list[int], file_terms: list[tuple[_Field, list[Any]]]) -> list[str]:
        """Intersect directory scope and file terms, driving from whichever side is smaller."""
        if not all(values for _, values in file_terms):
            return []
        ranked = sorted(((field.estimate(values), field, values) for field, values in file_terms),
                        key=lambda term: term[0])
        lead_count, lead_field, lead_values = ranked[0]
        if sum(self._dirs[t].nfiles for t in tops) <= lead_count:
            ids = list(self._subtree_files(tops))
            filters = ranked
        else:
            ids = list(lead_field.holders(lead_values))
            filters = ranked[1:]
            in_scope = self._scope_test(tops)
            if in_scope is not None:
                file_dir = self._file_dir
                ids = [fid for fid in ids if in_scope(file_dir[fid])]
        for _, field, values in filters:  # one flat pass per term, most selective first
            get, allowed = field.values.get, set(values)
            ids = [fid for fid in ids if get(fid, _MISSING) in allowed]
        lfns = self._lfns
        return [lfns[fid] for fid in ids]  # type: ignore[misc]

    def _scope_test(self, tops: list[int]) -> Callable[[int], bool] | None:
        """Membership test 'directory lies in one of the subtrees', memoised per directory."""
        if tops == [_ROOT]:
            return None
        top_set = set(tops)
        memo: dict[int, bool] = {}
        dirs = self._dirs

        def in_scope(did: int) -> bool:
            walked = []
            d = did
            while d != -1 and d not in top_set and d not in memo:
                walked.append(d)
                d = dirs[d].parent
            answer = d in top_set or (d != -1 and memo[d])
            for w in walked:
                memo[w] = answer
            return answer

        return in_scope

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
        lfns = self._find(query, path)
        ids = self._file_ids
        total = sum(self._sizes[ids[lfn]] for lfn in lfns)
        return {"DatasetName": name, "MetaQuery": dict(query), "Path": path,
                "NumberOfFiles": len(lfns), "TotalSize": total}

    @metered("getDatasetFiles")
    def get_dataset_files(self, name: str) -> list[str]:
        query, path = self._dataset(name)
        return self._find(query, path)


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
    def getFileSize(self, lfns: list[str] | str) -> Result:
        return _wrap(self.catalog.get_file_sizes, lfns)

    def getFileUserMetadata(self, lfn: str) -> Result:
        return _wrap(self.catalog.get_file_user_metadata, lfn)

    def findFilesByMetadata(self, query: dict[str, Any], path: str = "/") -> Result:
        return _wrap(self.catalog.find_files_by_metadata, query, path)

    def getReplicas(self, lfns: list[str] | str, allStatus: bool = False) -> Result:
        return _wrap(self.catalog.get_replicas, lfns)

    # Registration, as jobs and the RMS do it
    def addFile(self, lfns: dict[str, dict[str, Any]]) -> Result:
        """{lfn: {"Size": n, "SE": se, ...}}; a twin extension "Metadata" sets file metadata atomically."""
        return _wrap(self.catalog.add_files, lfns)

    def addReplica(self, lfns: dict[str, dict[str, Any]]) -> Result:
        return _wrap(self.catalog.add_replicas, {lfn: info["SE"] for lfn, info in lfns.items()})

    def removeReplica(self, lfns: dict[str, dict[str, Any]]) -> Result:
        return _wrap(self.catalog.remove_replicas, {lfn: info["SE"] for lfn, info in lfns.items()})

    def removeFile(self, lfns: list[str] | str) -> Result:
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
