"""Stable 64-bit token hashes and vectorised rolling n-gram keys over a batch of rows.

Python's `hash()` is salted per process, so tokens are hashed with BLAKE2b (cached per token):
keys must agree between the cached index, worker processes and later runs. A batch of rows is one
flat uint64 array plus row boundaries, so every n-gram length costs a few numpy operations over
the whole batch instead of a Python loop per row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

_P = np.uint64(0x100000001B3)  # polynomial base (odd)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # separates lengths: an L-gram never equals an L'-gram key
_CACHE_LIMIT = 2_000_000


class _TokenHashes(dict):
    def __missing__(self, token: str) -> int:
        if len(self) >= _CACHE_LIMIT:  # keeps memory flat on inputs with unbounded vocabularies
            self.clear()
        value = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        self[token] = value
        return value


_token_hash = _TokenHashes()


def text_key(toks: Sequence[str]) -> int:
    """64-bit key of a whole token sequence (the exact-match and exact-dedup unit)."""
    return int.from_bytes(hashlib.blake2b(" ".join(toks).encode(), digest_size=8).digest(), "little")


@dataclass
class TokenBatch:
    """The tokens of many rows as one flat array of token hashes with row boundaries."""

    hashes: np.ndarray  # uint64, all rows' token hashes back to back
    lengths: np.ndarray  # int64 tokens per row
    starts: np.ndarray  # int64 offset of each row in `hashes`
    ends: np.ndarray  # int64 one past each row's last token
    row_of: np.ndarray  # int64 row index of every position

    @classmethod
    def from_tokens(cls, rows: Sequence[Sequence[str]]) -> TokenBatch:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = [_token_hash[t] for r in rows for t in r]
        ends = np.cumsum(lengths)
        return cls(
            hashes=np.array(flat, dtype=np.uint64),
            lengths=lengths,
            starts=ends - lengths,
            ends=ends,
            row_of=np.repeat(np.arange(len(rows), dtype=np.int64), lengths),
        )

    def grams(self, max_len: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(L, keys)` for L = 1..max_len; `keys[p]` is the L-gram starting at flat position p.

        Keys of windows that cross a row boundary are garbage; callers keep positions `p` with
        `p + L <= ends[row_of[p]]` (see `valid`), which is cheaper on the few candidate hits than
        on every window.
        """
        h = self.hashes.copy()
        for length in range(1, max_len + 1):
            if length > 1:
                h = h[:-1] * _P + self.hashes[length - 1 :]
            if h.size == 0:
                return
            yield length, (h ^ np.uint64(length)) * _MIX

    def valid(self, positions: np.ndarray, length: int) -> np.ndarray:
        """Mask of `positions` whose `length`-gram lies inside one row."""
        return positions + length <= self.ends[self.row_of[positions]]
