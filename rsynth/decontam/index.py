"""The benchmark index: exact keys and hashed n-grams of every reference item, cached on disk.

Each item is indexed at its own window length `n_i = clamp(len // 3, min_n, n)`: long items use
`n` (13 by default, as in lm-eval-harness), while short AIME/GSM8K items get shorter windows so a
truncated copy (e.g. the first 60% of the item) still contains whole windows. Items shorter than
`min_n` tokens are matched exactly only: their few tokens are not specific enough to flag overlaps.

An n-gram found in more than `max_df` distinct reference items is boilerplate ("express your answer
as a common fraction") and is dropped, both from lookups and from the item's n-gram count.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rsynth.decontam.hashing import TokenBatch, text_key
from rsynth.decontam.normalise import tokens
from rsynth.decontam.references import ReferenceSet

INDEX_FORMAT = 1  # bump when normalisation, tokenisation or hashing changes
BLOOM_BITS = 24  # 16 MiB presence table: rejects ~99% of non-matching windows before searchsorted


@dataclass(frozen=True)
class IndexConfig:
    n: int = 13
    min_n: int = 6
    max_df: int = 4

    def window(self, length: int) -> int:
        """The n-gram length an item of `length` tokens is indexed at (0: exact match only)."""
        if length < self.min_n:
            return 0
        return min(self.n, max(self.min_n, length // 3))


@dataclass
class Index:
    config: IndexConfig
    benchmarks: list[str]
    item_bench: np.ndarray  # int32 benchmark of each item
    item_ids: list[str]
    item_len: np.ndarray  # int32 tokens per item
    item_n: np.ndarray  # int32 window length (0 = exact only)
    item_grams: np.ndarray  # int32 distinct, non-boilerplate n-grams per item
    exact_keys: np.ndarray  # uint64 whole-item keys
    exact_items: np.ndarray  # int32 item of each exact key
    keys: np.ndarray  # uint64 sorted unique n-gram keys
    post_off: np.ndarray  # int64 CSR offsets into post_items, len(keys) + 1
    post_items: np.ndarray  # int32 items containing each key
    dropped: int  # boilerplate n-grams ignored

    def __post_init__(self) -> None:
        self.lengths = sorted({int(x) for x in np.unique(self.item_n) if x > 0})
        self.bloom = np.zeros(1 << BLOOM_BITS, dtype=bool)
        self.bloom[self.keys >> np.uint64(64 - BLOOM_BITS)] = True
        # first item wins when two items normalise to the same text: deterministic
        self.exact = {}
        for key, item in zip(self.exact_keys.tolist(), self.exact_items.tolist()):
            self.exact.setdefault(key, item)

    def describe(self, item: int) -> tuple[str, str]:
        return self.benchmarks[int(self.item_bench[item])], self.item_ids[item]


def build_index(refs: list[ReferenceSet], config: IndexConfig) -> Index:
    """Tokenise every reference item and build the exact and n-gram tables."""
    toks, bench, ids = [], [], []
    for b, ref in enumerate(refs):
        for item_id, text in zip(ref.ids, ref.texts):
            toks.append(tokens(text))
            bench.append(b)
            ids.append(item_id)
    item_len = np.array([len(t) for t in toks], dtype=np.int32)
    item_n = np.array([config.window(int(x)) for x in item_len], dtype=np.int32)
    batch = TokenBatch.from_tokens(toks)
    gram_keys, gram_items = [], []
    for length, keys in batch.grams(config.n):
        pos = np.arange(keys.size)
        pos = pos[batch.valid(pos, length)]
        pos = pos[item_n[batch.row_of[pos]] == length]
        gram_keys.append(keys[pos])
        gram_items.append(batch.row_of[pos].astype(np.int32))
    pairs = np.unique(np.stack([np.concatenate(gram_keys), np.concatenate(gram_items).astype(np.uint64)]), axis=1)
    keys, first, df = np.unique(pairs[0], return_index=True, return_counts=True)
    common = df > config.max_df
    keep_pair = ~np.repeat(common, df)
    pairs = pairs[:, keep_pair]
    keys, df = keys[~common], df[~common]
    post_items = pairs[1].astype(np.int32)
    item_grams = np.bincount(post_items, minlength=len(toks)).astype(np.int32)
    exact_keys = np.array([text_key(t) for t in toks], dtype=np.uint64)
    return Index(
        config=config,
        benchmarks=[r.name for r in refs],
        item_bench=np.array(bench, dtype=np.int32),
        item_ids=ids,
        item_len=item_len,
        item_n=item_n,
        item_grams=item_grams,
        exact_keys=exact_keys,
        exact_items=np.arange(len(toks), dtype=np.int32),
        keys=keys,
        post_off=np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
        post_items=post_items,
        dropped=int(common.sum()),
    )


_ARRAYS = (
    "item_bench",
    "item_len",
    "item_n",
    "item_grams",
    "exact_keys",
    "exact_items",
    "keys",
    "post_off",
    "post_items",
)


def cache_dir() -> Path:
    return Path(os.environ.get("RSYNTH_CACHE") or Path.home() / ".cache" / "rsynth") / "decontam"


def index_key(refs: list[ReferenceSet], config: IndexConfig) -> str:
    h = hashlib.sha256(json.dumps({"format": INDEX_FORMAT, "config": asdict(config)}, sort_keys=True).encode())
    for ref in refs:
        h.update(ref.digest().encode())
    return h.hexdigest()[:20]


def load_index(path: Path, config: IndexConfig) -> Index:
    """Load a cached index file (workers load it by path instead of receiving it pickled)."""
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        arrays = {name: z[name] for name in _ARRAYS}
    return Index(
        config=config, benchmarks=meta["benchmarks"], item_ids=meta["item_ids"], dropped=meta["dropped"], **arrays
    )


def load_or_build(refs: list[ReferenceSet], config: IndexConfig) -> tuple[Index, Path]:
    """Load the cached index for these references and settings, building and caching it once."""
    path = cache_dir() / f"index-{index_key(refs, config)}.npz"
    if path.exists():
        try:
            return load_index(path, config), path
        except (OSError, ValueError, KeyError):  # a corrupt or foreign file: rebuild over it
            pass
    index = build_index(refs, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"benchmarks": index.benchmarks, "item_ids": index.item_ids, "dropped": index.dropped}).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, meta=np.frombuffer(meta, dtype=np.uint8), **{name: getattr(index, name) for name in _ARRAYS})
    os.replace(tmp, path)
    return index, path
