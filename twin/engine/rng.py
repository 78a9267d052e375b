"""Named, seeded random streams.

Every random draw in a run comes from a stream named after what it models
("site.LCG.CNAF.it.job_failure", "plugin.Broadcast.shuffle"). A stream's seed is
derived from the run seed and the *name* only, so adding a new stream, or drawing
more from one, never shifts the numbers another stream produces: what-if runs stay
comparable draw for draw with their baseline.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def _name_key(name: str) -> list[int]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


class RandomStreams:
    """Factory and cache of independent generators keyed by name."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._numpy: dict[str, np.random.Generator] = {}
        self._python: dict[str, random.Random] = {}

    def seed_for(self, name: str) -> int:
        """A 63-bit integer seed for `name`, stable across Python versions and runs."""
        seq = np.random.SeedSequence([self.seed, *_name_key(name)])
        return int(seq.generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)

    def get(self, name: str) -> np.random.Generator:
        """The numpy Generator for `name` (created on first use)."""
        gen = self._numpy.get(name)
        if gen is None:
            gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *_name_key(name)])))
            self._numpy[name] = gen
        return gen

    def python(self, name: str) -> random.Random:
        """A `random.Random` for `name`: for code written against the stdlib (DIRAC plugins shuffle with it)."""
        rnd = self._python.get(name)
        if rnd is None:
            rnd = random.Random(self.seed_for(name))
            self._python[name] = rnd
        return rnd

    @property
    def names(self) -> list[str]:
        return sorted(set(self._numpy) | set(self._python))
