"""Per-batch matching of rows against the index: exact keys, then two-way n-gram coverage.

For a row r and a reference item i (window length n_i) the matcher measures
  item coverage = distinct n-grams of i found in r / distinct (non-boilerplate) n-grams of i
  row coverage  = windows of r whose n-gram occurs in i / windows of r
The first catches an item copied into a longer prompt; the second catches a truncated copy, whose
every window is in the item although it covers only part of it. Either above its threshold flags
the row; the reported score is the larger of the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rsynth.decontam.hashing import TokenBatch
from rsynth.decontam.index import BLOOM_BITS, Index

SPAN_CHARS = 500  # matched span kept in the report, in normalised tokens


@dataclass(frozen=True)
class Thresholds:
    item: float = 0.5  # open-instruct's rule: over half of the test item covered
    row: float = 0.5


@dataclass(frozen=True)
class Match:
    """Why a row is removed: the benchmark item it matches, by which stage, how strongly, where."""

    benchmark: str
    item_id: str
    stage: str
    score: float
    span: str
    evidence: dict[str, object] | None = None  # semantic stage: cosine, signature overlap, rule, judge
    item_coverage: float = 1.0  # share of the item's n-grams in the row (1.0 for exact): a whole item copied is final

    def as_struct(self) -> dict[str, object]:
        return {
            "benchmark": self.benchmark,
            "item_id": self.item_id,
            "stage": self.stage,
            "score": self.score,
            "span": self.span,
            "evidence": self.evidence,
        }


def _span(toks: Sequence[str], start: int, end: int) -> str:
    return " ".join(toks[start:end])[:SPAN_CHARS]


def _hits(index: Index, batch: TokenBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (flat position, key index, length) whose window is an indexed n-gram."""
    shift = np.uint64(64 - BLOOM_BITS)
    pos_all, key_all, len_all = [], [], []
    wanted = set(index.lengths)
    for length, keys in batch.grams(max(index.lengths, default=0)):
        if length not in wanted:
            continue
        pos = np.flatnonzero(index.bloom[keys >> shift])
        pos = pos[batch.valid(pos, length)]
        if pos.size == 0:
            continue
        k = keys[pos]
        at = np.minimum(np.searchsorted(index.keys, k), len(index.keys) - 1)
        found = index.keys[at] == k
        pos_all.append(pos[found])
        key_all.append(at[found])
        len_all.append(np.full(int(found.sum()), length, dtype=np.int64))
    if not pos_all:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(pos_all), np.concatenate(key_all), np.concatenate(len_all)


def ngram_matches(index: Index, batch: TokenBatch, rows: Sequence[Sequence[str]], th: Thresholds) -> dict[int, Match]:
    """Best n-gram match per flagged row of the batch (rows not flagged are absent)."""
    pos, key, length = _hits(index, batch)
    if pos.size == 0:
        return {}
    # expand each hit to every item that contains its n-gram (CSR postings)
    counts = index.post_off[key + 1] - index.post_off[key]
    hit = np.repeat(np.arange(pos.size), counts)
    within = np.arange(hit.size) - np.repeat(np.cumsum(counts) - counts, counts)
    item = index.post_items[index.post_off[key][hit] + within].astype(np.int64)
    keep = index.item_n[item] == length[hit]  # an item only counts windows of its own length
    hit, item = hit[keep], item[keep]
    row = batch.row_of[pos[hit]]
    pair, inv = np.unique(row * len(index.item_ids) + item, return_inverse=True)
    windows = np.bincount(inv, minlength=pair.size)
    distinct = np.bincount(
        np.unique(inv.astype(np.int64) * len(index.keys) + key[hit]) // len(index.keys), minlength=pair.size
    )
    local = pos[hit] - batch.starts[row]
    first = np.full(pair.size, np.iinfo(np.int64).max)
    last = np.zeros(pair.size, dtype=np.int64)
    np.minimum.at(first, inv, local)
    np.maximum.at(last, inv, local + length[hit])
    p_row, p_item = pair // len(index.item_ids), pair % len(index.item_ids)
    item_cov = distinct / np.maximum(index.item_grams[p_item], 1)
    row_cov = windows / np.maximum(batch.lengths[p_row] - index.item_n[p_item] + 1, 1)
    score = np.maximum(item_cov, row_cov)
    flagged = (item_cov >= th.item) | (row_cov >= th.row)
    best: dict[int, Match] = {}
    # highest score first; ties broken by the smaller item index (pairs are sorted by row, item)
    for j in sorted(np.flatnonzero(flagged).tolist(), key=lambda j: (-score[j], j)):
        r = int(p_row[j])
        if r in best:
            continue
        bench, item_id = index.describe(int(p_item[j]))
        best[r] = Match(
            bench,
            item_id,
            "ngram",
            round(float(score[j]), 4),
            _span(rows[r], int(first[j]), int(last[j])),
            item_coverage=round(float(item_cov[j]), 4),
        )
    return best


def match_batch(
    index: Index, rows: Sequence[Sequence[str]], keys: Sequence[int], batch: TokenBatch, th: Thresholds
) -> list[Match | None]:
    """Exact match first (cheapest, strongest evidence), then n-gram overlap, for each row.

    `keys` are the rows' `text_key`s, computed once by the caller and shared with dedup.
    """
    out: list[Match | None] = []
    for toks, key in zip(rows, keys):
        item = index.exact.get(key)
        if item is None:
            out.append(None)
        else:
            bench, item_id = index.describe(item)
            out.append(Match(bench, item_id, "exact", 1.0, _span(toks, 0, len(toks))))
    for r, m in ngram_matches(index, batch, rows, th).items():
        if out[r] is None:
            out[r] = m
    return out
