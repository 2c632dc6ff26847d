"""The reference-signature cache returns exactly what `Signature.of` builds, and never a stale or torn file."""

from __future__ import annotations

import json

from rsynth.decontam import sigcache
from rsynth.decontam.signature import Signature

TEXTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May. How many in all?",
    "Write a function `add_two(x)` that returns x + 2.\nassert add_two(3) == 5",
    "Café prices rose by 25% from $1,430. What is the new price in dollars?",
    "No numbers here at all: what colour is the sky?",
]


def _fresh() -> None:
    sigcache._MEMORY.clear()


def test_disk_round_trip_equals_built(tmp_path):
    _fresh()
    built = [Signature.of(t) for t in TEXTS]
    assert sigcache.reference_signatures(TEXTS, tmp_path) == built
    assert len(list(tmp_path.glob("signatures-*.json"))) == 1
    _fresh()
    assert sigcache.reference_signatures(TEXTS, tmp_path) == built  # read back from disk
    assert sigcache.reference_signatures(TEXTS) == built  # and from memory


def test_key_follows_texts_and_code(tmp_path, monkeypatch):
    key = sigcache.signatures_key(TEXTS)
    assert sigcache.signatures_key(TEXTS[:-1]) != key
    assert sigcache.signatures_key(["ab", "c"]) != sigcache.signatures_key(["a", "bc"])
    monkeypatch.setattr(sigcache, "_code_digest", lambda: "another version")
    assert sigcache.signatures_key(TEXTS) != key


def test_edited_or_torn_file_is_rebuilt(tmp_path):
    _fresh()
    built = [Signature.of(t) for t in TEXTS]
    sigcache.reference_signatures(TEXTS, tmp_path)
    (path,) = tmp_path.glob("signatures-*.json")
    meta = json.loads(path.read_text())
    meta["items"][0][0] = ["999"]  # edited body: the checksum no longer matches
    path.write_text(json.dumps(meta))
    _fresh()
    assert sigcache.reference_signatures(TEXTS, tmp_path) == built
    path.write_text(path.read_text()[:50])  # torn write
    _fresh()
    assert sigcache.reference_signatures(TEXTS, tmp_path) == built
    assert json.loads(path.read_text())["key"] == sigcache.signatures_key(TEXTS)  # rewritten whole
