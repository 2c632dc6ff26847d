"""Settings shared by the per-batch classifier (`classify.py`) and the semantic stage (`rephrase.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rsynth.decontam.paraphrase import SemanticConfig

Facts = tuple  # (answer, solution, tests) of a row, see keys.RowFacts
VERBATIM = 0.98  # item coverage from which an n-gram match is a copy of the whole item: final


@dataclass(frozen=True)
class SemanticSettings:
    config: SemanticConfig
    texts: tuple[str, ...]  # reference items, in index order
    cache_path: Path
    quiet: bool = False
