"""The cheap lexical screen in front of the embedding model (`--semantic`).

A row with quantities can only be removed (or judged) against an item whose quantities agree with
its own, and only when the MiniLM cosine of the two is high: same numbers *and* same story. A
rewrite keeps the story's names and objects ("Janet", "ducks", "muffins"), so a row that shares
almost no content word with every item whose numbers it shares is not a rewrite of any of them,
and embedding it cannot change the outcome. On GSM8K-style data most rows share a few small
numbers with some of the 1,319 GSM8K test items but not their words; this screen keeps them out of
the model, which is what makes `--semantic` fast on such data.

The measure is an IDF-weighted cosine of content words (lower case, stop words dropped, plurals
and a few synonyms folded as in the question signature), with the IDF fitted on the reference
texts. Words a row has that no reference item has still count in the row's norm. Texts with fewer
than `MIN_WORDS` content words ("If $2^8=4^x$, what is $x$?") say too little to screen: a pair
where both sides are that short always goes to the model.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from rsynth.decontam.signature import STOP_WORDS, stem

MIN_WORDS = 3  # distinct content words below which a text is too short to screen lexically
_WORD = re.compile(r"[a-z]+")
_MEMO = 8192  # texts whose vector entries are remembered: a batch's rows are screened, then looked up by answer


@functools.lru_cache(maxsize=1 << 16)
def _content_word(word: str) -> str | None:
    """The stem of a content word, None for a stop word (memoised: a corpus repeats few words)."""
    return stem(word) if len(word) > 1 and word not in STOP_WORDS else None


def content_words(text: str) -> list[str]:
    """Stemmed content words of `text`, in order (duplicates kept: they count as term frequency)."""
    return [s for s in map(_content_word, _WORD.findall(text.lower())) if s is not None]


class LexicalIndex:
    """Reference items as unit-length IDF-weighted word vectors (sparse), for row x item cosines."""

    def __init__(self, reference_texts: Sequence[str]) -> None:
        docs = [content_words(t) for t in reference_texts]
        df: Counter[str] = Counter(w for d in docs for w in set(d))
        n = len(docs)
        self.vocab = {w: j for j, w in enumerate(df)}
        self.idf = np.array([math.log((n + 1) / (df[w] + 1)) + 1 for w in df], dtype=np.float32)
        self.unknown_idf = math.log(n + 1) + 1  # a word in no reference item: rarest of all
        self._memo: dict[str, tuple[list[int], list[float], float, int]] = {}
        self.ref, self.ref_words = self._vectors([self._entries(d) for d in docs])
        self.ref_t = self.ref.T.tocsr()

    def _entries(self, words: list[str]) -> tuple[list[int], list[float], float, int]:
        """(vocabulary columns, weights, norm, distinct words) of one text's content words."""
        cols, vals = [], []
        counts = Counter(words)
        total = 0.0
        for w, k in counts.items():
            j = self.vocab.get(w)
            v = (1 + math.log(k)) * (self.idf[j] if j is not None else self.unknown_idf)
            total += v * v
            if j is not None:
                cols.append(j)
                vals.append(v)
        return cols, vals, math.sqrt(total) or 1.0, len(counts)

    def _text_entries(self, text: str) -> tuple[list[int], list[float], float, int]:
        """`_entries` of a text, remembered for the next call (bounded)."""
        got = self._memo.get(text)
        if got is None:
            if len(self._memo) >= _MEMO:
                self._memo.clear()
            got = self._memo[text] = self._entries(content_words(text))
        return got

    def _vectors(self, entries: Sequence[tuple[list[int], list[float], float, int]]):
        """(unit-length sparse vectors over the reference vocabulary, distinct content words per text)."""
        from scipy import sparse

        rows, cols, vals = [], [], []
        norms = np.ones(len(entries), dtype=np.float32)
        distinct = np.zeros(len(entries), dtype=np.int64)
        for r, (c, v, norm, n) in enumerate(entries):
            rows.extend([r] * len(c))
            cols.extend(c)
            vals.extend(v)
            norms[r] = norm
            distinct[r] = n
        m = sparse.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(entries), max(len(self.vocab), 1))
        )
        return sparse.diags(1 / norms) @ m, distinct

    def similarity(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(cosine of each text with each reference item, dense rows x items; distinct content words per text)."""
        vectors, distinct = self._vectors([self._text_entries(t) for t in texts])
        return (vectors @ self.ref_t).toarray(), distinct
