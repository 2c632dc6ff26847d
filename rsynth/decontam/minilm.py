"""all-MiniLM-L6-v2 in a page of torch: what `--semantic` embeds with.

The sentence-transformers model is a 6-layer BERT encoder, mean pooling over the attention mask
and L2 normalisation (the bundled package's modules.json), inputs truncated to 256 word pieces
(sentence_bert_config.json). Running it through sentence-transformers or transformers means
importing them: on 2 busy cores that took longer than embedding the few hundred rows a warm run
needs (sentence-transformers 9-28 s, transformers' BertModel 7-21 s, torch itself 3-7 s, measured
here under load). This module needs torch, `tokenizers` (Rust) and `safetensors`, computes the
same layers with the same torch kernels, and gives the same vectors (tests/decontam/test_semantic.py
compares it with sentence-transformers: max abs difference ~1e-7).
"""

from __future__ import annotations

import ctypes
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length
BATCH = 64  # rows per forward pass at most: larger batches pad more and ran slower on 2 cores
# A forward pass is cut where padding would exceed this share of its real tokens. A warm run embeds a
# few dozen rows per batch of GSM8K-like lengths (40-150 word pieces): padded to the longest as one
# pass they cost 2.3x their real tokens; cut by length they cost <= 1.15x and ran 2x faster.
PAD_SLACK = 1.15
# Vectors remembered per model, keyed by the token ids a text became (the model's whole input): a
# code row is embedded whole and by its description, which for prose is the same text (~1 in 5
# texts of a warm GSM8K-like run); a repeated row is embedded once. 384 floats each: ~6 MiB.
MEMO = 4096
# Word pieces per packed forward (whole passes, so at most this plus one pass of 64 x 256): bounds the
# memory of a large call (the cold build embeds 256 texts a call; `--semantic-embed-all` a whole batch)
# and keeps the matrix products at sizes that run at full speed here (~2,000-10,000 rows).
CHUNK_TOKENS = 8192
# glibc hands large freed blocks back to the system (blocks over its mmap threshold are unmapped, a free
# heap top over its trim threshold is trimmed), so every forward pass page-faults its activations in
# again: on a warm run's texts 0.5 of 9 CPU s went to the kernel (180,000 page faults), on long texts
# 1.8 of 13.7. Freed blocks up to this size are kept for the next pass instead (0.01-0.13 s; the same
# vectors: only where the memory comes from changes). glibc only; elsewhere nothing is set.
KEEP_FREED = 256 << 20


class VectorMemo:
    """Least recently used (token ids -> vector) store: the vector a model gives for exactly these ids."""

    def __init__(self, size: int = MEMO) -> None:
        self.size = size
        self._vectors: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, ids: tuple[int, ...]) -> np.ndarray | None:
        vector = self._vectors.get(ids)
        if vector is not None:
            self._vectors.move_to_end(ids)
            self.hits += 1
        return vector

    def put(self, ids: tuple[int, ...], vector: np.ndarray) -> None:
        self._vectors[ids] = vector
        self._vectors.move_to_end(ids)
        while len(self._vectors) > self.size:
            self._vectors.popitem(last=False)


def length_batches(lengths: Sequence[int], slack: float = PAD_SLACK, most: int = BATCH) -> list[list[int]]:
    """Indices grouped into forward passes, longest first: each pass holds at most `most` texts and
    pads to at most `slack` times its real tokens (a text alone always forms a pass)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep input order
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        width, real, end = lengths[order[start]], lengths[order[start]], start + 1
        while (
            end < len(order)
            and end - start < most
            and width * (end - start + 1) <= slack * (real + lengths[order[end]])
        ):
            real += lengths[order[end]]
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def keep_freed_memory(size: int = KEEP_FREED) -> bool:
    """Ask glibc's malloc to keep freed blocks up to `size` bytes for reuse (`KEEP_FREED`); False where
    there is no glibc `mallopt` (the process then allocates as before)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, size)) and bool(mallopt(m_trim_threshold, size))


