"""The run's event log: one row per state change, written in row groups as the run goes.

A year of operations logs ~10^8 rows, so rows never accumulate: they are buffered in plain
Python lists (cheap appends, no per-row objects) and every `chunk_rows` rows the buffer
becomes one Arrow record batch (strings dictionary-encoded, times and values float64) that
goes to its sink:

- a Parquet file (`path`): one row group per batch, the run's memory holds one buffer;
- memory (`path=None`, the default, for tests and `simulate()` of small runs): the compact
  Arrow batches are kept and `to_frame()` returns the whole log;
- nowhere (`keep=False`): sweeps that only need the digest and the row count.

The digest is computed batch by batch, per column, so it does not depend on the chunk size
or the sink. Readers get the same columns whatever the sink: `chunks()` / `frame()` here, or
`read_events()` / `iter_events()` on a written file (filtered by kind, so a report or a
recount reads only the rows it needs).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COLUMNS = ("time", "kind", "entity", "state", "detail", "value")
_TEXT = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema([("time", pa.float64()), ("kind", _TEXT), ("entity", pa.string()),
                    ("state", _TEXT), ("detail", _TEXT), ("value", pa.float64())])
#: Rows per buffered batch / Parquet row group (~5 MB of buffer, ~1 MB written).
CHUNK_ROWS = 1 << 16
_SEP = "\x1f"  # ASCII unit separator between the strings of a column in the digest
#: Parquet encoding: the dictionary columns stay dictionaries; `entity` (a new name on most rows) is written
#: plain, without the dictionary page Parquet would try first, and without min/max statistics nobody reads.
WRITE_OPTIONS = {"use_dictionary": ["kind", "state", "detail"], "write_statistics": ["time", "kind", "state", "detail", "value"]}

#: What to read: None (every row), kinds, or {kind: states or None (all states of that kind)}.
Selection = Iterable[str] | Mapping[str, Iterable[str] | None] | None


class EventLog:
    """Append-only log of (time, kind, entity, state, detail, value) rows.

    kind    what happened, dotted: "job.status", "fault.start", "task.status"
    entity  which object: "job:42", "site:LCG.CNAF.it", "trans:3/task:17"
    state   the new state or outcome ("Running", "banned")
    detail  free text (minor status, reason)
    value   an optional number (bytes, seconds, counts)
    """

    __slots__ = ("_time", "_kind", "_entity", "_state", "_detail", "_value", "enabled", "_kinds_off",
                 "_chunk_rows", "_rows", "_hashers", "_batches", "_keep", "path", "_writer", "_closed")

    def __init__(self, enabled: bool = True, disabled_kinds: Iterable[str] = (), path: Path | str | None = None,
                 keep: bool = True, chunk_rows: int = CHUNK_ROWS) -> None:
        self._time: list[float] = []
        self._kind: list[str] = []
        self._entity: list[str] = []
        self._state: list[str] = []
        self._detail: list[str] = []
        self._value: list[float] = []
        self.enabled = enabled
        self._kinds_off = frozenset(disabled_kinds)
        self._chunk_rows = max(1, int(chunk_rows))
        self._rows = 0
        self._hashers = [hashlib.sha256() for _ in COLUMNS]
        self._batches: list[pa.RecordBatch] = []
        self._keep = keep
        self.path = Path(path) if path is not None else None
        self._writer = pq.ParquetWriter(self.path, SCHEMA, compression="zstd", **WRITE_OPTIONS) if self.path is not None else None
        self._closed = False

    def log(self, time: float, kind: str, entity: str, state: str = "", detail: str = "", value: float = math.nan) -> None:
        if not self.enabled or kind in self._kinds_off:
            return
        self._time.append(time)
        self._kind.append(kind)
        self._entity.append(entity)
        self._state.append(state)
        self._detail.append(detail)
        self._value.append(value)
        if len(self._time) >= self._chunk_rows:
            self._flush()

    def __len__(self) -> int:
        return self._rows + len(self._time)

    # ------------------------------------------------------------------ sinks
    def _flush(self) -> None:
        """Buffer -> one record batch: hashed, then written (file) or kept (memory) or dropped."""
        if not self._time:
            return
        if self._closed:
            raise RuntimeError(f"event log {self.path} is closed: no row can be added after the run")
        times = np.array(self._time, dtype=np.float64)
        values = np.array(self._value, dtype=np.float64)
        hashers = self._hashers
        hashers[0].update(times.tobytes())
        for hasher, texts in zip(hashers[1:5], (self._kind, self._entity, self._state, self._detail)):
            hasher.update((_SEP.join(texts) + _SEP).encode("utf-8"))
        hashers[5].update(values.tobytes())
        batch = pa.RecordBatch.from_arrays(
            [pa.array(times), _dictionary(self._kind), pa.array(self._entity, pa.string()),
             _dictionary(self._state), _dictionary(self._detail), pa.array(values)], schema=SCHEMA)
        self._rows += len(times)
        for column in (self._time, self._kind, self._entity, self._state, self._detail, self._value):
            column.clear()
        if self._writer is not None:
            self._writer.write_batch(batch)
        elif self._keep:
            self._batches.append(batch)

    def close(self) -> None:
        """End of run: write the last rows and the Parquet footer (file sink). Idempotent."""
        if self._writer is not None and not self._closed:
            self._flush()
            self._writer.close()
            self._closed = True

    def save(self, path: Path | str) -> Path:
        """events.parquet at `path`: the streamed file itself (closed), or the kept batches written out."""
        path = Path(path)
        if self.path is not None:
            self.close()
            if path.resolve() != self.path.resolve():
                import shutil

                shutil.copyfile(self.path, path)
            return path
        if not self._keep and self._rows:
            raise RuntimeError("this event log kept no rows (keep=False): nothing to save")
        self._flush()
        with pq.ParquetWriter(path, SCHEMA, compression="zstd", **WRITE_OPTIONS) as writer:
            for batch in self._batches:
                writer.write_batch(batch)
        return path

    # ------------------------------------------------------------------ digest
    def digest(self) -> str:
        """SHA-256 of the whole log: equal digests mean bit-identical logs.

        Each column is hashed on its own as the run goes (times and values as little-endian
        IEEE doubles, strings UTF-8, each followed by U+001F); the digest is the SHA-256 of
        the six column digests. Independent of the chunk size and of the sink.
        """
        self._flush_if_open()
        top = hashlib.sha256()
        for hasher in self._hashers:
            top.update(hasher.copy().digest())
        return top.hexdigest()

    def _flush_if_open(self) -> None:
        if not self._closed:
            self._flush()

    # ------------------------------------------------------------------ reading
    def readable(self, kinds: Iterable[str]) -> bool:
        """Can every row of `kinds` be read back (streamed to a file or kept in memory, none disabled)?"""
        return self.enabled and (self.path is not None or self._keep) and not (self._kinds_off & set(kinds))

    def chunks(self, select: Selection = None, columns: Sequence[str] = COLUMNS) -> Iterator[pd.DataFrame]:
        """The log as DataFrame chunks (one per row group), optionally only some kinds/states.

        With a file sink the file is closed first (reading is for after the run)."""
        if self.path is not None:
            self.close()
            yield from iter_events(self.path, select, columns)
            return
        if not self._keep and self._rows:
            raise RuntimeError("this event log kept no rows (keep=False): only its digest and length are known")
        self._flush()
        for batch in self._batches:
            frame = _select(pa.Table.from_batches([batch]), select, columns)
            if frame is not None:
                yield frame

    def frame(self, select: Selection = None, columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
        """The selected rows as one DataFrame (for small runs, or selections of a few kinds)."""
        if self.path is not None:
            self.close()
            return read_events(self.path, select, columns)
        if not self._keep and self._rows:
            raise RuntimeError("this event log kept no rows (keep=False): only its digest and length are known")
        self._flush()
        if not self._batches:
            return _empty(columns)
        table = pa.Table.from_batches(self._batches, SCHEMA).unify_dictionaries()
        frame = _select(table, select, columns)
        return frame if frame is not None else _empty(columns)

    def to_frame(self) -> pd.DataFrame:
        """The whole log as one DataFrame (kind/state/detail categorical, entity string)."""
        return self.frame()


def _dictionary(values: list[str]) -> pa.DictionaryArray:
    """The strings dictionary-encoded in one pass (the same array as `dictionary_encode`: first-seen order)."""
    return pa.array(values, _TEXT)


def _kind_filter(table: pa.Table, select: Selection) -> pa.Array | None:
    """Boolean mask of the selected rows (None: every row)."""
    if select is None:
        return None
    kinds = pc.cast(table["kind"], pa.string())
    if not isinstance(select, Mapping):
        return pc.is_in(kinds, pa.array(sorted(set(select)), pa.string()))
    mask = None
    for kind, states in select.items():
        part = pc.equal(kinds, kind)
        if states is not None:
            part = pc.and_(part, pc.is_in(pc.cast(table["state"], pa.string()), pa.array(sorted(set(states)), pa.string())))
        mask = part if mask is None else pc.or_(mask, part)
    return mask if mask is not None else pa.array([False] * table.num_rows)


def _select(table: pa.Table, select: Selection, columns: Sequence[str]) -> pd.DataFrame | None:
    mask = _kind_filter(table, select)
    if mask is not None:
        table = table.filter(mask)
    if not table.num_rows:
        return None
    return _to_pandas(table.select(list(columns)))


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    if "entity" in frame:
        frame["entity"] = frame["entity"].astype("string")
    return frame


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return _to_pandas(SCHEMA.empty_table().select(list(columns)))


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    if not frames:
        return _empty(columns)
    if len(frames) == 1:
        return frames[0]
    frame = pd.concat(frames, ignore_index=True)
    for name in ("kind", "state", "detail"):  # categories differ per chunk: concat falls back to object
        if name in frame and not isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype("category")
    return frame


# ---------------------------------------------------------------------- written files
def iter_events(path: Path | str, select: Selection = None, columns: Sequence[str] = COLUMNS) -> Iterator[pd.DataFrame]:
    """A written events.parquet as DataFrame chunks (one per row group), optionally filtered by kind/state.

    Memory is one row group at a time: the form an invariant recount or an aggregate should use."""
    needed = list(dict.fromkeys([*columns, *(["kind"] if select is not None else []),
                                 *(["state"] if isinstance(select, Mapping) else [])]))
    source = pq.ParquetFile(path)
    for group in range(source.num_row_groups):
        frame = _select(source.read_row_group(group, columns=needed), select, columns)
        if frame is not None:
            yield frame


def read_events(path: Path | str, select: Selection = None, columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """The selected rows of a written events.parquet as one DataFrame."""
    return _concat(list(iter_events(path, select, columns)), columns)
