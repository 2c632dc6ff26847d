"""The speed work on `--semantic` (issue 23) changes no output: passes cut by length give the vectors a
text gets alone, and the lexical screen's memo gives the scores a fresh index gives."""

from __future__ import annotations

import json
import os
import random
import re

import numpy as np
import pytest

from rsynth.decontam.lexical import LexicalIndex, content_words
from rsynth.decontam.minilm import VectorMemo, length_batches
from rsynth.decontam.signature import STOP_WORDS, stem
from tests.paths import FIXTURES

PROBE = FIXTURES / "decontam_probe.jsonl"


def _probe_texts() -> list[str]:
    return [json.loads(line)["problem"] for line in PROBE.open()]


def test_length_batches_cover_every_text_once_and_pad_little():
    rng = random.Random(0)
    lengths = [rng.choice([3, 40, 41, 60, 90, 128, 256]) + rng.randint(0, 9) for _ in range(500)]
    batches = length_batches(lengths, slack=1.15, most=64)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        width, real = max(lengths[i] for i in b), sum(lengths[i] for i in b)
        assert len(b) <= 64 and (len(b) == 1 or width * len(b) <= 1.15 * real)
        assert lengths[b[0]] == width  # a pass pads to its first (longest) text
    assert length_batches([]) == [] and length_batches([5]) == [[0]]
    # ties keep the input order, so the passes (and their float sums) do not depend on anything else
    assert length_batches([7, 7, 7], slack=1.0) == [[0, 1, 2]]


def test_content_words_memo_keeps_the_words():
    for text in _probe_texts()[:100]:
        words = re.findall(r"[a-z]+", text.lower())
        assert content_words(text) == [stem(w) for w in words if len(w) > 1 and w not in STOP_WORDS]


def test_lexical_similarity_is_the_same_with_the_memo():
    texts = _probe_texts()
    refs, rows = texts[:80], texts[80:120] + texts[:20]
    index = LexicalIndex(refs)
    first, words = index.similarity(rows)
    again, words_again = index.similarity(list(reversed(rows)))  # every row now from the memo
    fresh, _ = LexicalIndex(refs).similarity(rows)
    assert np.array_equal(first, fresh) and np.array_equal(again[::-1], first)
    assert np.array_equal(words_again[::-1], words)
    assert (first > 0.99).sum() >= 20  # the 20 reference texts among the rows find themselves


def test_vector_memo_is_keyed_by_the_exact_token_ids_and_bounded():
    memo = VectorMemo(size=2)
    a, b, c = (np.full(4, v, dtype=np.float32) for v in (1, 2, 3))
    memo.put((101, 7, 102), a)
    memo.put((101, 8, 102), b)
    assert memo.get((101, 7, 102)) is a and memo.get((101, 8, 102)) is b
    assert memo.get((101, 7)) is None and memo.get((101, 7, 102, 0)) is None  # a prefix or a longer input misses
    memo.get((101, 7, 102))  # used last: the other one goes first
    memo.put((101, 9, 102), c)
    assert len(memo) == 2 and memo.get((101, 8, 102)) is None
    assert memo.get((101, 7, 102)) is a and memo.get((101, 9, 102)) is c
    assert memo.hits == 5


@pytest.mark.slow  # loads the embedding model
def test_passes_by_length_give_each_text_its_own_vector():
    from rsynth.decontam.semantic import load_model

    model = load_model()
    texts = _probe_texts()[:24] + ["Short.", "word " * 400]
    together = model.encode(texts)
    model.memo = type(model.memo)()  # each text alone, computed afresh
    alone = np.concatenate([model.encode([t]) for t in texts])
    assert np.abs(together - alone).max() < 1e-5
    # the memo: the same token ids (whitespace differs, the model input does not) give the stored vector;
    # one changed number gives another input and a computed vector
    hits = model.memo.hits
    spaced = [" ".join(t.split()) + "  " for t in texts[:3]]
    changed = texts[3].replace("1", "7", 1) if "1" in texts[3] else texts[3] + " 7"
    again = model.encode([*spaced, changed, texts[0]])
    assert model.memo.hits - hits == 4 and np.array_equal(again[:3], alone[:3]) and np.array_equal(again[4], alone[0])
    assert not np.array_equal(again[3], alone[3])
    model.memo = type(model.memo)()
    assert np.abs(model.encode([changed]) - again[3]).max() < 1e-5
    # the order of the input changes nothing either
    order = list(range(len(texts)))[::-1]
    assert np.abs(model.encode([texts[i] for i in order])[::-1] - together).max() < 1e-5
    # texts of one length share a pass with nothing to pad; each still gets its own vector
    same = ["Three red apples fell.", "Four blue birds flew."]
    model.memo = type(model.memo)()
    pair = model.encode(same)
    assert len(set(map(len, (e.ids for e in model.tokenizer.encode_batch(same))))) == 1
    model.memo = type(model.memo)()
    assert np.abs(pair - np.concatenate([model.encode([t]) for t in same])).max() < 1e-5
    assert float(pair[0] @ pair[1]) < 0.99


def test_torch_threads_wait_passively_unless_the_user_chose(monkeypatch):
    """Spinning OpenMP threads cost a loaded 2-core machine 4x the wall time (docs/decontaminate.md);
    a user's own OMP_WAIT_POLICY stays."""
    from rsynth.decontam.semantic import passive_threads

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    passive_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    passive_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_freed_activations_are_kept_for_the_next_pass():
    """A forward pass's large activations, freed, are reused by the next one instead of being handed
    back and page-faulted in again (`keep_freed_memory`; glibc, as on the machines rsynth runs on)."""
    import resource

    from rsynth.decontam.minilm import keep_freed_memory

    def faults() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    assert keep_freed_memory()
    size = 48 << 20  # over glibc's largest default mmap threshold (32 MiB): unmapped on free otherwise
    bytearray(size)  # (numpy may ask for huge pages, which hides the faults; a bytearray is plain malloc)
    before = faults()
    for _ in range(5):
        bytearray(size)
    assert faults() - before < 2000  # faulted in afresh, 5 passes are 61,000 pages here
