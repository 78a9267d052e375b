"""Wall time of two hot structures, moved here from the test suite (tests count operations instead).

    python benchmarks/queue_and_match.py

- ServerPool: grant 200k requests queued behind one holder (FIFO deque line), against the same
  line built on a list with pop(0) measured in the same run as the reference (it grows quadratically).
- TaskQueueDB.match with 100k waiting jobs: microseconds per match (about 20 us on a laptop).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checkout  # noqa: E402

checkout.use()

from twin.dirac.wms import job_status as js  # noqa: E402
from twin.dirac.wms.jobdb import JobDB  # noqa: E402
from twin.dirac.wms.taskqueue import TaskQueueDB  # noqa: E402
from twin.engine.queueing import ServerPool  # noqa: E402


class _ListLine(list):
    """The naive reference: a list whose popleft shifts every waiter."""

    def popleft(self):
        return self.pop(0)


def grant_seconds(n: int, naive: bool = False) -> float:
    env = simpy.Environment()
    pool = ServerPool(env, 1, "long")
    if naive:
        pool._line = _ListLine()
    pool.acquire()
    started = time.perf_counter()
    for grant in [pool.acquire() for _ in range(n)]:
        grant.callbacks.append(lambda _e: pool.release())
    pool.release()
    env.run()
    return time.perf_counter() - started


def match_seconds(waiting: int = 100_000, matches: int = 5000) -> float:
    db, tqdb = JobDB(), TaskQueueDB()
    rng = np.random.default_rng(9)
    sites = ["LCG.CNAF.it", "LCG.DESY-ZEUTHEN.de", "LCG.PIC.es", "LCG.IN2P3-CC.fr", "LCG.CSCS.ch"]
    for i in range(waiting):
        job = db.submit(0.0, job_type=("MCSimulation", "Merge")[i % 2], sites=[sites[i % 5]] if i % 3 else [])
        db.set_status(job, js.WAITING, None, 0.0)
        tqdb.insert(job)
    started = time.perf_counter()
    for i in range(matches):
        tqdb.match({"Site": sites[i % 5], "CPUTime": 2 * 86400.0}, rng)
    return (time.perf_counter() - started) / matches


def main() -> None:
    for n in (50_000, 200_000):
        print(f"ServerPool {n:>7,} grants: deque {grant_seconds(n):6.2f} s   list.pop(0) reference {grant_seconds(n, naive=True):6.2f} s")
    print(f"TaskQueueDB.match with 100k waiting jobs: {match_seconds() * 1e6:.1f} us per match")


if __name__ == "__main__":
    main()
