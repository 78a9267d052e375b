"""The job and file status events a report plots, summed in one pass over the event log, a row group at
a time: the report's memory is the sums, not the rows (a year of operations logs ~10^8 status events).

Per transformation and status, on one time grid (BINS intervals up to the horizon, the later of the run's
end and its deadline): how many jobs / files entered the status in each interval, and how many left it.
From these come the cumulative Done / Processed / Failed curves, the jobs Running over time, jobs reaching
a final status per interval, the Transformation Monitor counts at chosen times ("state at day X", the end)
and each transformation's busy span (first job Running, last job Done).

What a job left is its previous status: the digest keeps one byte per job ID (10 MB at 10^7 jobs). A file's
previous status is in its event (`file.status` detail = old status), so files cost nothing per file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from twin.codes import Codes
from twin.report import series

STATUS_EVENTS = {"job.status": None, "file.status": None}
JOB, FILE = "job.status", "file.status"


@dataclass
class StatusDigest:
    """Counts of status changes per (kind, transformation, status) on a time grid and at snapshot times."""

    edges: np.ndarray  # seconds, BINS + 1 edges from 0 to the horizon
    snapshots: np.ndarray  # seconds: the times the monitor counts are asked for
    entered: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)  # per grid interval
    left: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)
    at: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)  # net count at each snapshot
    first_running: dict[int, float] = field(default_factory=dict)
    last_done: dict[int, float] = field(default_factory=dict)
    _codes: Codes[str] = field(default_factory=lambda: Codes([""]))
    _job_state: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.uint8))

    # ------------------------------------------------------------ building
    @classmethod
    def build(cls, chunks: Iterable[pd.DataFrame], horizon: float, snapshots: Sequence[float] = (),
              bins: int = series.BINS) -> "StatusDigest":
        digest = cls(np.linspace(0.0, max(horizon, 1.0), bins + 1), np.sort(np.asarray(list(snapshots), dtype=float)))
        for chunk in chunks:
            digest.add(chunk)
        return digest

    def add(self, chunk: pd.DataFrame) -> None:
        """Count one chunk (rows in time order, as the log writes them; other kinds are ignored)."""
        if not len(chunk):
            return
        kinds = chunk["kind"].astype(str)
        jobs, files = chunk[kinds == JOB], chunk[kinds == FILE]
        if len(jobs):
            self._add_jobs(jobs)
        if len(files):
            tid = pd.to_numeric(files["entity"].astype(str).str.extract(r"^trans:(\d+)/", expand=False), errors="coerce")
            keep = tid.notna().to_numpy()
            self._count(FILE, tid.to_numpy()[keep].astype(np.int64), files["time"].to_numpy(dtype=float)[keep],
                        files["state"].astype(str).to_numpy()[keep], files["detail"].astype(str).to_numpy()[keep])

    def _add_jobs(self, jobs: pd.DataFrame) -> None:
        ids = pd.to_numeric(jobs["entity"].astype(str).str.slice(4), errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
        ok = ids >= 0
        ids, jobs = ids[ok], jobs[ok]
        status = pd.Categorical(jobs["state"].astype(str))
        codes = np.array([self._code(c) for c in status.categories], dtype=np.uint8)[status.codes]
        states = np.asarray(status.astype(str), dtype=object)
        if ids.max(initial=0) >= len(self._job_state):
            self._job_state = np.concatenate([self._job_state, np.zeros(int(ids.max()) * 2 - len(self._job_state) + 1,
                                                                        dtype=np.uint8)])
        # previous status: the job's earlier row in this chunk, else what the digest kept from earlier chunks
        order = pd.Series(codes).groupby(ids).shift()
        prev = np.where(order.isna(), self._job_state[ids], order.fillna(0).to_numpy()).astype(np.uint8)
        last = pd.Series(codes).groupby(ids).last()
        self._job_state[last.index.to_numpy()] = last.to_numpy(dtype=np.uint8)
        names = np.array(self._codes.names, dtype=object)
        tid = jobs["value"].fillna(-1).to_numpy(dtype=float).astype(np.int64)
        times = jobs["time"].to_numpy(dtype=float)
        self._count(JOB, tid, times, states, names[prev])
        for state, into, pick in (("Running", self.first_running, min), ("Done", self.last_done, max)):
            sel = states == state
            for t, when in pd.Series(times[sel]).groupby(tid[sel]).agg(pick.__name__).items():
                into[int(t)] = pick(into.get(int(t), when), float(when))

    def _code(self, state: str) -> int:
        return self._codes.code(state)

    def _count(self, kind: str, tid: np.ndarray, times: np.ndarray, new: np.ndarray, old: np.ndarray) -> None:
        """Histogram entries into `new` and exits from `old` per transformation, on the grid and at the snapshots."""
        bins = len(self.edges) - 1
        slot = np.clip(np.searchsorted(self.edges, times, side="right") - 1, 0, bins - 1)
        snap = np.searchsorted(self.snapshots, times, side="left")  # counts at every snapshot >= its time
        frame = pd.DataFrame({"tid": tid, "slot": slot, "snap": snap})
        for states, sign, into in ((new, 1, self.entered), (old, -1, self.left)):
            frame["state"] = states
            moved = frame[frame["state"] != ""]
            for (t, state), group in moved.groupby(["tid", "state"], sort=False):
                key = (kind, int(t), str(state))
                into[key] = into.get(key, np.zeros(bins)) + np.bincount(group["slot"], minlength=bins)
                steps = np.bincount(group["snap"], minlength=len(self.snapshots) + 1)[:len(self.snapshots)]
                self.at[key] = self.at.get(key, np.zeros(len(self.snapshots))) + sign * np.cumsum(steps)

    # ------------------------------------------------------------ reading
    def x_days(self) -> np.ndarray:
        """x of cumulative curves: 0, then each interval's end (days)."""
        return np.concatenate([[0.0], self.edges[1:] / series.DAY])

    def cumulative(self, kind: str, state: str, names: Mapping[int, str]) -> series.Curves:
        """Entries into `state` so far, per transformation (a final status: the count reached)."""
        out: series.Curves = {}
        for (k, tid, st), counts in sorted(self.entered.items(), key=lambda kv: kv[0][1]):
            if k == kind and st == state and counts.any():
                out[names.get(tid, f"transformation {tid}" if tid >= 0 else "no transformation")] = \
                    (self.x_days(), np.concatenate([[0.0], np.cumsum(counts)]))
        return out

    def level(self, kind: str, state: str, names: Mapping[int, str]) -> series.Curves:
        """How many were in `state` at the end of each interval, per transformation."""
        out: series.Curves = {}
        for (k, tid, st), counts in sorted(self.entered.items(), key=lambda kv: kv[0][1]):
            if k == kind and st == state:
                net = np.cumsum(counts - self.left.get((k, tid, st), 0.0))
                out[names.get(tid, f"transformation {tid}")] = (self.x_days(), np.concatenate([[0.0], net]))
        return out

    def entered_per_interval(self, kind: str, state: str) -> np.ndarray:
        """Entries into `state` per grid interval, all transformations together."""
        total = np.zeros(len(self.edges) - 1)
        for (k, _tid, st), counts in self.entered.items():
            if k == kind and st == state:
                total += counts
        return total

    def counts_at(self, when: float) -> dict[int, dict[str, float]]:
        """{transformation id: {'jobs <status>' / 'files <status>': count}} at a snapshot time (must be one asked for)."""
        i = int(np.searchsorted(self.snapshots, when, side="left"))
        if i >= len(self.snapshots) or self.snapshots[i] != when:
            raise KeyError(f"no snapshot at {when} s (asked for: {self.snapshots.tolist()})")
        out: dict[int, dict[str, float]] = defaultdict(dict)
        for (kind, tid, state), net in self.at.items():
            label = f"{'jobs' if kind == JOB else 'files'} {state}"
            out[tid][label] = out[tid].get(label, 0.0) + float(net[i])
        return {tid: {k: int(v) for k, v in c.items() if round(v)} for tid, c in out.items()}
