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

import json
from collections import OrderedDict
from collections.abc import Sequence
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

    def _norm(self, x, name: str):
        return self.torch.nn.functional.layer_norm(
            x, (self.dim,), self.w[name + ".weight"], self.w[name + ".bias"], self.eps
        )

    def _linear(self, x, name: str):
        return self.torch.nn.functional.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def _forward(self, ids, mask):
        """BertModel's last hidden state (embeddings, then per layer: attention, add & norm, GELU
        feed-forward, add & norm), eval mode."""
        F, w = self.torch.nn.functional, self.w
        batch, width = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * self.torch.finfo(x.dtype).min  # padding gets no attention

        def heads(t):
            return t.view(batch, width, self.heads, -1).transpose(1, 2)

        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (heads(self._linear(x, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(batch, width, self.dim)
            x = self._norm(self._linear(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = F.gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

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
        """The model's vectors of token id sequences, in passes of similar length."""
        torch = self.torch
        out = np.zeros((len(encoded), self.dim), dtype=np.float32)
        for idx in length_batches([len(e) for e in encoded]):
            width = len(encoded[idx[0]])
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[r, : len(encoded[i])] = 1
            with torch.inference_mode():
                hidden = self._forward(ids, mask)
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out
