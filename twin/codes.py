"""Interning: a key <-> a small integer, so that columns hold numbers instead of objects.

Codes are handed out in order of first sight and never reused; `names[code]` is the key back. The
TransformationDB's status and SE columns, the invariant recount's state columns, the catalog's replica
sets and the report's status digest all store codes from one of these.
"""

from __future__ import annotations

from typing import Generic, Hashable, Iterable, TypeVar

K = TypeVar("K", bound=Hashable)


class Codes(Generic[K]):
    """One interning table; `Codes(first)` starts with `first` as codes 0, 1, ... (e.g. a 'none' code 0)."""

    __slots__ = ("codes", "names")

    def __init__(self, first: Iterable[K] = ()) -> None:
        self.codes: dict[K, int] = {}
        self.names: list[K] = []
        for name in first:
            self.code(name)

    def code(self, name: K) -> int:
        """The code of `name`, a new one the first time it is seen."""
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code

    def __contains__(self, name: object) -> bool:
        return name in self.codes

    def __len__(self) -> int:
        return len(self.names)
