"""The simulated infrastructure of one run, built from the scenario topology.

`build_grid` instantiates sites, CEs, SEs (with their tape systems), the network,
core servers and databases; it registers one fault handler per fault kind with the
run's FaultSchedule and the time-series gauges with its Metrics. The DIRAC logic
reaches everything through the `Grid` object's dictionaries and helpers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twin.engine.simulation import Simulation
from twin.grid.network import Link, Network, parse_link_name
from twin.grid.servers import CoreServer, Database
from twin.grid.site import ComputingElement, Site
from twin.grid.storage import StorageElement
from twin.grid.tape import TapeSystem
from twin.grid.units import MB, TB
from twin.scenario import schema


@dataclass
class Grid:
    """Everything simulated below the DIRAC services, by name."""

    sites: dict[str, Site]
    ces: dict[str, ComputingElement]
    ses: dict[str, StorageElement]
    tapes: dict[str, TapeSystem]  # by tape SE name
    network: Network
    servers: dict[str, CoreServer] = field(default_factory=dict)
    databases: dict[str, Database] = field(default_factory=dict)

    def ses_at_site(self, site: str) -> list[str]:
        """SEs local to `site`: those it lists and those declared at it (as SiteSEMapping)."""
        listed = self.sites[site].ses if site in self.sites else []
        located = [name for name, se in self.ses.items() if se.site == site]
        return list(dict.fromkeys([*listed, *located]))

    def sites_for_se(self, se: str) -> list[str]:
        """Sites for which `se` is local: its own site and every site listing it."""
        own = [self.ses[se].site] if se in self.ses else []
        listing = [name for name, site in self.sites.items() if se in site.ses]
        return list(dict.fromkeys([*own, *listing]))

    def site_of_se(self, se: str) -> str:
        return self.ses[se].site


def build_grid(sim: Simulation, topology: schema.Topology) -> Grid:
    """Instantiate the topology in `sim`, with fault handlers and metric gauges."""
    pilot_ids = itertools.count(1)
    sites = {spec.name: Site(sim, spec, pilot_ids) for spec in topology.sites}
    ses = {spec.name: StorageElement(sim, spec) for spec in topology.storage}
    grid = Grid(
        sites=sites,
        ces=_ces_by_name(sites),
        ses=ses,
        tapes={name: se.tape for name, se in ses.items() if se.tape is not None},
        network=Network(sim, topology.network, ses),
    )
    for spec in topology.servers:
        grid.servers[spec.name] = CoreServer(sim, spec)
    for spec in topology.databases:
        grid.databases[spec.name] = Database(sim, spec, grid.servers.get(spec.server))
    _register_faults(sim, grid)
    _register_gauges(sim, grid)
    return grid


def _ces_by_name(sites: Mapping[str, Site]) -> dict[str, ComputingElement]:
    ces: dict[str, ComputingElement] = {}
    for site in sites.values():
        for ce in site.ces.values():
            if ce.name in ces:
                raise ValueError(f"topology: CE name {ce.name!r} is used at two sites; CE names must be unique")
            ces[ce.name] = ce
    return ces


# ---------------------------------------------------------------- faults
FaultMethod = Callable[[Any, dict[str, Any], bool], None]


def _route(registry: Mapping[str, Any], method: FaultMethod) -> Callable[[str, dict[str, Any], bool], None]:
    """A FaultSchedule handler that applies `method` to the target named in `registry`."""
    return lambda target, params, active: method(registry[target], params, active)


def _register_faults(sim: Simulation, grid: Grid) -> None:
    by_name: list[tuple[str, Mapping[str, Any], FaultMethod]] = [
        ("site_down", grid.sites, Site.on_site_down),
        ("failure_spike", grid.sites, Site.on_failure_spike),
        ("se_banned", grid.ses, StorageElement.on_banned),
        ("tape_drive_lost", grid.tapes, TapeSystem.on_drive_lost),
        ("server_down", grid.servers, CoreServer.on_down),
        ("db_slow", grid.databases, Database.on_slow),
        ("db_down", grid.databases, Database.on_down),
    ]
    for kind, registry, method in by_name:
        sim.faults.register(kind, _route(registry, method), registry.__contains__)
    network = grid.network

    def cut(target: str, params: dict[str, Any], active: bool) -> None:
        network.link(*parse_link_name(target)).on_cut(params, active)

    def is_link(target: str) -> bool:
        ends = parse_link_name(target)
        return ends is not None and all(end in grid.sites for end in ends)

    sim.faults.register("link_cut", cut, is_link)


# ---------------------------------------------------------------- gauges
class RateGauge:
    """Rate of a cumulative counter since the previous read (one read per sample)."""

    def __init__(self, sim: Simulation, counter: Callable[[], float], scale: float = 1.0) -> None:
        self.sim = sim
        self.counter = counter
        self.scale = scale
        self._last_time = sim.now
        self._last_value = counter()

    def __call__(self) -> float:
        now, value = self.sim.now, self.counter()
        dt = now - self._last_time
        rate = (value - self._last_value) / dt / self.scale if dt > 0 else 0.0
        self._last_time, self._last_value = now, value
        return rate


def _register_gauges(sim: Simulation, grid: Grid) -> None:
    gauge = sim.metrics.gauge
    for name, site in grid.sites.items():
        gauge(f"site.running[{name}]", site.running_pilots)
        gauge(f"site.waiting_pilots[{name}]", site.waiting_pilots)
        gauge(f"site.up[{name}]", lambda s=site: float(s.up))
    for name, se in grid.ses.items():
        gauge(f"se.used_tb[{name}]", lambda s=se: s.used_bytes / TB)
        gauge(f"se.active[{name}]", lambda s=se: s.slots.busy)
        gauge(f"se.queue[{name}]", lambda s=se: s.slots.queue_length)
    for name, tape in grid.tapes.items():
        gauge(f"tape.drives_busy[{name}]", lambda t=tape: t.drives.busy)
        gauge(f"tape.drives_available[{name}]", lambda t=tape: t.drives.capacity)
        gauge(f"tape.drive_use[{name}]", lambda t=tape: t.drive_use)
        gauge(f"tape.recall_queue[{name}]", lambda t=tape: t.recall_queue)
        gauge(f"tape.migration_queue[{name}]", lambda t=tape: t.migration_queue)
        gauge(f"tape.buffer_tb[{name}]", lambda t=tape: t.buffer_used / TB)
        gauge(f"tape.cache_tb[{name}]", lambda t=tape: t.cache_bytes / TB)
        gauge(f"tape.archive_mbps[{name}]", RateGauge(sim, lambda t=tape: t.archived_bytes, MB))
        gauge(f"tape.recall_mbps[{name}]", RateGauge(sim, lambda t=tape: t.recalled_bytes, MB))
    _register_link_gauges(sim, grid.network)
    for name, server in grid.servers.items():
        gauge(f"server.busy_cores[{name}]", lambda s=server: s.cores.busy)
        # CPU used over the last interval as % of the cores: a reading at sample times misses short calls.
        # Core-seconds of the host's pool: calls and queries, and the background streams (heartbeats, portal).
        gauge(f"server.cpu_pct[{name}]", RateGauge(sim, server.flow.busy_seconds, server.total_cores / 100.0))
    for name, db in grid.databases.items():
        gauge(f"db.latency_ms[{name}]", lambda d=db: d.latency_ewma * 1000.0)
        # interval means (Little): queue = waiting caller-seconds / interval, busy = connection-seconds / interval
        gauge(f"db.queue[{name}]", RateGauge(sim, db.flow.queue_seconds))
        gauge(f"db.busy[{name}]", RateGauge(sim, db.flow.busy_seconds))
        gauge(f"db.qps[{name}]", RateGauge(sim, lambda d=db: d.queries))


def _register_link_gauges(sim: Simulation, network: Network) -> None:
    """Declared links one by one; default links (made on first use) summed as "default"."""
    gauge = sim.metrics.gauge
    for link in list(network.links.values()):
        gauge(f"link.active[{link.name}]", lambda l=link: l.pool.busy)
        gauge(f"link.queued[{link.name}]", lambda l=link: l.pool.queue_length)
    gauge("link.active[default]", lambda: _sum_default(network, lambda l: l.pool.busy))
    gauge("link.queued[default]", lambda: _sum_default(network, lambda l: l.pool.queue_length))


def _sum_default(network: Network, read: Callable[[Link], float]) -> float:
    return float(sum(read(link) for link in network.default_links()))
