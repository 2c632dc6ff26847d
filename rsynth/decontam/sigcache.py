"""Reference-side quantity signatures, computed once per (reference texts, signature code).

Building the signatures of the ~3,000 bundled items costs seconds of CPU (number parsing in
`signature.py`), and every `--semantic` process (each worker too) needs all of them. They are kept in
memory for the process and on disk under the decontam cache, keyed by a SHA-256 of the texts and of
the source of `signature.py`, so that a change to the signature rules or to a benchmark set never
reads stale signatures. The file is written atomically and carries a checksum of its body; a torn,
foreign or edited file is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from rsynth.decontam import signature
from rsynth.decontam.signature import Signature

_MEMORY: dict[str, list[Signature]] = {}  # key -> signatures, for this process
_MEMORY_MAX = 4


def _code_digest() -> str:
    """The signature code's version: its source bytes (any edit changes every signature's meaning)."""
    return hashlib.sha256(Path(signature.__file__).read_bytes()).hexdigest()


def signatures_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256(_code_digest().encode())
    for t in texts:
        h.update(len(t.encode()).to_bytes(8, "little"))
        h.update(t.encode())
    return h.hexdigest()[:32]


def _body(items: list[list]) -> str:
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def _read(path: Path, key: str, count: int) -> list[Signature] | None:
    """The stored signatures when the file is whole, for this key, with `count` items."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        items = meta["items"]
        if meta.get("key") != key or len(items) != count or meta.get("sha256") != _checksum(_body(items)):
            return None
        return [Signature(tuple(q), frozenset(a)) for q, a in items]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _write(path: Path, key: str, sigs: Sequence[Signature]) -> None:
    items = [[list(s.quantities), sorted(s.ask)] for s in sigs]
    payload = json.dumps({"key": key, "sha256": _checksum(_body(items)), "items": items}, ensure_ascii=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(payload, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the rebuild next time


def reference_signatures(texts: Sequence[str], cache_dir: Path | None = None) -> list[Signature]:
    """`Signature.of` of each text, from this process's memory, else the disk cache, else built (and stored)."""
    key = signatures_key(texts)
    if key in _MEMORY:
        return list(_MEMORY[key])
    path = cache_dir / f"signatures-{key}.json" if cache_dir is not None else None
    sigs = _read(path, key, len(texts)) if path is not None else None
    if sigs is None:
        sigs = [Signature.of(t) for t in texts]
        if path is not None:
            _write(path, key, sigs)
    if len(_MEMORY) >= _MEMORY_MAX:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = sigs
    return list(sigs)
