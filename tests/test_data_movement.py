"""Moving transformations: Broadcast -> RMS requests -> copies to tape -> source replicas removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.build import build_world
from twin.scenario.loader import load_scenario
from twin.scenario.schema import Fault
from twin.summary import summarize

WITH_TAPE = Path(__file__).parent / "data" / "with_tape.yaml"


def run(faults: list[Fault] | None = None):
    scenario = load_scenario(WITH_TAPE)
    scenario.faults = faults or []
    world = build_world(scenario)
    world.run()
    return world, summarize(world)


def test_move_to_tape_replicates_then_removes_the_disk_replicas():
    world, s = run()
    move = next(t for t in s["transformations"] if t["name"] == "test/MoveToTape")
    assert move["files_total"] == 60 and move["files"] == {"Processed": 60}
    assert move["tasks_created"] == 6 and move["tasks"] == {"Done": 6}  # Broadcast, GroupSize 10
    assert s["requests"]["by_status"] == {"Done": 6}
    assert s["requests"]["files_replicated"] == 60 and s["requests"]["replicas_removed"] == 60
    mc_dir = world.runtime(1).output_dir
    replicas = world.catalog.get_replicas(world.catalog.find_files_by_metadata({"data_level": -1}, mc_dir)).successful
    assert len(replicas) == 60 and all(list(ses) == ["CC-IN2P3-Tape"] for ses in replicas.values())
    tape = world.grid.tapes["CC-IN2P3-Tape"]
    assert tape.buffer_used + tape.archived_bytes == 60 * 500e6  # in the buffer or already migrated to tape
    # The run stops when DIRAC's work is done; data still waiting for a tape mount is reported, not hidden.
    assert s["tape"]["CC-IN2P3-Tape"]["backlog_tb"] == pytest.approx(tape.buffer_used / 1e12)
    if tape.buffer_used:
        assert "GB still in the CC-IN2P3-Tape write buffer" in s["plan"]["verdict"]
    # The move started only after processing finished (start_after) plus the operator's delay.
    processing = next(t for t in s["transformations"] if t["name"] == "test/Processing")
    assert move["started_at"] >= processing["finished_at"] + 3600
    assert s["invariants"]["requests_conserved"] and s["plan"]["complete"]


def test_short_tape_ban_delays_the_move_until_recovery():
    world, s = run([Fault(kind="se_banned", target="CC-IN2P3-Tape", start=0, end=4 * 3600 + 12000, params={"access": "write"})])
    move = next(t for t in s["transformations"] if t["name"] == "test/MoveToTape")
    events = world.sim.log.to_frame()
    done = events[(events.kind == "request.status") & (events.state == "Done")]
    assert move["files"] == {"Processed": 60}
    assert done.time.min() >= 4 * 3600 + 12000  # nothing could land on tape while writes were banned
    assert s["invariants"]["requests_conserved"]


def test_long_tape_ban_exhausts_256_attempts_and_files_end_problematic():
    # The agent retries every 60 s cycle with no back-off (DIRAC 9.1.22's RequestDB path): 256 attempts ~ 4.3 h.
    world, s = run([Fault(kind="se_banned", target="CC-IN2P3-Tape", start=0, end=3 * 86400, params={"access": "write"})])
    move = next(t for t in s["transformations"] if t["name"] == "test/MoveToTape")
    assert s["requests"]["by_status"] == {"Failed": 6}
    assert move["files"] == {"Problematic": 60} and not move["complete"]
    request = world.rms.db.get(1)
    assert request.operations[0].files[0].attempt == 257 and "Max attempts" in request.operations[0].files[0].error
    mc_dir = world.runtime(1).output_dir
    replicas = world.catalog.get_replicas(world.catalog.find_files_by_metadata({"data_level": -1}, mc_dir)).successful
    assert all("CC-IN2P3-Tape" not in ses and ses for ses in replicas.values())  # disk copies kept: nothing lost


def test_a_request_is_never_executed_twice_at_once(monkeypatch):
    """One worker and copies slower than the 1 h kick: CleanReqDBAgent puts requests back, but the agent only
    takes what its pool can start, so no request runs in two processes (each Attempt counted once)."""
    from twin.dirac.rms_system import RequestManagement

    running: dict[int, int] = {}
    peak: dict[int, int] = {}
    original = RequestManagement._execute

    def traced(self, request):
        rid = request.request_id
        running[rid] = running.get(rid, 0) + 1
        peak[rid] = max(peak.get(rid, 0), running[rid])
        try:
            yield from original(self, request)
        finally:
            running[rid] -= 1

    monkeypatch.setattr(RequestManagement, "_execute", traced)
    scenario = load_scenario(WITH_TAPE, {"dirac.request_workers": 1, "run.duration": "3d",
                                         "topology.storage[CC-IN2P3-Tape].write_mbps": 0.5})
    world = build_world(scenario)
    world.run()
    assert peak and max(peak.values()) == 1
    request = world.rms.db.get(1)
    assert [f.attempt for f in request.operations[0].files] == [1] * 10  # one execution so far, counted once
