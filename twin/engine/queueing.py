"""A fast FIFO multi-server queue, the one queueing primitive every grid resource uses.

simpy's stock Resource keeps its waiters in a list and pops from the front, which is
O(n) per grant: with 10^5 queued transfers or pilots a run crawls. `ServerPool` keeps
its waiting line on a `collections.deque`, so acquire, release and withdraw are O(1)
(withdrawn requests are skipped lazily when they reach the head of the line).

It also keeps the statistics the validation needs as time integrals (area under the
busy-server and queue-length curves) so means are exact for the simulated path, not
estimates from samples: utilization, mean queue length, mean wait, mean number in
system, and therefore Little's law, can be checked directly.
"""

from __future__ import annotations

from collections import deque
from typing import Generator, Iterable

import simpy


class Grant(simpy.Event):
    """The event a pool returns from `acquire()`: it succeeds when a server is granted."""

    __slots__ = ("queued_at", "withdrawn")

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env)
        self.queued_at = env.now
        self.withdrawn = False


class ServerPool:
    """c identical servers with one FIFO waiting line; c may change at runtime.

    Lowering the capacity never pre-empts: work already granted runs to the end and
    no new grant is made until `busy < capacity` (a lost tape drive, a DB that goes
    down). Raising it grants waiting requests at once.
    """

    def __init__(self, env: simpy.Environment, capacity: int, name: str = "") -> None:
        if capacity < 0:
            raise ValueError(f"pool {name}: capacity must be >= 0, got {capacity}")
        self.env = env
        self.name = name
        self._capacity = int(capacity)
        self.busy = 0
        self._line: deque[Grant] = deque()
        self._waiting = 0
        self.reset_stats()

    # ------------------------------------------------------------ state
    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def queue_length(self) -> int:
        """Requests waiting for a server (withdrawn ones excluded)."""
        return self._waiting

    @property
    def free(self) -> int:
        return max(0, self._capacity - self.busy)

    # ------------------------------------------------------------ operations
    def acquire(self) -> Grant:
        """Join the line; the returned event succeeds when a server is granted."""
        self._advance()
        self.arrivals += 1
        grant = Grant(self.env)
        if self.busy < self._capacity and not self._waiting:
            self._grant(grant)
        else:
            self._line.append(grant)
            self._waiting += 1
        return grant

    def try_take(self) -> bool:
        """Take a server at once if one is free and nobody waits; no event is created.

        The uncontended case is most service calls and DB queries: skipping the Grant
        event halves the simpy events per job (measured in benchmarks/results/scaling.md).
        """
        if self.busy >= self._capacity or self._waiting:
            return False
        self._advance()
        self.arrivals += 1
        self.busy += 1
        self.granted += 1
        return True

    def release(self) -> None:
        """Give a server back (one completion) and serve the head of the line."""
        if self.busy <= 0:
            raise RuntimeError(f"pool {self.name}: release() without a granted server")
        self._advance()
        self.busy -= 1
        self.completions += 1
        self._dispatch()

    def cancel(self, grant: Grant) -> None:
        """Done with `grant` either way: release it if granted, else leave the line."""
        if grant.withdrawn:
            return
        if grant.triggered:
            grant.withdrawn = True
            self.release()
            return
        self._advance()
        grant.withdrawn = True
        self._waiting -= 1
        self.reneged += 1

    def set_capacity(self, capacity: int) -> None:
        """Change the number of servers; running work is never interrupted."""
        self._advance()
        self._capacity = max(0, int(capacity))
        self._dispatch()

    def serve(self, duration: float) -> Generator[simpy.Event, object, None]:
        """Acquire a server, hold it for `duration`, release it (use with `yield from`)."""
        yield from hold_all(self.env, (self,), duration)

    def _grant(self, grant: Grant) -> None:
        self.busy += 1
        self.granted += 1
        self.total_wait += self.env.now - grant.queued_at
        grant.succeed()

    def _dispatch(self) -> None:
        line = self._line
        while self._waiting and self.busy < self._capacity:
            grant = line.popleft()
            if grant.withdrawn:
                continue
            self._waiting -= 1
            self._grant(grant)

    # ------------------------------------------------------------ statistics
    def reset_stats(self) -> None:
        """Start the statistics afresh from now (e.g. after a warm-up period)."""
        self._since = self._last = self.env.now
        self._busy_area = self._queue_area = self._capacity_area = 0.0
        self.arrivals = self.completions = self.granted = self.reneged = 0
        self.total_wait = 0.0

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._last
        if dt > 0.0:
            self._busy_area += self.busy * dt
            self._queue_area += self._waiting * dt
            self._capacity_area += self._capacity * dt
            self._last = now

    def _areas(self, now: float) -> tuple[float, float, float, float]:
        """(elapsed, busy, queue, capacity) integrals up to `now`, without mutating state."""
        dt = max(0.0, now - self._last)
        return (
            now - self._since,
            self._busy_area + self.busy * dt,
            self._queue_area + self._waiting * dt,
            self._capacity_area + self._capacity * dt,
        )

    def utilization(self, now: float) -> float:
        """Busy server-time over available server-time since the last reset."""
        _, busy, _, cap = self._areas(now)
        return busy / cap if cap > 0 else 0.0

    def mean_queue_length(self, now: float) -> float:
        """Time-average number waiting (Lq)."""
        elapsed, _, queue, _ = self._areas(now)
        return queue / elapsed if elapsed > 0 else 0.0

    def mean_in_system(self, now: float) -> float:
        """Time-average number waiting or in service (L)."""
        elapsed, busy, queue, _ = self._areas(now)
        return (busy + queue) / elapsed if elapsed > 0 else 0.0

    def mean_wait(self) -> float:
        """Mean time from acquire() to grant over granted requests (Wq)."""
        return self.total_wait / self.granted if self.granted else 0.0

    def arrival_rate(self, now: float) -> float:
        elapsed = now - self._since
        return self.arrivals / elapsed if elapsed > 0 else 0.0

    def __repr__(self) -> str:
        return f"ServerPool({self.name!r}, busy={self.busy}/{self._capacity}, waiting={self._waiting})"


def hold_all(env: simpy.Environment, pools: Iterable[ServerPool], duration: float) -> Generator[simpy.Event, object, None]:
    """Hold one server of every pool at once for `duration` (a streamed copy holds the
    source SE, the link and the destination SE together).

    Pools are acquired one after the other in name order, the same global order for
    every caller, so two copies in opposite directions cannot deadlock. Every grant is
    given back on exit, also when the calling process is interrupted.
    """
    held: list[tuple[ServerPool, Grant | None]] = []
    try:
        for pool in sorted(pools, key=_pool_name):
            if pool.try_take():
                held.append((pool, None))
                continue
            grant = pool.acquire()
            held.append((pool, grant))
            yield grant
        yield env.timeout(duration)
    finally:
        for pool, grant in reversed(held):
            if grant is None:
                pool.release()
            else:
                pool.cancel(grant)


def _pool_name(pool: ServerPool) -> str:
    return pool.name
