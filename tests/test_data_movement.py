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


def test_target_banned_in_rss_makes_the_move_wait_without_counting_attempts():
    """ReplicateAndRegister checks the targets' RSS status first (checkSEsRSS): while the tape is banned for
    writing no copy is tried, no Attempt is counted and the request comes back an hour later; once the ban
    ends the move completes. (Before, 256 refused copies in ~4.3 h left the 60 files Problematic.)"""
    ban_end = 3 * 86400
    world, s = run([Fault(kind="se_banned", target="CC-IN2P3-Tape", start=0, end=ban_end, params={"access": "write"})])
    move = next(t for t in s["transformations"] if t["name"] == "test/MoveToTape")
    assert s["requests"]["by_status"] == {"Done": 6} and move["files"] == {"Processed": 60}
    assert all(f.attempt == 1 for request in map(world.rms.db.get, range(1, 7))
               for op in request.operations for f in op.files)
    events = world.sim.log.to_frame()
    waits = events[(events.kind == "request.banned") & (events.entity == "request:1")]
    assert len(waits) >= 2 and waits.time.diff().dropna().min() >= 3600  # NotBefore one hour ahead
    assert (waits.detail.str.contains("currently banned")).all()
    done = events[(events.kind == "request.status") & (events.state == "Done")]
    assert done.time.min() >= ban_end
    assert world.grid.ses["CC-IN2P3-Tape"].refused_writes == 0  # nothing was even tried
    assert s["invariants"]["requests_conserved"]


def test_transfers_that_fail_exhaust_256_attempts_and_files_end_problematic():
    """A target that is not banned but cannot be reached (the PIC->CC link cut for 3 days) fails each copy:
    every RequestExecutingAgent cycle counts an Attempt, and after MaxAttempts 256 the files fail."""
    world, s = run([Fault(kind="link_cut", target="LCG.PIC.es->LCG.IN2P3-CC.fr", start=0, end=3 * 86400)])
    move = next(t for t in s["transformations"] if t["name"] == "test/MoveToTape")
    assert s["requests"]["by_status"].get("Failed", 0) >= 1 and move["files"].get("Problematic", 0) >= 1
    failed = [f for request in (world.rms.db.get(i) for i in range(1, 7)) for op in request.operations
              for f in op.files if f.status == "Failed"]
    assert failed and all(f.attempt == 257 and "Max attempts" in f.error for f in failed)
    mc_dir = world.runtime(1).output_dir
    replicas = world.catalog.get_replicas(world.catalog.find_files_by_metadata({"data_level": -1}, mc_dir)).successful
    assert all(ses for ses in replicas.values())  # disk copies kept: nothing lost


def test_a_request_is_never_executed_twice_at_once(monkeypatch):
    """One worker and copies slower than the 1 h kick: CleanReqDBAgent puts requests back, but the agent only
    takes what its pool can start, so no request runs in two processes (each Attempt counted once).
    The processes are traced by patching RequestManagement._execute; a compiled RMS accepts the patch but its
    compiled callers never call it, so there only the Attempt count (which a second, concurrent execution would
    raise) is checked."""
    from twin.dirac import rms_system
    from twin.dirac.rms_system import RequestManagement

    running: dict[int, int] = {}
    peak: dict[int, int] = {}
    original = RequestManagement._execute
    traceable = rms_system.__file__.endswith(".py")

    def traced(self, request):
        rid = request.request_id
        running[rid] = running.get(rid, 0) + 1
        peak[rid] = max(peak.get(rid, 0), running[rid])
        try:
            yield from original(self, request)
        finally:
            running[rid] -= 1

    if traceable:
        monkeypatch.setattr(RequestManagement, "_execute", traced)
    scenario = load_scenario(WITH_TAPE, {"dirac.request_workers": 1, "run.duration": "3d",
                                         "topology.storage[CC-IN2P3-Tape].write_mbps": 0.5})
    world = build_world(scenario)
    world.run()
    assert not traceable or (peak and max(peak.values()) == 1)
    request = world.rms.db.get(1)
    assert [f.attempt for f in request.operations[0].files] == [1] * 10  # one execution so far, counted once
