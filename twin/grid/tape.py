"""A tape system behind a tape SE: drives, recalls (staging), the archive buffer and migration.

Recall: a `stage()` waits for a free drive (FIFO, shared with migrations), pays one
mount, one positioning and the read at drive speed, then the file sits in the disk
cache, pinned for `pin_lifetime`. One mount per recalled file: recall batching per
tape (what HPSS/CTA schedulers do) is not modelled, so random recalls are pessimistic.
The disk cache is only accounted (pins never block a recall): DIRAC's StageRequestAgent
throttles on `DiskCacheTB` itself, and `cache_bytes` is what it reads.

Archive: a write lands in the disk buffer at once if it fits (the writer waits, FIFO,
while the buffer is full) and is queued for migration. Batching rule: a migration batch
is cut as soon as `migration_batch_bytes` are pending, or when the oldest pending file
has waited `migration_max_wait` (then all pending files go). Each batch takes one
drive for mount + position + bytes/drive_rate and frees its buffer space when done.
Saturated, throughput is drives x B / (mount + position + B/rate) for batch size B;
below that it equals the demand.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Generator

import simpy

from twin.engine.queueing import ServerPool
from twin.engine.simulation import Simulation
from twin.grid.faultstate import ActiveFaults
from twin.grid.units import GB, TB, mbps
from twin.scenario import schema

DEFAULT_MIGRATION_BATCH_BYTES = 200 * GB
DEFAULT_MIGRATION_MAX_WAIT = 3600.0


class TapeSystem:
    """Drives, disk cache (recalls) and disk buffer (archives) of one tape SE."""

    def __init__(
        self,
        sim: Simulation,
        se_name: str,
        spec: schema.TapeSystem,
        migration_batch_bytes: float = DEFAULT_MIGRATION_BATCH_BYTES,
        migration_max_wait: float = DEFAULT_MIGRATION_MAX_WAIT,
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.se_name = se_name
        self.total_drives = spec.drives
        self.drives = ServerPool(sim.env, spec.drives, f"tape:{se_name}")
        self.drive_rate = mbps(spec.drive_mbps)
        self.mount_s = spec.mount_s
        self.position_s = spec.position_s
        self.pin_lifetime = spec.pin_lifetime
        self.cache_capacity = spec.disk_cache_tb * TB
        self.buffer_capacity = spec.buffer_tb * TB
        self.migration_batch_bytes = float(migration_batch_bytes)
        self.migration_max_wait = float(migration_max_wait)
        self._lost = ActiveFaults()
        # recall side
        self._recall_waiting = 0
        self._pins: deque[tuple[float, float]] = deque()  # (expiry, bytes): FIFO since the lifetime is fixed
        self._pinned = 0.0
        self.recalls_requested = self.recalls_done = 0
        self.recalled_bytes = 0.0
        # archive side
        self.buffer_used = 0.0
        self._space_waiters: deque[tuple[simpy.Event, float]] = deque()
        self._pending: deque[tuple[float, float]] = deque()  # (arrival time, bytes)
        self.pending_bytes = 0.0
        self.migration_queue = 0  # batches cut, waiting for a drive
        self.archive_requests = self.archived_files = self.migrations = 0
        self.archived_bytes = 0.0
        self.mounts = 0
        self._wake: simpy.Event | None = None
        self.env.process(self._migration_scheduler())

    # ------------------------------------------------------------ recall (staging)
    @property
    def recall_queue(self) -> int:
        """Recalls waiting for a drive."""
        return self._recall_waiting

    def stage(self, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """Recall `nbytes` from tape into the disk cache; pinned for `pin_lifetime`."""
        self.recalls_requested += 1
        self._recall_waiting += 1
        grant = self.drives.acquire()
        started = False
        try:
            yield grant
            started = True
            self._recall_waiting -= 1
            self.mounts += 1
            yield self.env.timeout(self._mount_time(nbytes))
        finally:
            if not started:
                self._recall_waiting -= 1
            self.drives.cancel(grant)
        self.recalls_done += 1
        self.recalled_bytes += nbytes
        self._pin(nbytes)
        return True

    def _mount_time(self, nbytes: float) -> float:
        return self.mount_s + self.position_s + nbytes / self.drive_rate

    def _pin(self, nbytes: float) -> None:
        self._expire_pins()
        self._pins.append((self.env.now + self.pin_lifetime, nbytes))
        self._pinned += nbytes

    def _expire_pins(self) -> None:
        now = self.env.now
        while self._pins and self._pins[0][0] <= now:
            self._pinned -= self._pins.popleft()[1]

    @property
    def cache_bytes(self) -> float:
        """Bytes pinned in the disk cache now (expired pins are dropped lazily)."""
        self._expire_pins()
        return self._pinned

    @property
    def cache_free(self) -> float:
        return max(0.0, self.cache_capacity - self.cache_bytes)

    # ------------------------------------------------------------ archive
    def archive(self, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """Write `nbytes` into the buffer (waiting while it is full) and queue it for tape."""
        yield self.reserve_buffer(nbytes)
        self.enqueue_migration(nbytes)
        return True

    def reserve_buffer(self, nbytes: float) -> simpy.Event:
        """An event that succeeds once `nbytes` of buffer are reserved (FIFO among writers).
        A file larger than the whole buffer is admitted when the buffer is empty."""
        event = self.env.event()
        if not self._space_waiters and self._fits(nbytes):
            self.buffer_used += nbytes
            event.succeed()
        else:
            self._space_waiters.append((event, nbytes))
        return event

    def return_buffer(self, nbytes: float) -> None:
        """Give back buffer space (a failed write, or a migrated batch)."""
        self.buffer_used = max(0.0, self.buffer_used - nbytes)
        waiters = self._space_waiters
        while waiters and self._fits(waiters[0][1]):
            event, size = waiters.popleft()
            self.buffer_used += size
            event.succeed()

    @property
    def buffer_waiting(self) -> int:
        """Writers waiting for buffer space."""
        return len(self._space_waiters)

    def _fits(self, nbytes: float) -> bool:
        return self.buffer_used + nbytes <= self.buffer_capacity or self.buffer_used <= 0.0

    def enqueue_migration(self, nbytes: float) -> None:
        """Data of a reserved write has landed in the buffer: queue it for migration."""
        was_empty = not self._pending
        self._pending.append((self.env.now, nbytes))
        self.pending_bytes += nbytes
        self.archive_requests += 1
        wake = self._wake
        if wake is not None and not wake.triggered and (was_empty or self.pending_bytes >= self.migration_batch_bytes):
            wake.succeed()

    def _migration_scheduler(self) -> Generator[simpy.Event, object, None]:
        """One process per tape system: cuts batches by the rule in the module docstring."""
        env = self.env
        while True:
            if self.pending_bytes >= self.migration_batch_bytes:
                self._cut_batch(self.migration_batch_bytes)
                continue
            self._wake = env.event()
            if not self._pending:
                yield self._wake
                continue
            deadline = self._pending[0][0] + self.migration_max_wait
            if env.now >= deadline:
                self._cut_batch(float("inf"))
                continue
            yield self._wake | env.timeout(deadline - env.now)

    def _cut_batch(self, limit: float) -> None:
        size, files = 0.0, 0
        while self._pending and size < limit:
            size += self._pending.popleft()[1]
            files += 1
        self.pending_bytes -= size
        if not self._pending:
            self.pending_bytes = 0.0  # no float residue
        self.env.process(self._migrate(size, files))

    def _migrate(self, nbytes: float, files: int) -> Generator[simpy.Event, object, None]:
        self.migration_queue += 1
        grant = self.drives.acquire()
        yield grant
        self.migration_queue -= 1
        self.mounts += 1
        yield self.env.timeout(self._mount_time(nbytes))
        self.drives.cancel(grant)
        self.migrations += 1
        self.archived_files += files
        self.archived_bytes += nbytes
        self.return_buffer(nbytes)

    @property
    def drive_use(self) -> float:
        """Busy drives over the drives available now, 0..1: with 1 of 6 drives left and that one busy,
        the tape is saturated (1.0), not 17 % used. No drive left: saturated if work waits for one."""
        available = self.drives.capacity
        if available <= 0:
            return 1.0 if self.drives.busy or self.drives.queue_length or self.migration_queue else 0.0
        return min(1.0, self.drives.busy / available)

    # ------------------------------------------------------------ faults
    def on_drive_lost(self, params: dict[str, Any], active: bool) -> None:
        """Fault "tape_drive_lost": params["drives"] (default 1) drives out while active;
        mounts in progress finish."""
        self._lost.edge(int(params.get("drives", 1)), active)
        self.drives.set_capacity(max(0, self.total_drives - int(self._lost.total())))
        detail = f"{self.drives.capacity}/{self.total_drives} drives"
        self.sim.log.log(self.env.now, "tape.drives", f"se:{self.se_name}", "Degraded" if self._lost else "Nominal", detail, float(self.drives.capacity))

    def __repr__(self) -> str:
        return f"TapeSystem({self.se_name}, drives={self.drives.busy}/{self.drives.capacity}, recall_queue={self.recall_queue}, buffer={self.buffer_used / TB:.2f} TB)"
