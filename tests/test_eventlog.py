"""The streamed event log: same rows, same digest, whatever the sink and the chunk size."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from tests.conftest import minimal
from twin.engine.eventlog import EventLog, iter_events, read_events
from twin.runner import run_scenario, simulate

Row = tuple[float, str, str, str, str, float]

rows_strategy = hs.lists(
    hs.tuples(hs.floats(0, 1e7), hs.sampled_from(["job.status", "file.status", "fault.start"]),
              hs.text(max_size=12).filter(lambda s: "\x1f" not in s), hs.sampled_from(["Done", "Failed", ""]),
              hs.text(max_size=5).filter(lambda s: "\x1f" not in s), hs.floats(allow_nan=False) | hs.just(math.nan)),
    max_size=40)


def _fill(log: EventLog, rows: list[Row]) -> EventLog:
    for row in rows:
        log.log(*row)
    return log


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy, chunk=hs.integers(1, 7))
def test_digest_does_not_depend_on_chunk_size_or_sink(tmp_path_factory, rows, chunk):
    whole = _fill(EventLog(chunk_rows=10**6), rows)
    chunked = _fill(EventLog(chunk_rows=chunk), rows)
    dropped = _fill(EventLog(chunk_rows=chunk, keep=False), rows)
    streamed = _fill(EventLog(chunk_rows=chunk, path=tmp_path_factory.mktemp("log") / "events.parquet"), rows)
    assert whole.digest() == chunked.digest() == dropped.digest() == streamed.digest()
    assert len(whole) == len(chunked) == len(dropped) == len(streamed) == len(rows)


def test_digest_sees_a_changed_value_and_a_moved_string():
    rows = [(1.0, "job.status", "job:1", "Done", "", 3.0), (2.0, "job.status", "job:12", "Done", "", 3.0)]
    base = _fill(EventLog(), rows).digest()
    assert _fill(EventLog(), [rows[0], rows[1][:5] + (4.0,)]).digest() != base
    # the same characters split differently between two entities must not collide
    assert _fill(EventLog(), [rows[0][:2] + ("job:11",) + rows[0][3:], rows[1][:2] + ("job:2",) + rows[1][3:]]).digest() != base


def test_streamed_file_has_one_row_group_per_chunk_and_reads_back_the_same_rows(tmp_path):
    rows = [(float(i), "job.status" if i % 3 else "file.status", f"job:{i}", ["Done", "Failed", "Running"][i % 3], "", float(i % 5))
            for i in range(25)]
    path = tmp_path / "events.parquet"
    streamed = _fill(EventLog(path=path, chunk_rows=10), rows)
    in_memory = _fill(EventLog(chunk_rows=10), rows)
    assert len(streamed._time) == 5  # only the unflushed tail is held
    streamed.close()
    assert pq.ParquetFile(path).num_row_groups == 3
    pd.testing.assert_frame_equal(read_events(path), in_memory.to_frame(), check_categorical=False)
    assert [len(c) for c in iter_events(path)] == [10, 10, 5]


def test_selection_reads_only_the_asked_kinds_and_states(tmp_path):
    rows = [(float(i), "job.status" if i % 2 else "fault.start", f"e:{i}", "Done" if i % 4 == 1 else "Running", "", 1.0)
            for i in range(40)]
    path = tmp_path / "events.parquet"
    _fill(EventLog(path=path, chunk_rows=7), rows).close()
    done = read_events(path, {"job.status": ["Done"]}, columns=("time", "entity"))
    assert list(done.columns) == ["time", "entity"]
    assert list(done.time) == [float(i) for i in range(40) if i % 4 == 1]
    faults = read_events(path, ["fault.start"])
    assert len(faults) == 20 and set(faults.kind) == {"fault.start"}
    memory = _fill(EventLog(chunk_rows=7), rows)
    assert sum(len(c) for c in memory.chunks({"job.status": None})) == 20


def test_a_closed_streamed_log_refuses_new_rows(tmp_path):
    log = _fill(EventLog(path=tmp_path / "e.parquet", chunk_rows=1), [(0.0, "k", "e", "", "", 0.0)])
    log.close()
    with pytest.raises(RuntimeError, match="closed"):
        log.log(1.0, "k", "e")


def test_a_run_streams_the_same_log_it_would_keep_in_memory(tmp_path):
    scenario = minimal()
    kept = simulate(scenario)
    written = run_scenario(scenario, tmp_path / "run", progress=False, report=False)
    assert kept.event_digest == written.event_digest
    assert written.log.path == tmp_path / "run" / "events.parquet"
    pd.testing.assert_frame_equal(read_events(written.files["events"]), kept.events, check_categorical=False)
    assert simulate(scenario, keep_events=False).event_digest == kept.event_digest


def test_a_log_is_readable_only_for_kinds_it_keeps(tmp_path):
    """The invariant recount asks the log itself; a disabled kind, a disabled log or a digest-only log
    (nothing kept, no file) cannot be read back, a streamed one can."""
    from twin.engine.eventlog import EventLog

    assert EventLog().readable(["job.status"])
    assert not EventLog(enabled=False).readable(["job.status"])
    assert not EventLog(disabled_kinds=["job.status"]).readable(["job.status", "task.status"])
    assert EventLog(disabled_kinds=["job.status"]).readable(["task.status"])
    assert not EventLog(keep=False).readable(["job.status"])
    assert EventLog(path=tmp_path / "events.parquet", keep=False).readable(["job.status"])


@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.sampled_from(["Running", "Done", "", "Failed", "é"]) | hs.text(max_size=4), max_size=30))
def test_text_columns_are_the_arrays_dictionary_encode_makes(values):
    """The one-pass dictionary conversion gives dictionary_encode's array: same indices, same first-seen dictionary."""
    import pyarrow as pa

    from twin.engine.eventlog import _dictionary

    assert _dictionary(values).equals(pa.array(values, pa.string()).dictionary_encode())


def test_a_written_log_keeps_its_text_columns_dictionary_encoded_and_names_plain(tmp_path):
    log = _fill(EventLog(path=tmp_path / "e.parquet", chunk_rows=3),
                [(float(t), "job.status", f"job:{t}", "Done", "", 1.0) for t in range(7)])
    log.close()
    columns = pq.ParquetFile(tmp_path / "e.parquet").metadata.row_group(0)
    encodings = {columns.column(i).path_in_schema: columns.column(i).encodings for i in range(columns.num_columns)}
    assert any("DICTIONARY" in e for e in encodings["kind"]) and not any("DICTIONARY" in e for e in encodings["entity"])
    assert read_events(tmp_path / "e.parquet")["entity"].tolist() == [f"job:{t}" for t in range(7)]
