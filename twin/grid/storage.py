"""Storage elements: fill level, read/write status (RSS-like bans) and transfer slots.

Bandwidth is shared by a processor-sharing approximation: the SE has `max_concurrency`
transfer slots (a FIFO ServerPool) and every stream runs at bandwidth / max_concurrency,
whatever the load. Saturated, the SE delivers its full bandwidth; lightly loaded, a
single stream is slower than it would be on a real SE (which would give it more of the
bandwidth). This keeps the cost of a transfer O(1) with no re-timing of active streams.

A tape SE's `read` is the read from its disk cache: the file must have been staged
first (`stage`, as the WMS Staging state does); its `write` goes to the tape buffer
and is migrated in the background (twin.grid.tape).
"""

from __future__ import annotations

from typing import Any, Generator

import simpy

from twin.engine.queueing import ServerPool
from twin.engine.simulation import Simulation
from twin.grid.faultstate import ActiveFaults
from twin.grid.tape import TapeSystem
from twin.grid.units import TB, mbps
from twin.scenario import schema

ACCESS_KINDS = ("read", "write")


class StorageElement:
    """One SE: capacity and used bytes, status, transfer slots, optional tape system."""

    def __init__(self, sim: Simulation, spec: schema.StorageElement, tape: TapeSystem | None = None) -> None:
        self.sim = sim
        self.env = sim.env
        self.name = spec.name
        self.site = spec.site
        self.is_tape = spec.kind == "tape"
        self.is_disk = not self.is_tape
        self.failover = spec.failover
        self.capacity_bytes = spec.capacity_tb * TB
        self.used_bytes = spec.used_tb * TB
        self.max_concurrency = spec.max_concurrency
        self.read_rate = mbps(spec.read_mbps) / spec.max_concurrency  # bytes/s per stream
        self.write_rate = mbps(spec.write_mbps) / spec.max_concurrency
        self.slots = ServerPool(sim.env, spec.max_concurrency, f"se:{spec.name}")
        self.tape = tape if tape is not None else (TapeSystem(sim, spec.name, spec.tape) if spec.tape else None)
        self._bans = {kind: ActiveFaults() for kind in ACCESS_KINDS}
        #: no active ban of that access (refreshed at each ban edge: every transfer asks)
        self.readable = self.writable = True
        self.reads = self.writes = self.refused_reads = self.refused_writes = 0
        self.read_bytes = self.written_bytes = 0.0

    # ------------------------------------------------------------ status
    @property
    def free_bytes(self) -> float:
        return max(0.0, self.capacity_bytes - self.used_bytes)

    @property
    def fill(self) -> float:
        """Fill level, 0..1."""
        return self.used_bytes / self.capacity_bytes

    def status(self) -> dict[str, bool]:
        """As DIRAC's StorageElement.status(): Read/Write access and the disk/tape flags."""
        return {"Read": self.readable, "Write": self.writable, "DiskSE": self.is_disk, "TapeSE": self.is_tape}

    def can_write(self, nbytes: float) -> bool:
        return self.writable and self.used_bytes + nbytes <= self.capacity_bytes

    # ------------------------------------------------------------ data
    def read(self, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """Stream `nbytes` out of the SE; False at once if reading is banned."""
        if not self.readable:
            self.refused_reads += 1
            return False
        yield from self.slots.serve(nbytes / self.read_rate)
        self.end_read(nbytes)
        return True

    def end_read(self, nbytes: float) -> None:
        """Count a completed read (also called by network copies that stream from here)."""
        self.reads += 1
        self.read_bytes += nbytes

    def write(self, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """Stream `nbytes` into the SE; False at once if writing is banned or it is full."""
        if not (yield from self.begin_write(nbytes)):
            return False
        yield from self.slots.serve(nbytes / self.write_rate)
        self.end_write(nbytes, True)
        return True

    def begin_write(self, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """Check status and space, reserve the bytes (and, on tape, buffer space, which may
        wait). The caller then streams the data and calls `end_write`."""
        if not self.reserve_write(nbytes):
            return False
        if self.tape is not None:
            yield self.tape.reserve_buffer(nbytes)
        return True

    def reserve_write(self, nbytes: float) -> bool:
        """`begin_write` without the tape buffer: all of it on a disk SE, where nothing waits (a
        network upload to disk calls this directly instead of driving a generator)."""
        if not self.can_write(nbytes):
            self.refused_writes += 1
            return False
        self.used_bytes += nbytes
        return True

    def end_write(self, nbytes: float, ok: bool) -> None:
        """Commit a begun write (tape: queue it for migration) or roll it back."""
        if ok:
            self.writes += 1
            self.written_bytes += nbytes
            if self.tape is not None:
                self.tape.enqueue_migration(nbytes)
            return
        self.remove_replica_bytes(nbytes)
        if self.tape is not None:
            self.tape.return_buffer(nbytes)

    def stage(self, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """Bring a file online: a tape recall on a tape SE, nothing on disk; False if banned."""
        if not self.readable:
            self.refused_reads += 1
            return False
        if self.tape is None:
            return True
        return (yield from self.tape.stage(nbytes))

    def add_replica_bytes(self, nbytes: float) -> None:
        """Account bytes that arrive without a simulated transfer (initial data, bookkeeping)."""
        self.used_bytes += nbytes

    def remove_replica_bytes(self, nbytes: float) -> None:
        self.used_bytes = max(0.0, self.used_bytes - nbytes)

    # ------------------------------------------------------------ faults
    def on_banned(self, params: dict[str, Any], active: bool) -> None:
        """Fault "se_banned": params["access"] in read|write|all (default all)."""
        access = params.get("access", "all")
        kinds = ACCESS_KINDS if access == "all" else (access,)
        if any(kind not in ACCESS_KINDS for kind in kinds):
            raise ValueError(f"se_banned {self.name}: expected access read|write|all, got {access!r}")
        for kind in kinds:
            self._bans[kind].edge(1, active)
        self.readable, self.writable = not self._bans["read"], not self._bans["write"]
        state = "Active" if self.readable and self.writable else "Banned"
        detail = f"read={'ok' if self.readable else 'banned'} write={'ok' if self.writable else 'banned'}"
        self.sim.log.log(self.env.now, "se.status", f"se:{self.name}", state, detail)

    def __repr__(self) -> str:
        return f"StorageElement({self.name}@{self.site}, {'tape' if self.is_tape else 'disk'}, {self.used_bytes / TB:.1f}/{self.capacity_bytes / TB:.1f} TB)"
