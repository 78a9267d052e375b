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

import itertools
import math
from bisect import bisect_right as _bin
from collections import deque
from typing import Callable, ClassVar, Final, Generator, Iterable

import simpy


class Grant(simpy.Event):
    """The event a pool returns from `acquire()`: it succeeds when a server is granted."""

    __slots__ = ("queued_at", "withdrawn")

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env)
        self.queued_at: float = env._now
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
        now: float = self.env._now
        self.total_wait += now - grant.queued_at
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
        now: float = self.env._now
        self._since: float = now
        self._last: float = now
        self._busy_area = self._queue_area = self._capacity_area = 0.0
        self.arrivals = self.completions = self.granted = self.reneged = 0
        self.total_wait = 0.0

    def _advance(self) -> None:
        now: float = self.env._now  # (simpy's clock is typed int | float: a float for compiled arithmetic)
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
        for pool, held_grant in reversed(held):
            if held_grant is None:
                pool.release()
            else:
                pool.cancel(held_grant)


def _pool_name(pool: ServerPool) -> str:
    return pool.name


# ---------------------------------------------------------------- flow-level charging
_ERLANG_C_MEMO: Final[dict[tuple[int, int], float]] = {}


def erlang_c_cached(c: int, a: float) -> float:
    """Erlang C with `a` rounded to 1/400 of the servers (memoized: a flow pool asks every slice)."""
    step = round(a * 400.0 / c) if c > 0 else 0
    key = (c, step)
    value = _ERLANG_C_MEMO.get(key)
    if value is None:
        value = _ERLANG_C_MEMO[key] = erlang_c(c, step * c / 400.0)
    return value


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load `a` (Erlang C); 1 when a >= c.

    Computed with the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)), stable for large c.
    """
    if c <= 0 or a >= c:
        return 1.0
    if a <= 0.0:
        return 0.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def mmc_wait(c: int, a: float, mean_service: float) -> float:
    """Mean waiting time Wq of M/M/c: C(c, a) x E[S] / (c - a) (Kleinrock 1975, eq. 3.40); inf at or above c."""
    if a >= c:
        return math.inf
    return erlang_c(c, a) * mean_service / (c - a) if a > 0.0 else 0.0


#: A flow pool's cached (wait, Erlang C, offered load) when none is cached: its load (inf) is no pool's.
_NO_WAIT: Final = (0.0, 0.0, math.inf)


class FlowPool:
    """A ServerPool charged as a fluid while it is cold, exactly while it is hot.

    SimGrid charges a network flow by rates, not packet by packet; this charges service
    calls and queries the same way. Work is accounted per time slice (`slice_s`): the
    offered load `a` (busy servers a call would meet) is the larger of the previous
    slice's load and the load already offered in this one, plus long-lived background
    streams (heartbeats of running jobs). While a/c stays below `hot_above`, a call
    waits the M/M/c mean wait Wq = C(c, a) E[S] / (c - a) and costs no simpy event
    here. The pool turns hot (exact per-call queueing on the ServerPool, FIFO, with
    fault capacity changes) when a/c reaches `hot_above`, when its capacity is below
    nominal (a fault) or when exact work is still queued, and turns cold again below
    `cold_below` once the exact line is empty. Background and asynchronous work stay
    fluid in both modes; while hot they take servers away from exact callers.
    """

    __slots__ = ("pool", "env", "name", "nominal", "slice_s", "hot_above", "cold_below", "enabled", "hot",
                 "_slice_start", "_slice_end", "_slice_demand", "_slice_calls", "_slice_async", "_prev_load",
                 "_prev_async", "_prev_service", "_wait_cache", "_wait_ok", "bg_rate", "_bg_last", "fluid_busy",
                 "fluid_wait", "hot_switches", "hot_time", "_hot_since", "_down_to", "_hot_servers",
                 "_tolerance", "_hot_demand")

    def __init__(self, pool: ServerPool, slice_s: float = 60.0, hot_above: float = 0.8, cold_below: float = 0.6) -> None:
        self.pool = pool
        self.env = pool.env
        self.name = pool.name
        self.nominal = pool.capacity
        self.slice_s = float(slice_s)
        self.hot_above = hot_above
        self.cold_below = cold_below
        self.enabled = True
        self.hot = False
        self._slice_start: float = self.env._now
        self._slice_end = self._slice_start + self.slice_s
        self._slice_demand = self._slice_calls = 0.0
        self._slice_async = 0.0
        self._prev_load = self._prev_async = 0.0
        self._prev_service = 0.0
        self._wait_cache: tuple[float, float, float] = _NO_WAIT
        self._wait_ok = False  # the cached wait holds until the offered load or the servers change (slice end, stream, fault)
        self.bg_rate = 0.0  # server-seconds per second of background streams
        self._bg_last: float = self.env._now
        self.fluid_busy = 0.0  # server-seconds charged as fluid (flow calls, async work, streams)
        self.fluid_wait = 0.0  # caller-seconds spent waiting in flow mode (Little: integral of the queue)
        self.hot_switches = 0
        self.hot_time = 0.0
        self._hot_since = 0.0
        self._down_to = pool.capacity
        self._hot_servers = hot_above * pool.capacity  # busy servers at which the pool turns hot
        self._tolerance = 0.01 * max(1, pool.capacity)
        self._hot_demand = 0.0
        self._update_hot_demand()

    def set_exact(self, exact: bool = True) -> None:
        """Exact per-call queueing always (the reference the flow model is validated against)."""
        self.enabled = not exact
        self._decide()

    # ------------------------------------------------------------ load
    @property
    def capacity(self) -> int:
        return self.nominal

    def set_capacity(self, capacity: int) -> None:
        """A fault changes the servers: the pool runs exact while below nominal."""
        self._roll()
        self._down_to = int(capacity)
        self._hot_servers = self.hot_above * min(self.nominal, self._down_to)
        self._wait_cache, self._wait_ok = _NO_WAIT, False  # the cached wait was for the old servers
        self._update_hot_demand()
        self.pool.set_capacity(self._exact_capacity())
        self._decide()

    def offered_load(self) -> float:
        """Busy servers a call meets now (previous slice vs this one so far, plus streams)."""
        self._roll()
        return max(self._prev_load, self._slice_demand / self.slice_s) + self.bg_rate

    def add_stream(self, rate: float) -> None:
        """Start (rate > 0) or stop (rate < 0) a background stream of `rate` server-seconds per second."""
        self._advance_bg()
        bg_rate = self.bg_rate + rate
        self.bg_rate = bg_rate if bg_rate > 0.0 else 0.0
        if self._wait_ok:  # the cached wait still holds if `wait` would keep it (`a` within the tolerance)
            moved = self._prev_load + self.bg_rate - self._wait_cache[2]
            self._wait_ok = -self._tolerance <= moved <= self._tolerance
        self._update_hot_demand()
        if self.hot:
            self.pool.set_capacity(self._exact_capacity())

    # ------------------------------------------------------------ charging
    def is_hot(self) -> bool:
        now: float = self.env._now
        if now >= self._slice_end:
            self._roll()
        if self.hot:
            return True
        if self._slice_demand >= self._hot_demand and self._slice_demand / self.slice_s + self.bg_rate >= self._hot_servers:
            self._set_hot(True)
        return self.hot

    def wait(self) -> float:
        """Mean wait Wq of a call arriving now, from the analytic M/M/c.

        Cached per slice; background streams change `a` by tiny steps (one job's heartbeats),
        so the cache is refreshed only when `a` moved by more than 1 % of the servers.
        """
        now: float = self.env._now
        if now >= self._slice_end:
            self._roll()
        s = self._prev_service
        self._wait_ok = bool(s)  # `a` then moves only when the slice rolls or a stream starts or stops
        if s:
            a = self._prev_load + self.bg_rate
        elif self._slice_calls:  # no full slice measured yet: the rate so far in this one
            s = self._slice_demand / self._slice_calls
            a = self._slice_demand / max(1.0, now - self._slice_start) + self.bg_rate
        else:
            a = self.bg_rate
        cache = self._wait_cache
        if -self._tolerance <= a - cache[2] <= self._tolerance:  # (never for _NO_WAIT)
            return cache[0]
        c = self._capacity_now()
        if s > 0 and 0 < a < c:
            prob = erlang_c_cached(c, a)
            self._wait_cache = cache = (prob * s / (c - a), prob, a)
        elif s > 0 and a >= c:
            self._wait_cache = cache = (math.inf, 1.0, a)
        else:
            self._wait_cache = cache = (0.0, 0.0, a)
        return cache[0]

    def wait_probability(self) -> float:
        """Erlang C of the current slice: the share of calls that wait at all."""
        self.wait()
        return self._wait_cache[1]

    def charge(self, demand: float, calls: float = 1.0, asynchronous: bool = False) -> float:
        """Account `calls` calls needing `demand` server-seconds; returns their total waiting time (flow).
        `charge_alike` restates the cached-wait branch for several pools at once: change both together."""
        now: float = self.env._now
        if self._wait_ok and now < self._slice_end:
            wq = self._wait_cache[0]  # what wait() would return: same slice, same load
        else:
            wq = self.wait()  # rolls the slice first
        self._slice_demand += demand
        self._slice_calls += calls
        self.fluid_busy += demand
        if asynchronous:
            self._slice_async += demand
        if not wq:
            return 0.0
        waited = wq * calls if wq != math.inf else 0.0
        self.fluid_wait += waited
        return waited

    def note_exact(self, demand: float) -> None:
        """Exact work counts towards the slice's offered load too (it is measured by the ServerPool)."""
        now: float = self.env._now
        if now >= self._slice_end:
            self._roll()
        self._slice_demand += demand
        self._slice_calls += 1

    # ------------------------------------------------------------ statistics
    def busy_seconds(self) -> float:
        """Server-seconds used so far: exact holds plus fluid work plus streams."""
        self._advance_bg()
        _, busy, _, _ = self.pool._areas(self.env.now)
        return busy + self.fluid_busy

    def queue_seconds(self) -> float:
        """Integral of the waiting line so far (exact line area plus fluid waits)."""
        _, _, queue, _ = self.pool._areas(self.env.now)
        return queue + self.fluid_wait

    # ------------------------------------------------------------ internals
    def _update_hot_demand(self) -> None:
        """Slice demand below which `is_hot` need not test the load (a lower bound of its threshold)."""
        self._hot_demand = (self._hot_servers - self.bg_rate) * self.slice_s * (1.0 - 1e-9)

    def _capacity_now(self) -> int:
        return min(self.nominal, self._down_to)

    def _exact_capacity(self) -> int:
        """Servers left to exact callers: the fluid part (streams, asynchronous work) holds the rest."""
        cap = self._capacity_now()
        if cap <= 0:
            return 0
        return max(1, cap - int(self.bg_rate + self._prev_async))

    def _advance_bg(self) -> None:
        now: float = self.env._now
        if now > self._bg_last:
            self.fluid_busy += self.bg_rate * (now - self._bg_last)
            self._bg_last = now

    def _roll(self) -> None:
        now: float = self.env._now
        end = self._slice_start + self.slice_s
        if now < end:
            return
        self._advance_bg()
        skipped = int((now - end) // self.slice_s)
        self._prev_load = 0.0 if skipped else self._slice_demand / self.slice_s
        self._prev_async = 0.0 if skipped else self._slice_async / self.slice_s
        if self._slice_calls and not skipped:
            self._prev_service = self._slice_demand / self._slice_calls
        self._slice_start = end + skipped * self.slice_s
        self._slice_end = self._slice_start + self.slice_s
        self._slice_demand = self._slice_calls = self._slice_async = 0.0
        self._wait_cache = _NO_WAIT
        self._wait_ok = False
        self._decide()

    def _decide(self) -> None:
        cap = self._capacity_now()
        load = self._prev_load + self.bg_rate
        if not self.enabled or cap < self.nominal or load >= self.hot_above * max(cap, 1):
            self._set_hot(True)
        elif self.hot and load < self.cold_below * cap and not self.pool.queue_length:
            self._set_hot(False)
        if self.hot:
            self.pool.set_capacity(self._exact_capacity())

    def _set_hot(self, hot: bool) -> None:
        if hot == self.hot:
            return
        now: float = self.env._now
        if hot:
            self._hot_since = now
            self.hot_switches += 1
            self.pool.set_capacity(self._exact_capacity())
        else:
            self.hot_time += now - self._hot_since
            self.pool.set_capacity(self._capacity_now())
        self.hot = hot

    def hot_seconds(self) -> float:
        return self.hot_time + (self.env.now - self._hot_since if self.hot else 0.0)


def charge_alike(pools: list[FlowPool], demand: float, calls: float) -> tuple[float, float]:
    """`FlowPool.charge(demand, calls)` on each pool in turn (a query holds a connection and a core of its
    host): (their waits summed in pool order, the largest Erlang C of their waits). The case where a
    pool's cached wait holds (same slice, same load) is `charge`'s first branch written out, so a flow
    entry makes one call for its pools; any other case is `charge` itself."""
    waited = 0.0
    prob = 0.0
    for pool in pools:
        now: float = pool.env._now
        if pool._wait_ok and now < pool._slice_end:
            cache = pool._wait_cache
            pool._slice_demand += demand
            pool._slice_calls += calls
            pool.fluid_busy += demand
            wq = cache[0]
            if wq:
                pool_waited = wq * calls if wq != math.inf else 0.0
                pool.fluid_wait += pool_waited
                waited += pool_waited
        else:
            waited += pool.charge(demand, calls)
            cache = pool._wait_cache
        if cache[1] > prob:
            prob = cache[1]
    return waited, prob


def any_hot(pools: tuple[FlowPool, ...], now: float) -> bool:
    """`FlowPool.is_hot` of each pool in turn until one is hot, without a call for the pools that
    plainly are not (same slice, cold, slice demand below the hot bound): a charge asks three or four."""
    for pool in pools:
        if (now >= pool._slice_end or pool.hot or pool._slice_demand >= pool._hot_demand) and pool.is_hot():
            return True
    return False


#: Below this Erlang C (or wait/service ratio) a flow call's queueing tail is negligible: one histogram entry.
SHORT_TAIL = 0.01  # (not Final: tests patch it, and compiled code would inline a Final)


class LatencyHistogram:
    """Latencies in log-spaced bins (50 per decade, 10 us .. 3 h): percentiles within ~2.3 %.

    Flow-mode calls are entered with the M/M/c waiting-time distribution around their
    service time (no wait with probability 1 - C, else an exponential wait of mean Wq/C,
    entered at four quantiles), so p95/p99 keep the queueing tail without one draw per call.
    """

    __slots__ = ("counts", "total", "sum", "_last_latency", "_last_bin")

    PER_DECADE: Final = 50
    LOW: Final = 1e-5
    BINS: Final = 50 * 9
    _WAIT_QUANTILES: ClassVar[tuple[float, ...]] = tuple(-math.log(1.0 - u) for u in (0.125, 0.375, 0.625, 0.875))

    def __init__(self) -> None:
        self.counts = [0.0] * (self.BINS + 1)
        self.total = 0.0
        self.sum = 0.0
        self._last_latency, self._last_bin = -1.0, 0  # of the last add: flow calls repeat a service time until a table grows

    @classmethod
    def bin_of(cls, latency: float) -> int:
        """The bin of `latency`: its decade position, 50 per decade above 10 us (the definition `add` follows)."""
        return 0 if latency <= cls.LOW else min(cls.BINS, int(math.log10(latency / cls.LOW) * cls.PER_DECADE) + 1)

    def add(self, latency: float, weight: float = 1.0) -> None:
        if latency != self._last_latency:
            if not latency < math.inf:  # NaN or inf: the binary search would file them in the top bin silently
                raise ValueError(f"latency {latency} is not a finite number")
            self._last_latency = latency
            self._last_bin = _bin(_BIN_EDGES, latency) if _BIN_EDGES else self.bin_of(latency)
        self.counts[self._last_bin] += weight
        self.total += weight
        self.sum += latency * weight

    def add_queued(self, service: float, wait: float, prob_wait: float, weight: float = 1.0) -> None:
        """`weight` calls of service time `service` meeting an M/M/c queue (mean wait `wait`, Erlang C `prob_wait`).
        (Callers that know `prob_wait < SHORT_TAIL` for several entries `add(service + wait, weight)` themselves.)"""
        if prob_wait < SHORT_TAIL or wait < SHORT_TAIL * service:
            self.add(service + wait, weight)  # the tail is negligible next to the service time
            return
        self.add(service, weight * (1.0 - prob_wait))
        conditional = wait / prob_wait
        share = weight * prob_wait / len(self._WAIT_QUANTILES)
        for q in self._WAIT_QUANTILES:
            self.add(service + conditional * q, share)

    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def percentile(self, q: float) -> float:
        """Middle (geometric) of the bin holding the q-th percentile (0..100)."""
        if not self.total:
            return 0.0
        target = self.total * q / 100.0
        run = 0.0
        for index, count in enumerate(self.counts):
            run += count
            if run >= target and count:
                return self.LOW * 10 ** (max(0.0, index - 0.5) / self.PER_DECADE)
        return self.LOW * 10 ** (self.BINS / self.PER_DECADE)


def _bin_edges(bin_of: Callable[[float], int], low: float, bins: int, per_decade: int) -> list[float]:
    """The smallest latency of each bin 1..`bins` under `bin_of`, so that a binary search over them (C
    `bisect`, one call) gives `bin_of`'s answer without its logarithm; empty if `bin_of` were not monotone
    within 8 ulps of an edge (then `add` keeps the logarithm)."""
    edges: list[float] = []
    for k in range(1, bins + 1):
        edge = low * 10.0 ** ((k - 1) / per_decade)  # near the edge: walk to the first float of bin >= k
        while bin_of(edge) >= k:
            edge = math.nextafter(edge, 0.0)
        while bin_of(edge) < k:
            edge = math.nextafter(edge, math.inf)
        before, after = edge, edge
        for _ in range(8):
            before, after = math.nextafter(before, 0.0), math.nextafter(after, math.inf)
            if bin_of(before) >= k or bin_of(after) < k:
                return []
        edges.append(edge)
    return edges


_BIN_EDGES = _bin_edges(  # (not Final: a test patches it)
    LatencyHistogram.bin_of, LatencyHistogram.LOW, LatencyHistogram.BINS, LatencyHistogram.PER_DECADE)


def run_in_threads(env: simpy.Environment, tasks: Iterable[Generator[simpy.Event, object, object]],
                   threads: int) -> Generator[simpy.Event, object, None]:
    """An agent's ThreadPoolExecutor: at most `threads` tasks in flight, return when all are done.

    DIRAC's TransformationAgent and task managers submit one task per transformation to a
    15-thread pool and wait for all (as_completed), so a slow DB makes a cycle last about
    the longest of 15 transformations in flight, not their sum. One task runs inline.
    """
    queue = iter(tasks)
    first = next(queue, None)
    if first is None:
        return
    second = next(queue, None)
    if second is None or threads <= 1:
        yield from first
        if second is not None:
            yield from second
            for task in queue:
                yield from task
        return
    backlog = itertools.chain([first, second], queue)
    running = [env.process(task) for task in itertools.islice(backlog, threads)]
    while running:
        yield env.any_of(running)
        still = [proc for proc in running if not proc.triggered]
        for task in itertools.islice(backlog, len(running) - len(still)):
            still.append(env.process(task))
        running = still
