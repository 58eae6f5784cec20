"""Novelty of a series' recent shape: boxes of seen feature vectors, grown online; a vector no box can take is new."""

from __future__ import annotations

import numpy as np


class BoxMemory:
    """Fuzzy-ART-like memory of hyper-rectangles in feature space, in raw units.

    A vector resonates with a box when the box, grown to take it, stays within `vigilance` of the
    scale per dimension on average; the box then grows. A vector no box can take founds a new box: that
    is a novel pattern. `learn` returns the novelty: the smallest grown size over the allowed size,
    above 1 for a vector that founded a box.
    """

    def __init__(self, dim: int, capacity: int) -> None:
        self.dim = dim
        self.capacity = capacity
        self.k = 0
        # float32 halves the stored state; box edges need no more precision than that.
        self.lo = np.zeros((capacity, dim), dtype=np.float32)
        self.hi = np.zeros((capacity, dim), dtype=np.float32)
        self.used = np.zeros(capacity)
        self.clock = 0.0

    def learn(self, f: np.ndarray, weight: np.ndarray, vigilance: float) -> float:
        """Places f (a (dim,) vector) in memory; weight is 1 / the per-dimension range sizes are measured in."""
        self.clock += 1.0
        k = self.k
        if k == 0:
            self._found(f)
            return 0.0
        lo = self.lo[:k]
        hi = self.hi[:k]
        grown = (np.maximum(hi, f) - np.minimum(lo, f)) @ weight
        j = int(grown.argmin())
        allowed = vigilance * self.dim
        best = float(grown[j])
        if best <= allowed:
            np.minimum(lo[j], f, out=lo[j])
            np.maximum(hi[j], f, out=hi[j])
            self.used[j] = self.clock
            return best / allowed
        self._found(f)
        return best / allowed

    def _found(self, f: np.ndarray) -> None:
        if self.k < self.capacity:
            j = self.k
            self.k += 1
        else:  # full: the box least recently used makes room
            j = int(self.used.argmin())
        self.lo[j] = f
        self.hi[j] = f
        self.used[j] = self.clock

    def to_state(self) -> list:
        """Box edges as shortest exact float32 texts, so the state stays small and reloads bit for bit."""
        k = self.k
        return [
            self.clock,
            _pack(self.lo[:k]),
            _pack(self.hi[:k]),
            [int(u) for u in self.used[:k]],
        ]

    def load(self, state: list) -> None:
        self.clock, lo, hi, used = state
        k = len(used)
        self.k = k
        if k:
            self.lo[:k] = _unpack(lo, self.dim)
            self.hi[:k] = _unpack(hi, self.dim)
            self.used[:k] = used


def _pack(a: np.ndarray) -> str:
    return " ".join(_short(v) for v in a.ravel())


def pack_floats(values: list[float | None]) -> str:
    """Float32-exact values (None as "-") as one short text; `unpack_floats` gives them back bit for bit."""
    return " ".join("-" if v is None else _short(np.float32(v)) for v in values)


def unpack_floats(text: str) -> list[float | None]:
    return [None if t == "-" else float(np.float32(t)) for t in text.split()]


def _short(v: np.float32) -> str:
    positional = np.format_float_positional(v, unique=True, trim="-")
    return positional if len(positional) <= 10 else np.format_float_scientific(v, unique=True, trim="-")


def _unpack(text: str, dim: int) -> np.ndarray:
    return np.array(text.split(), dtype=np.float32).reshape(-1, dim)