class MiniLM:
    """The bundled BERT weights and tokenizer; `encode` gives unit-length sentence embeddings."""

    def __init__(self, path: Path) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.torch = torch
        config = json.loads((path / "config.json").read_text())
        self.heads, self.layers, self.eps = (
            config["num_attention_heads"],
            config["num_hidden_layers"],
            config["layer_norm_eps"],
        )
        self.dim = config["hidden_size"]
        self.w = load_file(str(path / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file pads every text to 128 tokens; a batch is padded to its longest
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.memo = VectorMemo()
        keep_freed_memory()

    def _norm(self, x, name: str):
        return self.torch.nn.functional.layer_norm(
            x, (self.dim,), self.w[name + ".weight"], self.w[name + ".bias"], self.eps
        )

    def _linear(self, x, name: str):
        return self.torch.nn.functional.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def _forward(self, ids, positions, passes):
        """BertModel's last hidden state (embeddings, then per layer: attention, add & norm, GELU
        feed-forward, add & norm), eval mode, on packed tokens: `ids` and `positions` are every
        text's word pieces one after the other, without padding. Every step but attention works
        token by token, so it runs once on all of them (no FLOP on padding); attention runs per
        pass (`_Pass`), padded to the pass's longest text with the padding masked out."""
        F, w = self.torch.nn.functional, self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (self._linear(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
            a = self.torch.cat([self._attend(F, q, k, v, one) for one in passes])
            x = self._norm(self._linear(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = F.gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def _attend(self, F, q, k, v, one: _Pass):
        """Self-attention of one pass's texts (rows `one.start:one.end` of the packed q, k, v)."""
        q, k, v = (t[one.start : one.end] for t in (q, k, v))
        width = one.width
        if one.valid is None:  # one text, or texts of one length: nothing to pad
            batch = (one.end - one.start) // width

            def heads(t):
                return t.view(batch, width, self.heads, -1).transpose(1, 2)

            a = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
            return a.transpose(1, 2).reshape(one.end - one.start, self.dim)
        batch = one.valid.shape[0]

        def padded(t):
            out = t.new_zeros((batch, width, self.dim))
            out[one.valid] = t
            return out.view(batch, width, self.heads, -1).transpose(1, 2)

        a = F.scaled_dot_product_attention(padded(q), padded(k), padded(v), attn_mask=one.bias)
        return a.transpose(1, 2).reshape(batch, width, self.dim)[one.valid]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, tokenized once; texts whose token ids were embedded before (in
        this call or an earlier one) come from the memo, the others run in passes of similar length
        (`length_batches`) so that each pass pads little. A text's vector does not depend on the
        pass it runs in (padding gets no attention and no weight in the mean), up to float rounding
        (~1e-7)."""
        ids = [tuple(e.ids) for e in self.tokenizer.encode_batch(list(texts))]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo: dict[tuple[int, ...], list[int]] = {}  # ids not in the memo -> the rows that have them
        for row, key in enumerate(ids):
            vector = None if key in todo else self.memo.get(key)
            if vector is None:
                todo.setdefault(key, []).append(row)
            else:
                out[row] = vector
        fresh = list(todo)
        for key, vector in zip(fresh, self._encode_ids(fresh)):
            out[todo[key]] = vector
            self.memo.put(key, vector.copy())
        return out

    def _encode_ids(self, encoded: Sequence[tuple[int, ...]]) -> np.ndarray:
        """The model's vectors of token id sequences: packed (`_forward`), attention in passes of
        similar length, in chunks of about `CHUNK_TOKENS` word pieces (whole passes)."""
        out = np.zeros((len(encoded), self.dim), dtype=np.float32)
        chunk: list[list[int]] = []
        tokens = 0
        for idx in length_batches([len(e) for e in encoded]):
            chunk.append(idx)
            tokens += sum(len(encoded[i]) for i in idx)
            if tokens >= CHUNK_TOKENS:
                self._encode_chunk(encoded, chunk, out)
                chunk, tokens = [], 0
        if chunk:
            self._encode_chunk(encoded, chunk, out)
        return out

    def _encode_chunk(self, encoded: Sequence[tuple[int, ...]], passes: list[list[int]], out: np.ndarray) -> None:
        """Fills `out`'s rows of the texts in `passes`: each vector the mean of its text's own word pieces."""
        torch = self.torch
        order: list[int] = []
        spans: list[_Pass] = []
        start = 0
        for idx in passes:
            lengths = [len(encoded[i]) for i in idx]
            spans.append(_Pass.of(torch, start, lengths))
            start += sum(lengths)
            order.extend(idx)
        sizes = [len(encoded[i]) for i in order]
        ids = torch.tensor([t for i in order for t in encoded[i]], dtype=torch.long)
        positions = torch.cat([torch.arange(n) for n in sizes])
        with torch.inference_mode():
            hidden = self._forward(ids, positions, spans)
            segment = torch.repeat_interleave(torch.arange(len(order)), torch.tensor(sizes))
            pooled = hidden.new_zeros((len(order), self.dim)).index_add_(0, segment, hidden)
            pooled = pooled / torch.tensor(sizes, dtype=hidden.dtype)[:, None]
            out[order] = torch.nn.functional.normalize(pooled, dim=1).numpy()


@dataclass(frozen=True)
class _Pass:
    """One attention pass: packed rows `start:end`, padded to `width` tokens per text; `valid` marks
    the real tokens of the padded (texts x width) grid and `bias` masks the padding out as keys
    (None for both when every text of the pass has `width` tokens)."""

    start: int
    end: int
    width: int
    valid: object = None
    bias: object = None

    @classmethod
    def of(cls, torch, start: int, lengths: Sequence[int]) -> _Pass:
        width, end = max(lengths), start + sum(lengths)
        if all(n == width for n in lengths):
            return cls(start, end, width)
        valid = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
        bias = (~valid)[:, None, None, :].to(torch.float32) * torch.finfo(torch.float32).min
        return cls(start, end, width, valid, bias)
