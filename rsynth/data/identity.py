"""What an input was when a run started, so a re-run over a changed input is noticed.

The run key says which command and options produced an output; it does not say which bytes were
read. A finished run whose input was later edited would otherwise answer "already complete" and keep
the stale rows (issue 14). The identity of a local file is its size, mtime and SHA-256; of an rsynth
output directory, the SHA-256 of its manifest (which lists every shard and row count); of another
directory, the identities of its files; a hub id stands for itself.

Comparing is cheap on the common path: a file whose size and mtime are unchanged is taken as
unchanged without re-hashing it (what make and rsync do); a changed mtime with the same content
(`touch`, a copy) is still the same input, because the hash decides.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _listing(path: Path) -> list[tuple[str, Path]]:
    """(name, path) of the files an input path reads: itself, or a directory's non-hidden files."""
    if path.is_file():
        return [(path.name, path)]
    files = sorted(
        f for f in path.rglob("*") if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts)
    )
    return [(f.relative_to(path).as_posix(), f) for f in files]


def _file(path: Path, name: str) -> dict[str, Any]:
    st = path.stat()
    return {"name": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(path)}


def input_identity(spec: str) -> dict[str, Any]:
    """The identity of the input named by `spec` (a path or a hub id), recorded in the manifest."""
    path = Path(spec)
    if not path.exists():
        return {"hub": spec}
    if path.is_dir() and (path / MANIFEST).exists():
        return {"manifest_sha256": _sha256(path / MANIFEST)}
    return {"files": [_file(f, name) for name, f in _listing(path)]}


def _same_file(old: dict[str, Any], path: Path) -> bool:
    st = path.stat()
    if st.st_size != old["size"]:
        return False
    return st.st_mtime_ns == old["mtime_ns"] or _sha256(path) == old["sha256"]


def input_changed(stored: dict[str, Any], spec: str) -> bool:
    """Whether the input named by `spec` differs from the `stored` identity of an earlier run."""
    path = Path(spec)
    if "files" not in stored or not path.exists() or (path.is_dir() and (path / MANIFEST).exists()):
        return stored != input_identity(spec)
    now = _listing(path)
    if [name for name, _ in now] != [f["name"] for f in stored["files"]]:
        return True
    return not all(_same_file(old, f) for old, (_, f) in zip(stored["files"], now))
