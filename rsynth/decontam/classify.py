"""The per-batch work a worker process does: tokenise, match, embed, and dedup signatures.

Everything here is a pure function of the batch's texts and the (cached) index, so batches can be
spread over processes and the results merged in input order without changing the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsynth.decontam import dedup
from rsynth.decontam.hashing import TokenBatch, text_key
from rsynth.decontam.index import IndexConfig, load_index
from rsynth.decontam.matcher import Match, Thresholds, match_batch
from rsynth.decontam.normalise import tokens
from rsynth.decontam.paraphrase import SemanticConfig


@dataclass(frozen=True)
class SemanticSettings:
    config: SemanticConfig
    texts: tuple[str, ...]  # reference items, in index order
    cache_path: Path
    quiet: bool = False


@dataclass(frozen=True)
class Settings:
    index_path: Path
    config: IndexConfig
    thresholds: Thresholds
    dedup: bool
    semantic: SemanticSettings | None


@dataclass
class BatchResult:
    ntokens: list[int]
    matches: list[Match | None]
    reviews: list[Match | None]  # kept rows worth a look; evidence rule "uncertain" ones go to the judge
    exact_keys: list[int]
    dedup: dedup.DedupFeatures | None
    embedded: int = 0  # rows the semantic stage embedded (the rest were ruled out by signature)


class Classifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.index = load_index(settings.index_path, settings.config)
        self.semantic = None
        if settings.semantic is not None:
            from rsynth.decontam.paraphrase import ParaphraseDecider
            from rsynth.decontam.semantic import Embedder

            sem = settings.semantic
            self.item_of = {self.index.describe(i): i for i in range(len(self.index.item_ids))}
            self.semantic = (Embedder(sem.texts, sem.cache_path, quiet=sem.quiet), ParaphraseDecider(sem.texts, sem.config))

    def __call__(self, texts: Sequence[str]) -> BatchResult:
        rows = [tokens(t) for t in texts]
        batch = TokenBatch.from_tokens(rows)
        keys = [text_key(r) for r in rows]
        matches = match_batch(self.index, rows, keys, batch, self.settings.thresholds)
        reviews: list[Match | None] = [None] * len(rows)
        embedded = self._semantic(texts, matches, reviews) if self.semantic is not None else 0
        return BatchResult(
            ntokens=[len(r) for r in rows],
            matches=matches,
            reviews=reviews,
            exact_keys=keys,
            dedup=dedup.features(batch) if self.settings.dedup else None,
            embedded=embedded,
        )

    def _spare_template_siblings(self, texts: Sequence[str], matches: list[Match | None], reviews: list[Match | None]) -> None:
        """An n-gram match whose quantities disagree with the item's is a template sibling (same
        words, other numbers): with --semantic it is kept and listed for review, not removed."""
        from rsynth.decontam.signature import Signature

        assert self.semantic is not None
        decider = self.semantic[1]
        for i, m in enumerate(matches):
            if m is None or m.stage != "ngram":
                continue
            ev = decider.template_sibling(Signature.of(texts[i]), self.item_of[(m.benchmark, m.item_id)])
            if ev is not None:
                matches[i], reviews[i] = None, Match(m.benchmark, m.item_id, m.stage, m.score, m.span, ev.as_struct())

    def _semantic(self, texts: Sequence[str], matches: list[Match | None], reviews: list[Match | None]) -> int:
        """Signatures for rows the cheaper stages kept; embed only those the signature gate and the
        lexical screen let through (one batched call, each distinct text once), then fill removals and review entries in place. Returns the
        number of rows embedded."""
        from rsynth.decontam.signature import Signature

        assert self.semantic is not None
        embedder, decider = self.semantic
        self._spare_template_siblings(texts, matches, reviews)
        todo = [i for i, m in enumerate(matches) if m is None and reviews[i] is None]
        sigs = [Signature.of(texts[i]) for i in todo]
        need, by_signature = decider.gate(sigs, [texts[i] for i in todo])
        picked = np.flatnonzero(need)
        if picked.size == 0:
            return 0
        unique = list(dict.fromkeys(texts[todo[p]] for p in picked))  # a repeated text is embedded once
        at = {t: n for n, t in enumerate(unique)}
        vectors = embedder.embed(unique)
        sims = vectors[[at[texts[todo[p]]] for p in picked]] @ embedder.ref.T
        for row_sims, p in zip(sims, picked.tolist()):
            ev = decider.decide(sigs[p], row_sims, by_signature[p])
            if ev is None:
                continue
            bench, item_id = self.index.describe(ev.item)
            m = Match(bench, item_id, "semantic", round(ev.cosine, 4), "", ev.as_struct())
            if ev.rule in ("paraphrase", "near-copy"):
                matches[todo[p]] = m
            else:
                reviews[todo[p]] = m
        return int(picked.size)


_worker: Classifier | None = None


def init_worker(settings: Settings) -> None:
    global _worker
    from rsynth.data.interrupts import ignore_interrupts

    ignore_interrupts()  # Ctrl-C is the parent's to handle (no worker tracebacks)
    if settings.semantic is not None:
        import torch  # one intra-op thread per process: the processes are the parallelism

        torch.set_num_threads(1)
    _worker = Classifier(settings)


def run_in_worker(texts: list[str]) -> BatchResult:
    assert _worker is not None, "init_worker was not called"
    return _worker(texts)
