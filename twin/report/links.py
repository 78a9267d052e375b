"""Throughput per network link and FTS channel, accounting-style (DIRAC's DataOperation plots: data
transferred per channel over time), from the `transfer.status` events the network logs: one per WAN transfer,
entity `link:<source site>-><destination site>`, detail the channel `<source SE>-><destination SE>`,
value the bytes, state Done or Failed.

The events are read chunk by chunk (one row group at a time) and summed into fixed time bins, so a
year of transfers costs the bins, not the rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from twin.grid.units import TB
from twin.report import figures as F
from twin.report.render import Html, details, join, note, num, table

LINK_EVENTS = {"transfer.status": None}
BINS = 40


@dataclass
class LinkAccount:
    """Bytes moved per link per time bin, and per link / channel the transfers Done and Failed."""

    edges: np.ndarray  # bin edges, seconds
    done_bytes: dict[str, np.ndarray] = field(default_factory=dict)  # link -> bytes of Done transfers per bin
    links: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    channels: dict[tuple[str, str], dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))

    @property
    def days_per_bin(self) -> float:
        return float(self.edges[1] - self.edges[0]) / F.DAY

    def tb_per_day(self) -> dict[str, np.ndarray]:
        """Per link, TB/day in each bin (bytes of its Done transfers / bin length)."""
        return {link: b / TB / self.days_per_bin for link, b in sorted(self.done_bytes.items())}

    def add(self, chunk: pd.DataFrame) -> None:
        """Count one chunk of events (rows of other kinds are ignored)."""
        rows = chunk[chunk["kind"] == "transfer.status"] if len(chunk) else chunk
        if not len(rows):
            return
        link = rows["entity"].astype(str).str.removeprefix("link:")
        state, nbytes = rows["state"].astype(str), rows["value"].to_numpy(dtype=float)
        frame = pd.DataFrame({"link": link.to_numpy(), "channel": rows["detail"].astype(str).to_numpy(),
                              "state": state.to_numpy(), "bytes": nbytes, "time": rows["time"].to_numpy(dtype=float)})
        for (name, channel, st), group in frame.groupby(["link", "channel", "state"], sort=False):
            for totals in (self.links[name], self.channels[(name, channel)]):
                totals[st] += len(group)
                totals[f"{st} bytes"] += float(group["bytes"].sum())
        for name, group in frame[frame["state"] == "Done"].groupby("link", sort=False):
            counts, _ = np.histogram(group["time"].to_numpy(), bins=self.edges, weights=group["bytes"].to_numpy())
            self.done_bytes[name] = self.done_bytes.get(name, np.zeros(len(self.edges) - 1)) + counts


def account(chunks: Iterable[pd.DataFrame], t_end: float, bins: int = BINS) -> LinkAccount:
    """Sum the transfer events of `chunks` into `bins` intervals over [0, t_end]."""
    acc = LinkAccount(np.linspace(0.0, max(t_end, 1.0), bins + 1))
    for chunk in chunks:
        acc.add(chunk)
    return acc


def throughput_figure(acc: LinkAccount, colors: Mapping[str, str], spans: Sequence[F.FaultSpan],
                      t_end: float) -> "F.Figure | None":
    """TB/day per link, stacked per interval (Accounting: 'Transferred data' by channel)."""
    rates = {k: v for k, v in acc.tb_per_day().items() if v.any()}
    if not rates:
        return None
    colors = {**F.palette(rates), **{k: v for k, v in colors.items() if k in rates}}
    fig, axes = F.new_figure(1, 1, height=3.0)
    width, bottom = acc.days_per_bin, np.zeros(len(acc.edges) - 1)
    for name, rate in sorted(rates.items(), key=lambda kv: -kv[1].sum()):
        axes[0].bar(acc.edges[:-1] / F.DAY, rate, width=width, bottom=bottom, align="edge", color=colors[name], label=name)
        bottom += rate
    axes[0].set_ylabel("TB/day")
    axes[0].set_title("Data transferred per network link (TB/day, stacked)", loc="left", fontsize=11)
    F.legend(axes[0], list(reversed(axes[0].get_legend_handles_labels()[0])), title="link (source → destination site)")
    F.time_axes(axes, t_end, spans)
    return fig


def throughput_tables(acc: LinkAccount, t_end: float) -> Html:
    """Per link: transfers Done/Failed, TB moved, mean TB/day over the run, peak TB/day; channels folded away."""
    if not acc.links:
        return note("No transfer crossed a network link (every copy stayed within a site).")
    days = max(t_end, 1.0) / F.DAY
    rates = acc.tb_per_day()
    rows = [[name, num(int(t["Done"])), num(int(t["Failed"])), num(t["Done bytes"] / TB, 3), num(t["Done bytes"] / TB / days, 3),
             num(float(rates[name].max()) if name in rates else 0.0, 3)] for name, t in sorted(acc.links.items())]
    channels = [[link, channel, num(int(t["Done"])), num(int(t["Failed"])), num(t["Done bytes"] / TB, 3)]
                for (link, channel), t in sorted(acc.channels.items())]
    return join([
        table(["link", "transfers Done", "transfers Failed", "TB moved", "mean TB/day", "peak TB/day (one interval)"], rows,
              ["warn" if t["Failed"] else None for _, t in sorted(acc.links.items())]),
        details(f"Per FTS channel (source SE → destination SE): {len(channels)} channels",
                table(["link", "channel", "transfers Done", "transfers Failed", "TB moved"], channels)),
    ])
