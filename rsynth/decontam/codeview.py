"""A second view of code tasks for retrieval: what the task asks, without its signature and examples.

A code item's prompt is mostly scaffolding (`from typing import List`, the `def` line, doctests),
and a rewrite keeps none of it: "Write a function squares_of(lst) returning a new list in which
each element of lst is squared" sits nearer, by MiniLM, to two other items' whole prompts than to
Mbpp/8's ("Write a function to find squares of individual elements in a list" plus an assert).
Compared description to description, the right item comes first (0.78 against 0.57 for the next).
For a code row the stage takes, per code item, the larger of the two cosines (whole prompt, or
description), so a row that keeps the signature and doctests loses nothing.

The bundled code items' description embeddings ship with the package
(`rsynth/resources/embeddings/code-descriptions.npy`, keyed by a hash of each description and
checked by SHA-256, built by bench/decontam_bundle_embeddings.py); other code items (an
`--against-file` set) are embedded when the first code row needs them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rsynth.decontam.signature import _drop_examples, functions

SHIPPED = "code-descriptions"
_IMPORT = re.compile(r"^\s*(?:from\s+\S+\s+)?import\s.*$", re.MULTILINE)
_DEF_LINE = re.compile(r"\bdef\s+\w+\s*\([^)]*\)\s*(?:->\s*[^:\n]+)?:")
_EXAMPLE_HEAD = re.compile(r"^\s*(?:examples?|for example|e\.g\.|example usage)\s*:?.*$", re.IGNORECASE | re.MULTILINE)


def describe(text: str) -> str:
    """The task's own words: no imports, `def` line, doctests, asserts or example lines, no quotes."""
    names = functions(text)
    body = _drop_examples(text, names) if names else text
    body = _DEF_LINE.sub(" ", _IMPORT.sub(" ", body))
    body = _EXAMPLE_HEAD.sub(" ", body.replace('"""', " ").replace("'''", " "))
    return " ".join(body.split())


def key(description: str) -> str:
    return hashlib.sha1(description.encode()).hexdigest()


def _shipped_dir() -> Path:
    from importlib import resources

    from rsynth.decontam.semantic import BUNDLE_DIR

    return Path(str(resources.files("rsynth") / "resources" / BUNDLE_DIR))


def shipped() -> dict[str, np.ndarray]:
    """Description hash -> unit vector, from the shipped array (empty when absent, stale or damaged)."""
    from rsynth.decontam.semantic import _checksum, model_version

    directory = _shipped_dir()
    try:
        meta = json.loads((directory / f"{SHIPPED}.json").read_text())
        array = np.load(directory / f"{SHIPPED}.npy")
    except (OSError, ValueError):
        return {}
    if meta.get("model") != model_version() or _checksum(array) != meta.get("sha256"):
        return {}
    if array.shape[0] != len(meta.get("keys", ())):
        return {}
    return dict(zip(meta["keys"], array.astype(np.float32)))


class CodeView:
    """Description embeddings of the reference code items (built on first use) and row x item cosines."""

    def __init__(self, texts: Sequence[str], code_items: np.ndarray, embed: Callable[[list[str]], np.ndarray]) -> None:
        self.texts = texts
        self.code_items = code_items
        self.embed = embed
        self._matrix: np.ndarray | None = None

    @property
    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            descriptions = [describe(self.texts[i]) for i in self.code_items.tolist()]
            known = shipped()
            missing = sorted({d for d in descriptions if key(d) not in known})
            if missing:
                known.update(zip(map(key, missing), self.embed(missing)))
            dim = next(iter(known.values())).shape[0] if known else 384
            rows = [known.get(key(d), np.zeros(dim, dtype=np.float32)) for d in descriptions]
            self._matrix = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        return self._matrix

    def similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine of each text's description with each code item's (rows x code items)."""
        if not len(texts) or not self.code_items.size:
            return np.zeros((len(texts), self.code_items.size), dtype=np.float32)
        return self.embed([describe(t) for t in texts]) @ self.matrix.T
