"""The per-batch work a worker process does: tokenise, match, embed, and dedup signatures.

Everything here is a pure function of the batch's texts and the (cached) index, so batches can be
spread over processes and the results merged in input order without changing the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rsynth.decontam import dedup
from rsynth.decontam.hashing import TokenBatch, text_key
from rsynth.decontam.index import IndexConfig, load_index
from rsynth.decontam.matcher import Match, Thresholds, match_batch
from rsynth.decontam.normalise import tokens
from rsynth.decontam.settings import Facts, SemanticSettings

__all__ = ["BatchResult", "Classifier", "Facts", "SemanticSettings", "Settings", "init_worker", "run_in_worker"]


@dataclass(frozen=True)
class Settings:
    index_path: Path
    config: IndexConfig
    thresholds: Thresholds
    dedup: bool
    semantic: SemanticSettings | None
    strict: bool = False  # "same setup, another question" is removed, not listed in review/


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
            from rsynth.decontam.rephrase import RephraseStage

            self.semantic = RephraseStage(settings.semantic, self.index, settings.strict)

    def __call__(self, texts: Sequence[str], facts: Sequence[Facts] | None = None) -> BatchResult:
        rows = [tokens(t) for t in texts]
        batch = TokenBatch.from_tokens(rows)
        keys = [text_key(r) for r in rows]
        matches = match_batch(self.index, rows, keys, batch, self.settings.thresholds)
        reviews: list[Match | None] = [None] * len(rows)
        embedded = 0
        if self.semantic is not None:
            known = list(facts) if facts is not None else [(None, None, None)] * len(texts)
            embedded = self.semantic(texts, known, matches, reviews)
        return BatchResult(
            ntokens=[len(r) for r in rows],
            matches=matches,
            reviews=reviews,
            exact_keys=keys,
            dedup=dedup.features(batch) if self.settings.dedup else None,
            embedded=embedded,
        )

    def close(self) -> None:
        if self.semantic is not None:
            self.semantic.close()


_worker: Classifier | None = None


def init_worker(settings: Settings) -> None:
    global _worker
    from rsynth.data.interrupts import ignore_interrupts

    ignore_interrupts()  # Ctrl-C is the parent's to handle (no worker tracebacks)
    if settings.semantic is not None:
        import torch  # one intra-op thread per process: the processes are the parallelism

        torch.set_num_threads(1)
    _worker = Classifier(settings)


def run_in_worker(texts: list[str], facts: list[Facts] | None = None) -> BatchResult:
    assert _worker is not None, "init_worker was not called"
    return _worker(texts, facts)
