"""DIRAC services as costs: every RPC holds a thread of a service instance, uses CPU on
its host and makes round trips to the MySQL databases behind it.

The pure logic (catalog, TransformationDB...) reports each call it served through a
`meter(db, op, rows)` hook: one metered call is one RPC (one round trip on the service,
`QUERIES_PER_CALL` MySQL round trips). A simulated process then *pays* for it before it
yields again: `yield from services.pay("TransformationManager")`. Because simpy runs one
process at a time between yields, whatever was metered since the process last yielded is
its own work. Job-side RPCs that have no pure store (status updates, parameters,
heartbeats, accounting) come from the footprint table (`twin/dirac/footprint.py`).

Flow-level charging (docs/architecture.md, "Service layer"): a batch of RPCs from one
caller is charged on every pool it touches (service threads, host cores, DB connections,
DB host cores). While all of them are cold, the batch costs the sum of service times plus
the analytic M/M/c waits and at most ONE simpy timeout; a hot pool (near saturation, a
fault, queued exact work) makes the batch queue exactly, call by call in FIFO order, with
DIRAC's RPC timeout. Heartbeats of running jobs are background streams (rates, no events).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Generator, Iterable, Iterator, Sequence

from twin.dirac.footprint import DB_HOME, QUERIES_PER_CALL, RPCS
from twin.engine.alarm import sleep
from twin.engine.queueing import FlowPool, LatencyHistogram, ServerPool, any_hot
from twin.grid.servers import CoreServer, Database, FlowOps

#: Which database each service reads (DIRAC's default layout), for `call(service, op)`.
SERVICE_DB: Final = {
    "JobManager": "JobDB",
    "JobStateUpdate": "JobDB",
    "JobMonitoring": "JobDB",
    "Matcher": "JobDB",
    "TransformationManager": "TransformationDB",
    "FileCatalog": "FileCatalogDB",
    "ReqManager": "ReqDB",
    "StorageManager": "StorageManagementDB",
    "DataStore": "AccountingDB",
    "PilotManager": "PilotAgentsDB",
    "FTS3Manager": "FTS3DB",
}

DEFAULT_MAX_THREADS: Final = 15  # DIRAC Core/DISET/private/ServiceConfiguration.py:getMaxThreads default
DEFAULT_RPC_TIMEOUT: Final = 600.0  # DIRAC Core/DISET/private/BaseClient.py:_setTimeout default
DEFAULT_CONNECTION_TIMEOUT: Final = 10.0  # DIRAC Core/DISET/__init__.py, the client's connect + TLS handshake
DEFAULT_MAX_WAITING: Final = 100  # DIRAC ServiceConfiguration.getMaxWaitingPetitions default (ServiceReactor throttling)
#: Thread time an abandoned connection costs when its turn comes: the worker's TLS accept fails on the socket
#: the client closed (Service._processInThread -> handshake). Assumption: one failed handshake, ~2 ms.
ABANDONED_HANDSHAKE_S: Final = 0.002

Batch = dict[tuple[str, str], list[int]]  # (db, op) -> [rpcs, queries, rows]
METERED_ROUTES: Final = 64  # metered batch shapes kept resolved, the oldest dropped first (a cycle's batch varies with its rows)


def _batch() -> Batch:
    return defaultdict(_no_calls)


def _no_calls() -> list[int]:
    return [0, 0, 0]


@dataclass(eq=False)  # identity: a route keys the pools it checks by instance
class ServiceInstance:
    """One running copy of a DIRAC service on a host, with its thread pool (MaxThreads)."""

    service: str
    server: CoreServer
    threads: FlowPool
    calls: int = 0
    timeouts: int = 0
    retries: int = 0  # connection attempts re-sent by the client (BaseClient._connect)
    failed: int = 0  # calls whose every connection attempt failed
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


class StreamRates:
    """What every stream of one RPC kind and period, opened on one service instance at one DB load,
    charges: its (pool, rate) table (server-seconds per second) and where its calls are counted. Streams
    opened while the tables have the same size share one, so a running job's heartbeats cost a handle.
    `means`: the queries' mean service times the rates were computed from (the tables' size then)."""

    __slots__ = ("kind", "period", "service", "queries", "means", "rates")

    def __init__(self, kind: str, period: float, service: str, queries: list[tuple[Database, str, int]],
                 means: list[float], rates: tuple[tuple[FlowPool, float], ...]) -> None:
        self.kind = kind
        self.period = period
        self.service = service
        self.queries = queries
        self.means = means
        self.rates = rates


class Stream:
    """A background flow of RPCs (a running job's heartbeats) charged as rates: its shared rate table and
    the time from which its calls are still to be counted."""

    __slots__ = ("shared", "start")

    def __init__(self, shared: StreamRates, start: float) -> None:
        self.shared = shared
        self.start = start


class _Route:
    """A batch of `calls` RPCs to one service resolved on the topology, once for a footprint phase:
    the batch (footprint routes only: `rpc` merges pending work into it), `parts` per (database, op)
    for exact queueing, `flows` per database (db, its `FlowOps`) for fluid charging, the databases'
    pools, the service CPU, and per service instance the pools a call asks for heat, in the order it
    meets them (`checks`, a table shared by the routes to the same pools)."""

    __slots__ = ("service", "calls", "batch", "parts", "flows", "pools", "rows", "cpu", "_checks")

    def __init__(self, service: str, calls: int, batch: Batch | None, parts: list[tuple[Database, str, int, int]],
                 flows: list[tuple[Database, FlowOps]], pools: Sequence[FlowPool],
                 rows: int, cpu: float, checks: dict[ServiceInstance | None, tuple[FlowPool, ...]]) -> None:
        self.service = service
        self.calls = calls
        self.batch = batch
        self.parts = parts
        self.flows = flows
        self.pools = pools
        self.rows = rows
        self.cpu = cpu
        self._checks = checks

    def checks(self, instance: ServiceInstance | None) -> tuple[FlowPool, ...]:
        """The service's threads and host, then the databases' pools not on that host."""
        checks = self._checks.get(instance)
        if checks is None:
            if instance is None:
                checks = tuple(self.pools)
            else:
                host = instance.server.flow
                checks = (instance.threads, host, *(pool for pool in self.pools if pool is not host))
            self._checks[instance] = checks
        return checks


class ServiceLayer:
    """Routes RPCs to service instances, their hosts and databases; charges them flow-level."""

    def __init__(self, grid: Any, cpu_ms_per_call: float = 5.0, cpu_us_per_row: float = 2.0,
                 max_threads: int = DEFAULT_MAX_THREADS, rpc_timeout: float = DEFAULT_RPC_TIMEOUT,
                 flow: bool = True, connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
                 max_waiting: int = DEFAULT_MAX_WAITING) -> None:
        self.grid = grid
        self.env = _env_of(grid)
        self.cpu_ms_per_call = cpu_ms_per_call
        self.cpu_us_per_row = cpu_us_per_row
        self.rpc_timeout = rpc_timeout
        self.connection_timeout = connection_timeout
        self.max_waiting = max_waiting
        self.flow = flow
        self._pending: Batch = _batch()
        self.instances: dict[str, list[ServiceInstance]] = defaultdict(list)
        for server in grid.servers.values():
            for service in server.services:
                pool = ServerPool(server.env, max_threads, f"threads:{service}@{server.name}")
                self.instances[service].append(ServiceInstance(service, server, FlowPool(pool)))
        self._round_robin = {service: itertools.cycle(range(len(hosts))) for service, hosts in self.instances.items()}
        self._sole = {service: hosts[0] for service, hosts in self.instances.items() if len(hosts) == 1}
        self.calls: dict[str, int] = defaultdict(int)
        self.calls_by_kind: dict[str, int] = defaultdict(int)
        self._muted = 0
        self._deferred: dict[str, Batch] = {}
        self._streams_open = 0
        self._background: list[Stream | None] = []
        self._route_cache: dict[tuple[tuple[str, int], ...], list[_Route]] = {}
        self._metered_routes: dict[tuple[Any, ...], _Route] = {}
        self._checks_by_pools: dict[tuple[FlowPool, ...], dict[ServiceInstance | None, tuple[FlowPool, ...]]] = {}
        self._stream_queries: dict[str, list[tuple[Database, str, int]]] = {}
        self._rpc_keys: dict[str, tuple[tuple[tuple[str, str], int], ...]] = {}  # kind -> ((db, table), queries) per query
        self._stream_rates: dict[tuple[str, float, ServiceInstance | None], StreamRates] = {}
        if not flow:
            for flow_pool in self.flow_pools():
                flow_pool.set_exact(True)

    # ------------------------------------------------------------ metering (pure logic)
    def meter(self, db: str, op: str, rows: int = 1, queries: int | None = None) -> None:
        """One call served by pure logic (one RPC); paid for by the next `pay` of the running process.
        `queries`: MySQL round trips of this call when they depend on it (a bulk call looping over its rows)."""
        if not self._muted:
            key = (db, op)
            entry = self._pending[key]
            entry[0] += 1
            entry[1] += QUERIES_PER_CALL.get(key, 1) if queries is None else queries
            entry[2] += rows if rows > 1 else 1

    def meter_rpc(self, kind: str, n: int = 1, rows: int = 1) -> None:
        """`n` calls of a footprint RPC (`Service.method`), paid with the caller's next `pay`."""
        if self._muted or n <= 0:
            return
        self.calls_by_kind[kind] += n
        keys = self._rpc_keys.get(kind)
        if keys is None:
            keys = self._rpc_keys[kind] = tuple(((db, table), queries) for db, table, queries in RPCS[kind].queries)
        pending = self._pending
        per_query = n * rows if rows > 1 else n  # rows of one query
        counted = False  # the RPC itself counts once, on its first query's entry
        for key, queries in keys:
            entry = pending[key]
            if not counted:
                entry[0] += n
                counted = True
            entry[1] += n * queries
            entry[2] += per_query * queries

    @contextmanager
    def unmetered(self) -> Iterator[None]:
        """The twin's own bookkeeping (initial data, finish checks) reads the DBs without loading them."""
        self._muted += 1
        try:
            yield
        finally:
            self._muted -= 1

    def defer(self, service: str) -> None:
        """Work metered in a callback (no process to pay now) is billed to `service` at its next `pay`."""
        deferred = self._deferred.get(service)
        if deferred is None:
            deferred = self._deferred[service] = _batch()
        for key, entry in self._pending.items():
            _add(deferred[key], entry)
        self._pending = _batch()

    # ------------------------------------------------------------ paying
    def pay(self, service: str) -> Iterable[Any]:
        """Charge the pending metered work (and what was deferred to `service`) as RPCs to `service`
        (`yield from` it; nothing pending: nothing to wait for and no generator)."""
        if not self._join_deferred(service):
            return ()
        return self._pay_pending(service)

    def _join_deferred(self, service: str) -> Batch:
        """The pending metered work, with what was deferred to `service` joined in."""
        pending = self._pending
        deferred = self._deferred.pop(service, None)
        if deferred:
            for key, entry in deferred.items():
                _add(pending[key], entry)
        return pending

    def _pay_pending(self, service: str) -> Generator[Any, Any, None]:
        """Take the pending work only when the caller iterates: a `pay` not `yield from`-ed keeps it pending.
        Only the pending work (what was deferred to `service` joined it in `pay`): what is deferred later
        waits for the next `pay`, and this call is one RPC even if another caller has taken the work since."""
        pending, self._pending = self._pending, _batch()
        yield from self._pay_route(self._metered_route(service, pending))

    def call(self, service: str, op: str, rows: int = 1) -> Generator[Any, Any, None]:
        """One RPC to `service` doing `op` on `rows` rows of its database."""
        self.meter(SERVICE_DB.get(service, service), op, rows)
        yield from self.pay(service)

    def rpc(self, kinds: Iterable[tuple[str, int]]) -> Generator[Any, Any, None]:
        """A caller's sequence of footprint RPCs (kind, count), paid in one go per service.

        Work the caller metered since it last yielded rides with the first service's batch
        (as `call` does), so it is paid by its own process, also inside an agent's thread pool."""
        yield from self._pay(self.rpc_routes(kinds))

    # ------------------------------------------------------------ paying without a generator
    def rpc_routes(self, kinds: Iterable[tuple[str, int]]) -> list[_Route]:
        """What `rpc(kinds)` pays, one route per service in call order (counted now), for a caller that
        is no generator (a job record, twin/dirac/wms/jobagent.py): it charges them in turn with `charge_now`."""
        routes = self._routes(kinds)
        if self._pending and routes:
            first = routes[0]
            merged = _batch()
            for source in (first.batch or {}, self._pending):
                for key, entry in source.items():
                    _add(merged[key], entry)
            calls = first.calls + sum(entry[0] for entry in self._pending.values())
            self._pending = _batch()
            routes = [self._route(first.service, calls, merged), *routes[1:]]
        return routes

    def pay_routes(self, service: str) -> list[_Route]:
        """What `pay(service)` pays (the pending metered work and what was deferred to `service`), taken now."""
        pending = self._join_deferred(service)
        if not pending:
            return []
        self._pending = _batch()
        return [self._metered_route(service, pending)]

    def charge_now(self, route: _Route) -> float | Generator[Any, Any, None]:
        """One route as `_pay` charges it: while every pool it meets is cold it is charged now as a flow and
        the latency its caller waits is returned (one timeout, none if 0.0); otherwise (a hot pool, exact mode)
        the generator that queues it call by call, which the caller drives to its end."""
        instance = self._sole.get(route.service) or self._instance(route.service)
        if self.flow and not any_hot(route._checks.get(instance) or route.checks(instance), self.env._now):
            return self._charge_fluid(route, instance)
        return self._charge_exact(route, instance)

    def charge_async(self, kinds: Iterable[tuple[str, int]]) -> float:
        """Footprint RPCs whose latency no simulated caller waits for (fluid in every mode); returns it."""
        latency = 0.0
        for route in self._routes(kinds):
            latency += self._charge_fluid(route, self._instance(route.service))
        return latency

    def start_stream(self, kind: str, period: float) -> Stream | None:
        """One RPC of `kind` every `period` seconds until `stop_stream` (a Watchdog's heartbeats).

        The rates are those of the calls at the tables' size now; streams opened one after the other at
        the same size share them (`StreamRates`, the last one kept per kind, period and instance), so a
        stream is a two-field handle, and each pool gets back at `stop_stream` the very rate its start
        added (the pools' background sums are those of one rate table per stream)."""
        if self._muted or period <= 0:
            return None
        instance = self._instance(RPCS[kind].service)
        queries = self._resolved_queries(kind)
        means = _service_means(queries)
        key = (kind, period, instance)
        shared = self._stream_rates.get(key)
        if shared is None or shared.means != means:
            shared = self._stream_rates[key] = self._stream_table(kind, period, instance, queries, means)
        for pool, rate in shared.rates:
            pool.add_stream(rate)
        self._streams_open += 1
        return Stream(shared, self.env._now)

    def _stream_table(self, kind: str, period: float, instance: ServiceInstance | None,
                      queries: list[tuple[Database, str, int]], means: list[float]) -> StreamRates:
        """The (pool, rate) table of a stream: one rate per pool (a stream's queries to one DB share its pools)."""
        by_pool: dict[FlowPool, float] = {}
        total_db = 0.0
        for (db, _, n), mean in zip(queries, means):
            demand = n * mean / period  # Database.demand(table, n, n) / period
            total_db += demand
            for pool in db.pools:
                by_pool[pool] = by_pool.get(pool, 0.0) + demand
        if instance is not None:
            cpu = self.cpu_ms_per_call / 1000.0 / period
            host = instance.server.flow
            by_pool[host] = by_pool.get(host, 0.0) + cpu
            by_pool[instance.threads] = by_pool.get(instance.threads, 0.0) + cpu + total_db
        return StreamRates(kind, period, RPCS[kind].service, queries, means, tuple(by_pool.items()))

    def start_background(self, rates: dict[str, float]) -> list[Stream | None]:
        """Background RPCs for the whole run (web portal, monitoring, user jobs): kind -> calls/s."""
        self._background = [self.start_stream(kind, 1.0 / rate) for kind, rate in sorted(rates.items())]
        return self._background

    def settle(self) -> None:
        """Count the background calls made so far (idempotent: a stream is counted up to now once)."""
        now = self.env.now
        for stream in self._background:
            if stream is not None:
                n = int((now - stream.start) / stream.shared.period)
                self._count_stream(stream, now)
                stream.start += n * stream.shared.period

    def stop_stream(self, stream: Stream | None) -> None:
        if stream is None:
            return
        for pool, rate in stream.shared.rates:
            pool.add_stream(-rate)
        self._streams_open -= 1
        self._count_stream(stream, self.env._now)

    # ------------------------------------------------------------ internals
    def _routes(self, kinds: Iterable[tuple[str, int]]) -> list[_Route]:
        if self._muted:
            return []
        by_kind = self.calls_by_kind
        if isinstance(kinds, tuple):  # the footprint's constant phases: resolve them once
            routes = self._route_cache.get(kinds)
            if routes is None:
                routes = self._route_cache[kinds] = self._build_routes(kinds)
            for kind, n in kinds:
                by_kind[kind] += n
            return routes
        for kind, n in kinds:
            by_kind[kind] += n
        return self._build_routes(kinds)

    def _build_routes(self, kinds: Iterable[tuple[str, int]]) -> list[_Route]:
        return [self._route(service, calls, batch) for service, calls, batch in self._build_batches(kinds)]

    def _build_batches(self, kinds: Iterable[tuple[str, int]]) -> list[tuple[str, int, Batch]]:
        by_service: dict[str, tuple[list[int], Batch]] = {}
        for kind, n in kinds:
            if n <= 0:
                continue
            rpc = RPCS[kind]
            count, batch = by_service.setdefault(rpc.service, ([0], _batch()))
            count[0] += n
            for db, table, queries in rpc.queries:
                _add(batch[(db, table)], (0, n * queries, n * queries))
        return [(service, count[0], batch) for service, (count, batch) in by_service.items()]

    def _count_stream(self, stream: Stream, until: float) -> None:
        shared = stream.shared
        n = int((until - stream.start) / shared.period)
        if n <= 0:
            return
        self.calls_by_kind[shared.kind] += n
        self.calls[shared.service] += n
        for db, table, queries in shared.queries:
            db.count_queries(table, n * queries)

    def _resolved_queries(self, kind: str) -> list[tuple[Database, str, int]]:
        """(database, table, round trips) of an RPC kind, on the databases the topology has."""
        resolved = self._stream_queries.get(kind)
        if resolved is None:
            resolved = self._stream_queries[kind] = [
                (db, table, queries) for name, table, queries in RPCS[kind].queries if (db := self._database(name)) is not None]
        return resolved

    def _instance(self, service: str) -> ServiceInstance | None:
        """Client-side failover over the service's URLs: round-robin, skipping hosts that are down."""
        sole = self._sole.get(service)
        if sole is not None:
            return sole
        hosts = self.instances.get(service)
        if not hosts:
            return None
        turn = self._round_robin[service]
        for _ in range(len(hosts)):
            instance = hosts[next(turn)]
            if instance.server.up:
                return instance
        return hosts[next(turn)]

    def _database(self, name: str) -> Database | None:
        databases = self.grid.databases
        return databases.get(name) or databases.get(DB_HOME.get(name, ""))

    def _pay(self, routes: Iterable[_Route]) -> Generator[Any, Any, None]:
        """A caller's batches, one after the other: each flow (<= 1 timeout) unless a pool it meets is hot."""
        for route in routes:
            yield from self._pay_route(route)

    def _pay_route(self, route: _Route) -> Generator[Any, Any, None]:
        cost = self.charge_now(route)
        if isinstance(cost, float):
            if cost > 0.0:
                yield sleep(self.env, cost)
        else:
            yield from cost

    def _metered_route(self, service: str, batch: Batch) -> _Route:
        """The route of a metered batch; batches of the same shape recur (one output's registration per job),
        so routes are kept by shape, at most `METERED_ROUTES` of them."""
        shape = (service, tuple(batch), *itertools.chain.from_iterable(batch.values()))  # the keys, then their counts
        route = self._metered_routes.get(shape)
        if route is None:
            if len(self._metered_routes) >= METERED_ROUTES:  # mostly one-off shapes: the recurring ones come back
                del self._metered_routes[next(iter(self._metered_routes))]
            calls = max(1, sum(entry[0] for entry in batch.values()))
            route = self._metered_routes[shape] = self._route(service, calls, batch, keep_batch=False)
        return route

    def _route(self, service: str, calls: int, batch: Batch, keep_batch: bool = True) -> _Route:
        """How a batch is charged: per (database, op) for the exact path, per database for the flow path.
        `keep_batch=False`: a metered route, never merged with other work, need not hold its batch."""
        parts: list[tuple[Database, str, int, int]] = []
        flows: dict[Database, list[Any]] = {}
        total_rows = 0
        for (name, op), entry in batch.items():
            queries = entry[1]
            if not queries or (db := self._database(name)) is None:
                continue
            rows = entry[2]
            parts.append((db, op, queries, rows))
            total_rows += rows
            flow = flows.get(db)
            if flow is None:
                flow = flows[db] = [db, [], 0, 0]
            flow[1].append((op, queries, rows))
            flow[2] += queries
            flow[3] += max(0, rows - queries)
        pools: Sequence[FlowPool]
        if len(flows) == 1:
            pools = next(iter(flows)).pools
        else:
            pools = tuple(dict.fromkeys(pool for db in flows for pool in db.pools))
        cpu = calls * self.cpu_ms_per_call / 1000.0 + total_rows * self.cpu_us_per_row / 1e6
        checks = self._checks_by_pools.setdefault(tuple(pools), {})
        return _Route(service, calls, batch if keep_batch else None, parts,
                      [(db, FlowOps(*flow)) for db, *flow in flows.values()], pools, total_rows, cpu, checks)

    def _charge_fluid(self, route: _Route, instance: ServiceInstance | None) -> float:
        """The batch as fluid: one flow entry per database it touches and one on the service's threads and host.

        The calls and queries counted, the service demand and the M/M/c waits are those of the
        calls one by one; what is saved is the Python bookkeeping of one entry per (database, table)."""
        latency = 0.0
        for db, flow in route.flows:
            latency += db.flow_entry(flow)
        calls = route.calls
        self.calls[route.service] += calls
        if instance is None:
            return latency
        cpu = route.cpu
        server = instance.server
        latency += cpu + server.flow.charge(cpu, calls)
        server.calls += calls
        server.cpu_seconds += cpu
        threads = instance.threads
        waited = threads.charge(latency, calls)
        instance.calls += calls
        instance.latency.add_queued(latency / calls, waited / calls, threads._wait_cache[1], calls)
        return latency + waited

    def _charge_exact(self, route: _Route, instance: ServiceInstance | None) -> Generator[Any, Any, None]:
        """Per-call queueing: a service thread (connected as DIRAC's client does), host CPU, then each query in turn."""
        env = self.env
        start = env.now
        service, calls, parts = route.service, route.calls, route.parts
        self.calls[service] += calls
        grant = None
        if instance is not None:
            instance, grant = yield from self._connect(service, instance)
        try:
            held = env.now
            if instance is not None:
                yield from instance.server.call(route.cpu)
                instance.server.calls += calls - 1
            for db, op, queries, rows in parts:
                yield from db.query(op, rows, queries)
            if instance is not None:
                instance.threads.note_exact(env.now - held)
        finally:
            if instance is not None:
                instance.threads.pool.release() if grant is None else instance.threads.pool.cancel(grant)
        if instance is not None:
            instance.calls += calls
            instance.latency.add((env.now - start) / calls, calls)
            if env.now - held > self.rpc_timeout:
                instance.timeouts += 1  # InnerRPCClient.executeRPC: receiveData timed out, no re-send; the server finished

    def _connect(self, service: str, first: ServiceInstance) -> Generator[Any, Any, tuple[ServiceInstance, Any]]:
        """DISET's BaseClient._connect: (instance, grant) once a service thread has taken the connection.

        The service's worker thread does the TLS handshake (Service._processInThread, split handshake), so a
        client queued behind busy threads fails its connect after DEFAULT_CONNECTION_TIMEOUT; a service whose
        queue holds more than MaxWaitingPetitions refuses new connections (ServiceReactor throttling); a host that
        is down refuses at once. A failed attempt bans the URL and re-sends to the next one; once every URL is
        banned the client sleeps 3 s / nbOfUrls (2 s for one URL) and starts over, nbOfRetry x nbOfUrls attempts
        in all (nbOfRetry 3, or 2 with more than 2 URLs). The abandoned connection stays in the service's queue
        and takes a thread for a failed handshake when its turn comes. When every attempt failed the caller gets
        an error; *simplified*: the twin's callers have no error path, so the caller's own retry of the operation
        is one more connection that waits for its turn without a timeout."""
        env = self.env
        hosts = self.instances[service]
        n_urls = len(hosts)
        attempts = (2 if n_urls > 2 else 3) * n_urls
        order = hosts.index(first)
        banned: set[int] = set()
        for attempt in range(attempts):
            instance = hosts[order]
            if attempt:
                instance.retries += 1
            pool = instance.threads.pool
            if instance.server.up and pool.queue_length <= self.max_waiting:
                if pool.try_take():
                    return instance, None
                grant = pool.acquire()
                if not grant.triggered:
                    yield env.any_of([grant, env.timeout(self.connection_timeout)])
                if grant.triggered:
                    return instance, grant
                grant.callbacks.append(partial(self._abandoned, pool, grant))
            banned.add(order)
            if len(banned) == n_urls:
                banned.clear()
                if attempt < attempts - 1:
                    yield env.timeout(3.0 / n_urls if n_urls > 1 else 2.0)
            order = next((order + k) % n_urls for k in range(1, n_urls + 1) if (order + k) % n_urls not in banned)
        instance.failed += 1
        grant = instance.threads.pool.acquire()
        if not grant.triggered:
            yield grant
        return instance, grant

    def _abandoned(self, pool: ServerPool, grant: Any, _event: Any = None) -> None:
        """A worker thread picks up a connection its client has given up on: the handshake fails, the thread is free."""
        self.env.timeout(ABANDONED_HANDSHAKE_S).callbacks.append(lambda _ev: pool.cancel(grant))

    # ------------------------------------------------------------ statistics
    def register_gauges(self, sim: Any) -> None:
        """Per service instance: calls/s, busy threads and waiting callers (interval means)."""
        from twin.grid.grid import RateGauge

        for service, hosts in sorted(self.instances.items()):
            for inst in hosts:
                key = f"{service}@{inst.server.name}"
                sim.metrics.gauge(f"svc.calls_per_s[{key}]", RateGauge(sim, partial(getattr, inst, "calls")))  # read live
                sim.metrics.gauge(f"svc.busy_threads[{key}]", RateGauge(sim, inst.threads.busy_seconds))
                sim.metrics.gauge(f"svc.queue[{key}]", RateGauge(sim, inst.threads.queue_seconds))

    def flow_pools(self) -> list[FlowPool]:
        """Every pool the layer charges: service threads, host cores, DB connections."""
        pools = [inst.threads for hosts in self.instances.values() for inst in hosts]
        pools += [server.flow for server in self.grid.servers.values()]
        pools += [db.flow for db in self.grid.databases.values()]
        return pools


def _service_means(queries: list[tuple[Database, str, int]]) -> list[float]:
    """Mean service time of one round trip of each (database, table, round trips) now; asked once per
    database when its tables have one size (`Database.size_by_op` false), as the twin's are."""
    means: list[float] = []
    asked: Database | None = None
    mean = 0.0
    for db, table, _ in queries:
        if db is not asked or db.size_by_op:
            mean, asked = db.service_mean(table, 1), db
        means.append(mean)
    return means


def _add(entry: list[int], other: Sequence[int]) -> None:
    entry[0] += other[0]
    entry[1] += other[1]
    entry[2] += other[2]


def _env_of(grid: Any) -> Any:
    for server in grid.servers.values():
        return server.env
    for db in grid.databases.values():
        return db.env
    return grid.network.sim.env
