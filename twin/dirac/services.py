"""DIRAC services as costs: every call uses CPU on the core server hosting the service
and queries on the MySQL database behind it.

The pure logic (catalog, TransformationDB, JobDB...) reports the work it did through a
`meter(db, op, rows)` hook. A simulated process then *pays* for it before it yields
again: `yield from services.pay("TransformationManager")`. Because simpy runs one
process at a time between yields, whatever was metered since the process last yielded
is its own work. Costs are aggregated per (db, op) so a cycle that touches 10^5 files
costs one long query, not 10^5 events: load is modelled, not re-enacted row by row.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Generator, Iterator

#: Which database each service reads (DIRAC's default layout).
SERVICE_DB = {
    "JobManager": "JobDB",
    "JobStateUpdate": "JobDB",
    "JobMonitoring": "JobDB",
    "Matcher": "JobDB",
    "TransformationManager": "TransformationDB",
    "FileCatalog": "FileCatalogDB",
    "ReqManager": "ReqDB",
    "StorageManager": "StorageManagementDB",
    "DataStore": "AccountingDB",
}


class ServiceLayer:
    """Routes service calls to their host server and database, and bills metered work."""

    def __init__(self, grid: Any, cpu_ms_per_call: float = 5.0, cpu_us_per_row: float = 2.0) -> None:
        self.grid = grid
        self.cpu_ms_per_call = cpu_ms_per_call
        self.cpu_us_per_row = cpu_us_per_row
        self._pending: dict[tuple[str, str], int] = defaultdict(int)
        self._hosts: dict[str, list[Any]] = defaultdict(list)
        for server in grid.servers.values():
            for service in server.services:
                self._hosts[service].append(server)
        self.calls: dict[str, int] = defaultdict(int)
        self._muted = 0
        self._deferred: dict[str, dict[tuple[str, str], int]] = {}

    def meter(self, db: str, op: str, rows: int = 1) -> None:
        """Record work done by pure logic; paid for by the next `pay` of the running process."""
        if not self._muted:
            self._pending[(db, op)] += max(1, rows)

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
        deferred = self._deferred.setdefault(service, defaultdict(int))
        for key, rows in self._pending.items():
            deferred[key] += rows
        self._pending = defaultdict(int)

    def pay(self, service: str) -> Generator[Any, Any, None]:
        """Charge the pending metered work (and what was deferred to `service`) to its server and the databases."""
        pending = self._pending
        for key, rows in self._deferred.pop(service, {}).items():
            pending[key] += rows
        if not pending:
            return
        self._pending = defaultdict(int)
        rows_total = sum(pending.values())
        yield from self._cpu(service, rows_total)
        for (db, op), rows in pending.items():
            database = self.grid.databases.get(db)
            if database is not None:
                yield from database.query(op, rows)

    def call(self, service: str, op: str, rows: int = 1) -> Generator[Any, Any, None]:
        """One RPC to `service` doing `op` on `rows` rows of its database."""
        self.meter(SERVICE_DB.get(service, service), op, rows)
        yield from self.pay(service)

    def _cpu(self, service: str, rows: int) -> Generator[Any, Any, None]:
        self.calls[service] += 1
        hosts = self._hosts.get(service)
        if hosts:
            server = hosts[0] if len(hosts) == 1 else min(hosts, key=_load)
            yield from server.call(self.cpu_ms_per_call / 1000.0 + rows * self.cpu_us_per_row / 1e6)


def _load(server: Any) -> tuple[float, str]:
    """Duplicated services sit behind a load balancer: the least loaded live host takes the call."""
    pool = server.cores
    return (float("inf") if not server.up else (pool.busy + pool.queue_length) / max(1, pool.capacity), server.name)
