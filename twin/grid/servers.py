"""Central DIRAC hosts and their MySQL databases: where service calls and queries cost time.

An overloaded DB or host slows the agents and pilots that wait on it, as in production
(design principle: model cost where it changes decisions).

Simplified: a query holds one DB connection *and* one core of its host for its whole
service time (a CPU-bound MySQL thread), so the effective DB concurrency is
min(connections, free host cores). Service times are gamma-distributed around the
cost formula with coefficient of variation `service_cv` (1 = exponential, the M/M/c
case; 0 = deterministic). Outages never pre-empt: work already running finishes,
new work waits in FIFO order until the host or DB is back. RAM is recorded, not
simulated.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Final, Generator, Sequence

import simpy

from twin.engine.queueing import SHORT_TAIL, FlowPool, LatencyHistogram, ServerPool, charge_alike, hold_all
from twin.engine.simulation import Simulation
from twin.grid.faultstate import ActiveFaults
from twin.scenario import schema

DEFAULT_SERVICE_CV: Final = 1.0
DEFAULT_MS_PER_ROW: Final = 0.01  # per result/affected row beyond the first (10 us)
EWMA_ALPHA: Final = 0.05
LISTED_FLOWS = 256  # flow entries whose repeated charges a database counts up before folding them into queries_by_op


class CoreServer:
    """A host: `cores` FIFO cores, its RAM and the services it runs."""

    def __init__(self, sim: Simulation, spec: schema.CoreServer) -> None:
        self.sim = sim
        self.env = sim.env
        self.name = spec.name
        self.total_cores = spec.cores
        self.ram_gb = spec.ram_gb
        self.services = list(spec.services)
        self.cores = ServerPool(sim.env, spec.cores, f"server:{spec.name}")
        self.flow = FlowPool(self.cores)
        self._down = ActiveFaults()
        self.calls = 0
        self.cpu_seconds = 0.0

    @property
    def up(self) -> bool:
        return not self._down

    def call(self, cpu_seconds: float) -> Generator[simpy.Event, object, None]:
        """A service call costing `cpu_seconds` on one core (waits while the host is down)."""
        self.flow.note_exact(cpu_seconds)
        yield from self.cores.serve(cpu_seconds)
        self.account(cpu_seconds)

    def account(self, cpu_seconds: float, calls: int = 1) -> None:
        self.calls += calls
        self.cpu_seconds += cpu_seconds

    def on_down(self, params: dict[str, Any], active: bool) -> None:
        """Fault "server_down": no core is granted while down; calls wait for the host."""
        self._down.edge(1, active)
        self.flow.set_capacity(self.total_cores if self.up else 0)
        self.sim.log.log(self.env.now, "server.status", f"server:{self.name}", "Up" if self.up else "Down")


class FlowOps:
    """One caller's round trips on one database as a route charges them, resolved once: (op, queries, rows)
    per operation, their round trips and their rows beyond one per round trip.

    It keeps what it last cost (demand and service times) with the table size and db_slow factor they
    were computed at: a DB's other cost parameters are fixed once it is built, so the same size and
    factor give the same numbers, and the repeated batches of a phase skip the arithmetic."""

    __slots__ = ("ops", "size_op", "queries", "extra_rows", "_size", "_slow", "_demand", "_services", "listed", "repeats")

    def __init__(self, ops: Sequence[tuple[str, int, int]], queries: int, extra_rows: int) -> None:
        self.ops = ops
        self.size_op = ops[0][0]  # the operation whose table size prices the entry (one size per DB)
        self.queries = queries
        self.extra_rows = extra_rows
        self._size: float | None = None
        self._slow = 1.0
        self._demand = 0.0
        self._services: Sequence[tuple[float, int]] = ()
        self.listed = False  # on its database's list of entries whose per-operation counts wait (`repeats`)
        self.repeats = 0  # charges since it was listed, not yet in `queries_by_op`


class Database:
    """A MySQL instance: connection pool and a query cost that grows with table size."""

    def __init__(
        self,
        sim: Simulation,
        spec: schema.Database,
        server: CoreServer | None = None,
        service_cv: float = DEFAULT_SERVICE_CV,
        ms_per_row: float = DEFAULT_MS_PER_ROW,
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.name = spec.name
        self.server = server
        self.total_connections = spec.connections
        self.connections = ServerPool(sim.env, spec.connections, f"db:{spec.name}")
        self.flow = FlowPool(self.connections)
        self._pools = [self.flow] if server is None else [self.flow, server.flow]
        self.base_query_ms = spec.base_query_ms
        self.ms_per_million_rows = spec.ms_per_million_rows
        self.ms_per_row = ms_per_row
        self.slowdown = spec.slowdown
        self.initial_rows = float(getattr(spec, "initial_rows", 0.0))
        self.service_cv = service_cv
        self._service_rng = sim.streams.get(f"db.{spec.name}.service")
        self._size_of: Callable[[str], float] | None = None
        self._size_by_op = True
        self._table_rows = 0.0
        self._slow = ActiveFaults()
        self._slow_factor = 1.0
        self._down = ActiveFaults()
        self._queries_by_op: dict[str, int] = defaultdict(int)
        self._listed: list[FlowOps] = []  # flow entries charged again since the last fold (`queries_by_op`)
        self.queries = 0
        self.total_latency = 0.0
        self.latency_ewma = 0.0
        self.latency = LatencyHistogram()

    # ------------------------------------------------------------ cost
    def set_size_of(self, size_of: Callable[[str], float], by_op: bool = True) -> None:
        """Table rows an operation scans, e.g. lambda op: len(catalog) for "getReplicas".

        `by_op=False` says the size is the same for every operation (the twin's DBs: one table
        size per database), so a flow entry of several operations asks for it once."""
        self._size_of = size_of
        self._size_by_op = by_op

    def set_table_rows(self, rows: float) -> None:
        """A single table size for every operation (used when no `size_of` is set)."""
        self._table_rows = float(rows)

    @property
    def size_by_op(self) -> bool:
        """Whether the table an operation scans has its own size (else one size per database)."""
        return self._size_by_op

    @property
    def slow_factor(self) -> float:
        return self._slow_factor

    def service_mean(self, op: str, rows: int = 1) -> float:
        """Mean service time in seconds:
        (base_query_ms + ms_per_million_rows x table_rows/1e6 + ms_per_row x (rows-1))
        x slowdown x db_slow factor / 1000."""
        return self._mean_at(self._size_of(op) if self._size_of is not None else self._table_rows, rows)

    def _mean_at(self, size: float, rows: int = 1) -> float:
        """`service_mean` when the table `op` scans holds `size` rows (initial rows aside)."""
        table_rows = size + self.initial_rows
        ms = self.base_query_ms + self.ms_per_million_rows * table_rows / 1e6
        if rows > 1:
            ms += self.ms_per_row * (rows - 1)
        return ms * self.slowdown * self._slow_factor / 1000.0

    def demand(self, op: str, queries: int = 1, rows: int = 1) -> float:
        """Mean service seconds of `queries` round trips of `op` returning `rows` rows in all."""
        demand = queries * self.service_mean(op, 1)
        if rows > queries:
            demand += self.ms_per_row * (rows - queries) * self.slowdown * self._slow_factor / 1000.0
        return demand

    def _draw_service(self, mean: float, queries: int = 1) -> float:
        cv = self.service_cv
        if cv <= 0:
            return mean
        shape = queries / (cv * cv)  # a sum of `queries` gamma service times
        return float(self._service_rng.gamma(shape, mean / shape))

    # ------------------------------------------------------------ queries
    @property
    def pools(self) -> list[FlowPool]:
        """The flow pools a query holds: its connection and a core of its host."""
        return self._pools

    def query(self, op: str, rows: int = 1, queries: int = 1) -> Generator[simpy.Event, object, float]:
        """Run `queries` back-to-back round trips exactly; returns their latency (queueing + service).
        Their cost, db_slow factor included, is fixed when the query is issued."""
        start = self.env.now
        service = self._draw_service(self.demand(op, queries, rows) if queries > 1 else self.service_mean(op, rows), queries)
        for pool in self.pools:
            pool.note_exact(service)
        pools = [self.connections] if self.server is None else [self.connections, self.server.cores]
        yield from hold_all(self.env, pools, service)
        if self.server is not None:
            self.server.account(service)
        self._record(op, self.env.now - start, queries)
        return self.env.now - start

    def flow_entry(self, flow: FlowOps) -> float:
        """Charge one caller's round trips of several operations (`flow`) as ONE fluid entry on the
        connection and host pools; returns their total latency.

        Demand is the sum of the operations' demands and every round trip meets the same M/M/c
        wait, so this equals one entry per operation up to the order of floating-point sums; the
        latency histogram still gets each operation's own service time."""
        size = self._size_of(flow.size_op) if self._size_of is not None else self._table_rows
        if size == flow._size and self._slow_factor == flow._slow and not self._size_by_op:
            demand, services = flow._demand, flow._services  # what `_flow_demand` would compute again
        else:
            demand, services = self._flow_demand(flow, size)
        queries = flow.queries
        if flow.listed:  # charged before: its per-operation counts wait for the next fold
            flow.repeats += 1
        else:
            self._list(flow)
        waited, prob = charge_alike(self._pools, demand, queries)
        server = self.server
        if server is not None:
            server.calls += queries
            server.cpu_seconds += demand
        latency = demand + waited
        self.queries += queries
        self.total_latency += latency
        per = latency / queries
        self.latency_ewma += EWMA_ALPHA * (per - self.latency_ewma) if self.queries > queries else per
        wait = waited / queries
        if prob < SHORT_TAIL:  # add_queued's own first test, once for all the operations
            histogram = self.latency  # (its methods called on it: native calls when compiled)
            for service, n in services:
                histogram.add(service + wait, n)
        else:
            histogram = self.latency
            for service, n in services:
                histogram.add_queued(service, wait, prob, n)
        return latency

    @property
    def queries_by_op(self) -> dict[str, int]:
        """Round trips per operation (table) so far. A flow entry charged again only counts its repeats
        (one add instead of one per operation); they are folded in here, so the counts (integers) and the
        order in which operations first appear are those of counting every entry at once. A copy: a kept
        reference to the live counts would miss the repeats charged after it was taken."""
        self._fold()
        return dict(self._queries_by_op)

    def count_queries(self, op: str, queries: int) -> None:
        """`queries` round trips of `op` charged outside a flow entry (a stream's calls)."""
        self.queries += queries
        self._queries_by_op[op] += queries

    def _list(self, flow: FlowOps) -> None:
        """A flow entry's first charge since the last fold: counted now (its operations enter the counts in
        charge order), its repeats from now on only counted up on it."""
        by_op = self._queries_by_op
        for op, n, _ in flow.ops:
            by_op[op] += n
        flow.listed = True
        listed = self._listed
        listed.append(flow)
        if len(listed) >= LISTED_FLOWS:  # bounded: one-off entries (a metered route dropped) are let go
            self._fold()

    def _fold(self) -> None:
        by_op = self._queries_by_op
        for flow in self._listed:
            repeats = flow.repeats
            if repeats:
                for op, n, _ in flow.ops:
                    by_op[op] += n * repeats
                flow.repeats = 0
            flow.listed = False
        self._listed.clear()

    def _flow_demand(self, flow: FlowOps, size: float) -> tuple[float, Sequence[tuple[float, int]]]:
        """(server-seconds of the round trips, [(service time, round trips)] for the histogram), the table
        `flow`'s first operation scans holding `size` rows.

        With one table size per database the service time is asked once, and `flow` keeps the result with
        the size and db_slow factor it was computed at; an operation without rows beyond one per round trip
        adds exactly nothing (0.0), so its sums are those of the general case."""
        ops = flow.ops
        scale = self.slowdown * self._slow_factor / 1000.0
        services: Sequence[tuple[float, int]]
        if self._size_by_op:
            services = [(self.service_mean(op, 1) + self.ms_per_row * max(0, rows - n) * scale / n, n) for op, n, rows in ops]
            demand = 0.0
            for service, n in services:
                demand += service * n
            return demand, services
        one = self._mean_at(size)
        queries, extra_rows = flow.queries, flow.extra_rows
        if len(ops) == 1:
            _, n, rows = ops[0]
            service = one + self.ms_per_row * (rows - n) * scale / n if rows > n else one
            demand, services = service * n, ((service, n),)
        else:
            demand = queries * one + self.ms_per_row * extra_rows * scale
            if not extra_rows:
                services = ((one, queries),)
            else:
                services = [(one + self.ms_per_row * max(0, rows - n) * scale / n, n) for _, n, rows in ops]
        flow._size, flow._slow, flow._demand, flow._services = size, self._slow_factor, demand, services
        return demand, services

    def _record(self, op: str, latency: float, queries: int = 1) -> None:
        self.queries += queries
        self._queries_by_op[op] += queries
        self.total_latency += latency
        per = latency / queries
        self.latency_ewma += EWMA_ALPHA * (per - self.latency_ewma) if self.queries > queries else per
        self.latency.add(per, queries)

    def mean_latency(self) -> float:
        return self.total_latency / self.queries if self.queries else 0.0

    def latency_percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of query latency (per round trip), from the latency histogram."""
        return self.latency.percentile(q)

    # ------------------------------------------------------------ faults
    def on_slow(self, params: dict[str, Any], active: bool) -> None:
        """Fault "db_slow": service times x params["factor"] (default 4) while active."""
        self._slow.edge(float(params.get("factor", 4.0)), active)
        self._slow_factor = self._slow.product()
        self.sim.log.log(self.env.now, "db.status", f"db:{self.name}", "Slow" if self._slow else "Normal", "", self.slow_factor)

    def on_down(self, params: dict[str, Any], active: bool) -> None:
        """Fault "db_down": no connection is granted while down; queries wait."""
        self._down.edge(1, active)
        self.flow.set_capacity(0 if self._down else self.total_connections)
        self.sim.log.log(self.env.now, "db.status", f"db:{self.name}", "Down" if self._down else "Up")
