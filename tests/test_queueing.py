"""ServerPool against queueing theory: Erlang-C waiting time, Little's law, FIFO at scale."""

from __future__ import annotations

import math
from collections import deque

import pytest
import simpy

from twin.engine.queueing import ServerPool, hold_all
from twin.engine.simulation import Simulation


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Analytic mean waiting time Wq of M/M/c: C(c, a) / (c mu - lam), a = lam/mu."""
    a = lam / mu
    tail = a**c / math.factorial(c) * c / (c - a)
    prob_wait = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    return prob_wait / (c * mu - lam)


def run_mmc(seed: int, customers: int, c: int = 4, rho: float = 0.8, mu: float = 1.0, warmup: float = 0.02):
    """Poisson arrivals into a ServerPool, exponential service; callbacks, no process per customer."""
    sim = Simulation(seed)
    env = sim.env
    pool = ServerPool(env, c, "mmc")
    lam = rho * c * mu
    gaps = sim.streams.get("mmc.arrivals").exponential(1 / lam, customers).tolist()
    services = sim.streams.get("mmc.service").exponential(1 / mu, customers).tolist()
    warm = int(customers * warmup)

    def release(_event: simpy.Event) -> None:
        pool.release()

    def source():
        for i in range(customers):
            yield env.timeout(gaps[i])
            if i == warm:
                pool.reset_stats()
            pool.acquire().callbacks.append(lambda _e, s=services[i]: env.timeout(s).callbacks.append(release))

    env.process(source())
    env.run()
    return pool, lam, sum(services[warm:]) / (customers - warm)


@pytest.fixture(scope="module")
def mmc_run():
    return run_mmc(seed=7, customers=1_500_000)


def test_mmc_mean_wait_matches_erlang_c(mmc_run):
    pool, lam, _ = mmc_run
    analytic = erlang_c_wait(lam, 1.0, 4)  # 0.7455 for c=4, rho=0.8
    measured = pool.mean_wait()
    print(f"M/M/4 rho=0.8: Wq measured {measured:.4f} analytic {analytic:.4f} ({measured / analytic - 1:+.2%})")
    assert measured == pytest.approx(analytic, rel=0.05)
    assert pool.utilization(pool.env.now) == pytest.approx(0.8, rel=0.01)


def test_littles_law_on_the_queue_and_the_system(mmc_run):
    pool, _, mean_service = mmc_run
    now = pool.env.now
    lam = pool.arrival_rate(now)
    assert pool.mean_queue_length(now) == pytest.approx(lam * pool.mean_wait(), rel=0.02)
    assert pool.mean_in_system(now) == pytest.approx(lam * (pool.mean_wait() + mean_service), rel=0.02)


def test_erlang_c_formula_known_value():
    # M/M/1 reduces to rho / (mu - lam)
    assert erlang_c_wait(0.5, 1.0, 1) == pytest.approx(1.0)
    assert erlang_c_wait(3.2, 1.0, 4) == pytest.approx(0.7455, abs=1e-4)


class _CountingLine(deque):
    """The pool's waiting line, counting every method the pool calls on it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def __getattribute__(self, name: str):
        if not name.startswith("__") and name != "calls":
            calls = object.__getattribute__(self, "calls")
            calls[name] = calls.get(name, 0) + 1
        return super().__getattribute__(name)


def grant_all(n: int) -> tuple[dict[str, int], int]:
    """Queue `n` requests behind one holder, grant them all, check FIFO; return the line's method
    calls and the simpy events scheduled (operation counts: timing belongs in benchmarks/)."""
    env = simpy.Environment()
    pool = ServerPool(env, 1, "long")
    pool._line = line = _CountingLine()
    first = pool.acquire()
    order: list[int] = []
    events_before = next(env._eid)  # simpy numbers every scheduled event
    grants = [pool.acquire() for _ in range(n)]
    for i, grant in enumerate(grants):
        grant.callbacks.append(lambda _e, i=i: (order.append(i), pool.release()))
    assert pool.queue_length == n and first.triggered
    pool.release()
    env.run()
    assert order == list(range(n))
    assert pool.completions == n + 1 and pool.busy == 0
    return line.calls, next(env._eid) - events_before - 1


def test_fifo_order_and_constant_work_per_grant_with_200k_waiters():
    # Constant time per grant, as operation counts: the line is a deque touched by exactly one
    # append (join) and one popleft (grant) per waiter, with nothing that scans or shifts it
    # (a list.pop(0) line is quadratic), and one simpy event per grant. Wall time:
    # benchmarks/queue_and_match.py.
    calls, events = grant_all(200_000)
    assert calls == {"append": 200_000, "popleft": 200_000}
    assert events == 200_000


def test_capacity_drop_lets_running_work_finish_and_blocks_new_grants():
    env = simpy.Environment()
    pool = ServerPool(env, 2, "drives")
    ends: dict[str, float] = {}

    def job(name: str, duration: float):
        yield from pool.serve(duration)
        ends[name] = env.now

    for name in ("a", "b", "c"):
        env.process(job(name, 10.0))
    env.run(until=1)
    pool.set_capacity(1)  # a and b keep running; c must wait for busy < 1
    env.run(until=15)
    assert ends == {"a": 10.0, "b": 10.0} and pool.busy == 1
    env.run()
    assert ends["c"] == 20.0
    pool.set_capacity(2)
    assert pool.capacity == 2


