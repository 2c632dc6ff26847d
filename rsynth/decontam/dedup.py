"""Duplicate removal within the input: exact (normalised text) and near (MinHash + LSH).

Signatures are computed per batch with numpy in the workers; the keep/drop decision is sequential
in the main process, so the first occurrence of a duplicate group is the one kept, whatever the
number of workers. Memory grows with the number of distinct kept rows (one exact key, one 32-value
signature and `bands` LSH entries each, ~0.5 KB), unlike contamination matching, which is flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsynth.decontam.hashing import TokenBatch
from rsynth.decontam.matcher import Match

NUM_PERM = 32
BANDS = 8  # 8 bands x 4 rows: a pair at Jaccard 0.8 shares a band with probability 0.985
SHINGLE = 5  # tokens per shingle
_rng = np.random.default_rng(20240607)
_A = _rng.integers(1, 2**63, NUM_PERM, dtype=np.uint64) | np.uint64(1)
_B = _rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
_EMPTY = np.iinfo(np.uint32).max


@dataclass
class DedupFeatures:
    """Per-row signature and LSH band keys of a batch (signature all-max: too short for shingles)."""

    signatures: np.ndarray  # uint32 [rows, NUM_PERM]
    bands: np.ndarray  # uint64 [rows, BANDS]


def features(batch: TokenBatch) -> DedupFeatures:
    """MinHash signatures of every row's token 5-gram shingles, vectorised over the batch."""
    rows = batch.lengths.size
    sig = np.full((rows, NUM_PERM), _EMPTY, dtype=np.uint32)
    for length, keys in batch.grams(SHINGLE):
        if length != SHINGLE:
            continue
        pos = np.arange(keys.size)
        pos = pos[batch.valid(pos, length)]
        if pos.size:
            row = batch.row_of[pos]
            starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
            hashed = ((keys[pos][:, None] * _A + _B) >> np.uint64(32)).astype(np.uint32)
            sig[row[starts]] = np.minimum.reduceat(hashed, starts, axis=0)
    per = NUM_PERM // BANDS
    bands = np.zeros((rows, BANDS), dtype=np.uint64)
    for j in range(per):
        bands = bands * np.uint64(0x100000001B3) + sig[:, j::per].astype(np.uint64)
    bands ^= np.arange(BANDS, dtype=np.uint64)  # the same values in two bands are different keys
    return DedupFeatures(sig, bands)


class Deduper:
    """Remembers kept rows and reports whether a new row duplicates one of them."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.exact: dict[int, str] = {}
        self.tables: dict[int, int] = {}  # band key -> kept slot
        self.labels: list[str] = []
        self.sigs = np.zeros((1024, NUM_PERM), dtype=np.uint32)

    def check(self, exact_key: int, sig: np.ndarray, bands: np.ndarray) -> Match | None:
        first = self.exact.get(exact_key)
        if first is not None:
            return Match("input", first, "dedup-exact", 1.0, "")
        if sig[0] == _EMPTY:
            return None
        best, best_slot = 0.0, -1
        for key in bands.tolist():
            slot = self.tables.get(key)
            if slot is not None and slot != best_slot:
                score = float(np.mean(self.sigs[slot] == sig))
                if score > best:
                    best, best_slot = score, slot
        if best >= self.threshold:
            return Match("input", self.labels[best_slot], "dedup-near", round(best, 4), "")
        return None

    def add(self, label: str, exact_key: int, sig: np.ndarray, bands: np.ndarray) -> None:
        """Register a kept row as the representative of its duplicates."""
        self.exact.setdefault(exact_key, label)
        if sig[0] == _EMPTY:
            return
        slot = len(self.labels)
        self.labels.append(label)
        if slot == len(self.sigs):
            self.sigs = np.concatenate([self.sigs, np.zeros_like(self.sigs)])
        self.sigs[slot] = sig
        for key in bands.tolist():
            self.tables.setdefault(key, slot)
