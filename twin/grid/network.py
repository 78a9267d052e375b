"""The WAN between sites, and FTS jobs over it.

A link is directional ("A->B") with `concurrency` FIFO transfer slots; each stream runs
at bandwidth / concurrency (the same processor-sharing approximation as the SEs). A
pair of sites with no declared link gets its own link with the default spec, made on
first use. Transfers inside one site use no link (LAN cost is not modelled).

A copy streams through every resource it touches at once (source SE slot, link slot,
destination SE slot) at the slowest per-stream rate, plus `wan_latency` per WAN
transfer. It fails with the link's `failure_prob` (drawn at the end, the time is spent)
or if the link is cut; a cut link refuses new transfers at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Generator, Mapping, Sequence

import simpy

from twin.engine.queueing import ServerPool, hold_all
from twin.engine.simulation import Simulation
from twin.grid.faultstate import ActiveFaults
from twin.grid.storage import StorageElement
from twin.grid.units import mbps
from twin.scenario import schema

#: Delay before the FTS server retries a failed file inside a job. Assumption: DIRAC's FTS3Job sets
#: retry=3 but no retry_delay, and the server's default is not in the DIRAC sources; 120 s.
DEFAULT_FTS_RETRY_DELAY = 120.0

SE = str | StorageElement


def link_name(source: str, destination: str) -> str:
    return f"{source}->{destination}"


def parse_link_name(name: str) -> tuple[str, str] | None:
    """("A", "B") for "A->B" (spaces allowed), else None."""
    ends = [end.strip() for end in name.split("->")]
    return (ends[0], ends[1]) if len(ends) == 2 and all(ends) else None


class Link:
    """One directional WAN link: transfer slots, per-stream rate, failures, cut state."""

    def __init__(self, sim: Simulation, source: str, destination: str, spec: schema.LinkSpec, declared: bool) -> None:
        self.sim = sim
        self.source = source
        self.destination = destination
        self.name = link_name(source, destination)
        self.declared = declared
        self.pool = ServerPool(sim.env, spec.concurrency, f"link:{self.name}")
        self.rate = mbps(spec.bandwidth_mbps) / spec.concurrency  # bytes/s per stream
        self.failure_prob = spec.failure_prob
        self._rng = sim.streams.get(f"link.{self.name}.failure")
        self._cuts = ActiveFaults()
        self.transfers = self.failures = self.refused = 0
        self.bytes = 0.0

    @property
    def cut(self) -> bool:
        return bool(self._cuts)

    def outcome(self, nbytes: float) -> str:
        """"" for a good transfer, else the reason it failed; counts it."""
        self.transfers += 1
        if self.cut:
            error = "link cut"
        elif self.failure_prob > 0 and self._rng.random() < self.failure_prob:
            error = "transfer failed"
        else:
            self.bytes += nbytes
            return ""
        self.failures += 1
        return error

    def on_cut(self, params: dict[str, Any], active: bool) -> None:
        """Fault "link_cut": new transfers are refused, running ones fail."""
        self._cuts.edge(1, active)
        self.sim.log.log(self.sim.now, "link.status", f"link:{self.name}", "Cut" if self.cut else "Up")


@dataclass(slots=True, frozen=True)
class FileOutcome:
    """Per-file result of an FTS job."""

    ok: bool
    attempts: int
    error: str = ""


class Network:
    """Links by (source, destination) site, and transfers over them."""

    def __init__(self, sim: Simulation, spec: schema.Network, ses: Mapping[str, StorageElement] | None = None,
                 fts_retry_delay: float = DEFAULT_FTS_RETRY_DELAY) -> None:
        self.sim = sim
        self.env = sim.env
        self.default = spec.default
        self.wan_latency = spec.wan_latency
        self.max_files_per_fts_job = spec.max_files_per_fts_job
        self.max_attempts_per_file = spec.max_attempts_per_file
        self.fts_retry_delay = fts_retry_delay
        self.ses: Mapping[str, StorageElement] = ses if ses is not None else {}
        self.links: dict[tuple[str, str], Link] = {
            (l.source, l.destination): Link(sim, l.source, l.destination, l, declared=True) for l in spec.links
        }
        self._legs_cache: dict[tuple[StorageElement | None, Link | None, StorageElement | None], tuple[list[ServerPool], float]] = {}

    def link(self, source: str, destination: str) -> Link:
        """The declared link, or the pair's default link (created on first use)."""
        key = (source, destination)
        link = self.links.get(key)
        if link is None:
            link = self.links[key] = Link(self.sim, source, destination, self.default, declared=False)
        return link

    def default_links(self) -> list[Link]:
        return [link for link in self.links.values() if not link.declared]

    # ------------------------------------------------------------ transfers
    def transfer(self, src_site: str, dst_site: str, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """Move `nbytes` between sites over the link only (no SE involved)."""
        return not (yield from self._move(nbytes, src_site, dst_site))

    def download(self, src_se: SE, site: str, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """A job at `site` reads a replica from `src_se` (local or remote)."""
        src = self._se(src_se)
        return not (yield from self._move(nbytes, src.site, site, src=src))

    def upload(self, site: str, dst_se: SE, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """A job at `site` writes an output file to `dst_se` (tape: into its buffer)."""
        dst = self._se(dst_se)
        return not (yield from self._move(nbytes, site, dst.site, dst=dst))

    def copy(self, src_se: SE, dst_se: SE, nbytes: float) -> Generator[simpy.Event, object, bool]:
        """One third-party copy attempt between SEs (DMMode replication)."""
        src, dst = self._se(src_se), self._se(dst_se)
        return not (yield from self._move(nbytes, src.site, dst.site, src=src, dst=dst))

    def _move(self, nbytes: float, src_site: str, dst_site: str,
              src: StorageElement | None = None, dst: StorageElement | None = None) -> Generator[simpy.Event, object, str]:
        """The one transfer path: "" on success, else the reason."""
        if src is not None and not src.readable:
            src.refused_reads += 1
            return "source not readable"
        link = self.link(src_site, dst_site) if src_site != dst_site else None
        if link is not None and link.cut:
            link.refused += 1
            return "link cut"
        if dst is not None and not (dst.reserve_write(nbytes) if dst.tape is None else (yield from dst.begin_write(nbytes))):
            return "destination not writable or full"
        pools, rate = self._legs(src, link, dst)
        duration = (self.wan_latency if link is not None else 0.0) + (nbytes / rate if pools else 0.0)
        if len(pools) == 1 and pools[0].try_take():  # hold_all's uncontended one-pool case, one generator less
            try:
                yield self.env.timeout(duration)
            finally:
                pools[0].release()
        else:
            yield from hold_all(self.env, pools, duration)
        error = link.outcome(nbytes) if link is not None else ""
        if link is not None:  # one accounting record per WAN transfer (DIRAC's DataOperation): bytes per link and channel
            channel = f"{src.name if src is not None else src_site}->{dst.name if dst is not None else dst_site}"
            self.sim.log.log(self.env._now, "transfer.status", f"link:{link.name}", "Failed" if error else "Done", channel, nbytes)
        if src is not None and not error:
            src.end_read(nbytes)
        if dst is not None:
            dst.end_write(nbytes, not error)
        return error

    def _legs(self, src: StorageElement | None, link: Link | None, dst: StorageElement | None) -> tuple[list[ServerPool], float]:
        """The pools a stream holds and the slowest per-stream rate among them (bytes/s); the rates are
        fixed at build time, so each combination is resolved once."""
        key = (src, link, dst)
        legs = self._legs_cache.get(key)
        if legs is None:
            pools: list[ServerPool] = []
            rates: list[float] = []
            if src is not None:
                pools.append(src.slots)
                rates.append(src.read_rate)
            if link is not None:
                pools.append(link.pool)
                rates.append(link.rate)
            if dst is not None:
                pools.append(dst.slots)
                rates.append(dst.write_rate)
            legs = self._legs_cache[key] = (pools, min(rates) if rates else 0.0)
        return legs

    # ------------------------------------------------------------ FTS
    def fts_transfer(self, files: Sequence[float], src_se: SE, dst_se: SE, max_attempts: int | None = None,
                     outcomes: list[Any] | None = None) -> Generator[simpy.Event, object, list[FileOutcome]]:
        """Run one FTS job: copy each file (sizes in bytes) from `src_se` to `dst_se`.

        Files run concurrently on at most as many lanes as the link has slots; a failed
        file is retried after `fts_retry_delay` up to `max_attempts` (default
        max_attempts_per_file). A tape source is brought online (staged) first; a tape
        destination receives the file into its archive buffer. Outcomes are in file order;
        a caller's `outcomes` list (one slot per file) is filled as each file ends, so a
        monitor polling the job sees files finish before the job does.
        """
        if len(files) > self.max_files_per_fts_job:
            raise ValueError(f"FTS job of {len(files)} files, expected at most {self.max_files_per_fts_job}")
        src, dst = self._se(src_se), self._se(dst_se)
        attempts = max_attempts or self.max_attempts_per_file
        if outcomes is None:
            outcomes = [FileOutcome(False, 0, "not run")] * len(files)
        todo = deque(range(len(files)))
        lane_count = min(len(files), self._lane_limit(src, dst))
        lanes = [self.env.process(self._fts_lane(todo, files, src, dst, attempts, outcomes)) for _ in range(lane_count)]
        if lanes:
            yield self.env.all_of(lanes)
        return outcomes

    def _lane_limit(self, src: StorageElement, dst: StorageElement) -> int:
        if src.site == dst.site:
            return min(src.max_concurrency, dst.max_concurrency)
        return self.link(src.site, dst.site).pool.capacity or 1

    def _fts_lane(self, todo: deque[int], files: Sequence[float], src: StorageElement, dst: StorageElement,
                  attempts: int, outcomes: list[Any]) -> Generator[simpy.Event, object, None]:
        while todo:
            i = todo.popleft()
            outcomes[i] = yield from self._fts_file(files[i], src, dst, attempts)

    def _fts_file(self, nbytes: float, src: StorageElement, dst: StorageElement,
                  attempts: int) -> Generator[simpy.Event, object, FileOutcome]:
        if src.is_tape and not (yield from src.stage(nbytes)):
            return FileOutcome(False, 1, "staging failed")
        error = ""
        for attempt in range(1, attempts + 1):
            error = yield from self._move(nbytes, src.site, dst.site, src=src, dst=dst)
            if not error:
                return FileOutcome(True, attempt)
            if attempt < attempts:
                yield self.env.timeout(self.fts_retry_delay)
        return FileOutcome(False, attempts, error)

    def _se(self, se: SE) -> StorageElement:
        return se if isinstance(se, StorageElement) else self.ses[se]