def test_withdrawn_request_leaves_the_line_and_interrupt_releases():
    env = simpy.Environment()
    pool = ServerPool(env, 1, "p")
    holder = pool.acquire()
    waiter = pool.acquire()
    pool.cancel(waiter)
    assert pool.queue_length == 0 and pool.reneged == 1
    pool.cancel(holder)
    assert pool.busy == 0

    def worker():
        yield from pool.serve(100.0)

    proc = env.process(worker())
    env.run(until=1)
    assert pool.busy == 1
    proc.interrupt()
    with pytest.raises(simpy.Interrupt):
        env.run()
    assert pool.busy == 0


def test_hold_all_in_name_order_cannot_deadlock():
    env = simpy.Environment()
    a, b = ServerPool(env, 1, "a"), ServerPool(env, 1, "b")
    done: list[str] = []

    def copy(name: str, pools):
        yield from hold_all(env, pools, 5.0)
        done.append(name)

    env.process(copy("ab", [a, b]))
    env.process(copy("ba", [b, a]))
    env.run()
    assert sorted(done) == ["ab", "ba"] and env.now == 10.0


# ---------------------------------------------------------------- latency histogram
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from twin.engine import queueing  # noqa: E402
from twin.engine.queueing import LatencyHistogram, _bin_edges  # noqa: E402

_latencies = st.one_of(st.floats(0.0, 2e4, allow_nan=False), st.sampled_from(queueing._BIN_EDGES),
                       st.sampled_from(queueing._BIN_EDGES).map(lambda edge: math.nextafter(edge, 0.0)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_latencies, st.integers(1, 5)), max_size=30))
def test_histogram_bins_are_the_logarithm_s_at_and_around_every_edge(adds):
    """The binary search over the bin edges gives the decade formula's bin (`bin_of`), also one ulp below an edge."""
    assert len(queueing._BIN_EDGES) == LatencyHistogram.BINS  # the edges were usable: `add` searches them
    hist = LatencyHistogram()
    counts = [0.0] * (LatencyHistogram.BINS + 1)
    for latency, weight in adds:
        hist.add(latency, weight)
        counts[LatencyHistogram.bin_of(latency)] += weight
    assert hist.counts == counts


def test_histogram_edges_are_refused_for_a_bin_function_that_is_not_monotone(monkeypatch):
    """A binning that goes back down near an edge gets no edges, and `add` then bins with the formula."""
    two_below = math.nextafter(math.nextafter(queueing._BIN_EDGES[6], 0.0), 0.0)  # bin 6, two ulps below bin 7

    def jagged(x: float) -> int:
        return 7 if x == two_below else LatencyHistogram.bin_of(x)

    assert _bin_edges(jagged, LatencyHistogram.LOW, LatencyHistogram.BINS, LatencyHistogram.PER_DECADE) == []
    monkeypatch.setattr(queueing, "_BIN_EDGES", [])
    hist = LatencyHistogram()
    hist.add(0.02, 2)
    assert hist.counts[LatencyHistogram.bin_of(0.02)] == 2


# ---------------------------------------------------------------- flow pools charged alike
from twin.engine.queueing import FlowPool, charge_alike  # noqa: E402

_pool_steps = st.lists(st.one_of(
    st.tuples(st.just("charge"), st.floats(0.0, 40.0), st.integers(1, 50)),  # demand (server-s), calls
    st.tuples(st.just("later"), st.sampled_from([0.0, 1.0, 30.0, 61.0, 100.0, 200.0])),  # same slice, the next, one skipped
    st.tuples(st.just("stream"), st.floats(-1.0, 2.0)),  # a background stream starts or stops on the first pool
    st.tuples(st.just("capacity"), st.integers(0, 6)),  # a fault on the second pool
), max_size=40)


def _pools_after(steps: list[tuple], alike: bool) -> list[object]:
    env = simpy.Environment()
    pools = [FlowPool(ServerPool(env, 6, "db")), FlowPool(ServerPool(env, 4, "host"))]
    seen: list[object] = []
    for kind, *args in steps:
        if kind == "charge":
            if alike:
                seen.append(charge_alike(pools, args[0], args[1]))
            else:
                waited = prob = 0.0
                for pool in pools:
                    waited += pool.charge(args[0], args[1])
                    prob = max(prob, pool._wait_cache[1])
                seen.append((waited, prob))
        elif kind == "later":
            env.run(until=env.now + args[0] + 1e-9)
        elif kind == "stream":
            pools[0].add_stream(args[0])
        else:
            pools[1].set_capacity(args[0])
    seen.append([[getattr(pool, name) for name in _FLOW_POOL_FIELDS if name not in ("pool", "env")] for pool in pools])
    return seen


#: FlowPool's fields: its __slots__, or where a compiled (mypyc) class lists them instead of keeping __slots__.
_FLOW_POOL_FIELDS: tuple[str, ...] = getattr(FlowPool, "__slots__", None) or getattr(FlowPool, "__mypyc_attrs__")


@settings(max_examples=150, deadline=None)
@given(_pool_steps)
@example([("charge", 1.0, 1), ("later", 61.0), ("charge", 0.0, 1), ("charge", 1.0, 1)])  # the cached-wait branch
def test_pools_charged_alike_equal_each_pool_charged_in_turn(steps):
    """charge_alike (a flow entry's connection and host) returns and leaves what FlowPool.charge on each pool does."""
    assert _pools_after(steps, alike=True) == _pools_after(steps, alike=False)


@pytest.mark.parametrize("latency", [math.nan, math.inf])
def test_a_latency_that_is_not_a_finite_number_is_refused(latency):
    """The binary search would file NaN/inf in the top bin and poison the mean; the formula refused them."""
    hist = LatencyHistogram()
    hist.add(0.5)
    with pytest.raises(ValueError, match="not a finite number"):
        hist.add(latency)
    assert hist.total == 1.0 and hist.counts[LatencyHistogram.BINS] == 0.0
