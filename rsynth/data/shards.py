"""Arrow shard sets with atomic writes, a manifest, and resume.

An output directory looks like::

    OUT/manifest.json            # written atomically after every checkpoint
    OUT/data/shard-00000.arrow   # Arrow IPC stream files, `shard_size` rows each (the last may be short)
    OUT/errors/shard-00000.arrow # row-level input errors, with source file, row and reason
    OUT/<other split>/...        # e.g. `tree/` for OmegaPRM nodes

Shards are written to a hidden temporary name and renamed into place, so a reader (or a resumed run)
never sees a partial shard. The manifest records, besides the shards, the input cursor: every input
row before `cursor` has all its output rows in committed shards, and `partial[split]` rows of the
inputs at or after the cursor were committed too. Stages emit rows in input order and are
deterministic, so a resumed run restarts at the cursor and drops those already-committed rows.

Nothing read back is trusted blindly. Each shard's entry records its size and SHA-256 as committed,
and the input state before the checkpoint that wrote it (`before`: cursor, partial rows, shards per
split). On start a damaged directory is diagnosed, one line per problem, never misread: a manifest
that does not parse is named as damaged (not as "a different run"), and a listed shard that is
missing, truncated or altered is dropped with every shard committed after it: the run rolls back to
the checkpoint before it and redoes those rows (from the completion cache, for sampling stages), so
the finished output equals an undamaged run's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from rsynth import __version__
from rsynth.data.identity import input_changed, input_identity
from rsynth.data.interrupts import deferred_signals
from rsynth.data.schema import conform

MANIFEST = "manifest.json"
ALREADY_COMPLETE = "already complete (nothing re-run)"
LOCK = ".rsynth.lock"
BUILD_RECORD = "build.json"


class OutputError(Exception):
    """An output path rsynth cannot use (a file, no permission, read-only, disk full): one line, exit 2."""


class OutputConflict(OutputError):
    """The output directory holds a different run (other command or inputs), or another run holds it."""


def _conflict(out: Path, stage: str | None) -> OutputConflict:
    return OutputConflict(f"{out} holds output of a different run ({stage}); pass --overwrite or choose another --out")


def _os_error(what: str, path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot {what} {path}: {exc.strerror or exc}")


# -- one writer per output directory ------------------------------------------------------------
_locks: dict[Path, int] = {}  # resolved output directory -> the open, flocked lock file
_build_roots: set[Path] = set()  # build roots this process runs: their stage directories are its own


def claim_output(out: Path | str) -> None:
    """Check `out` can be this run's output directory and lock it for this process, before any model
    loads: one line for a file in the way, no permission, a read-only file system, another rsynth
    run writing there (its pid named), or a build's directory used by a single command.

    The lock is an flock on OUT/.rsynth.lock, which the kernel drops when its holder dies, so the lock
    file of a killed run is simply taken over. Claiming a directory this process holds is a no-op."""
    out = Path(out)
    key = out.resolve()
    if key in _locks:
        return
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a directory")
    _refuse_build_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _os_error("write to", out, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise OutputConflict(
            f"{out} is being written by another rsynth run (pid {holder}); wait for it or choose another --out"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise _os_error("write to", out, exc) from None
    _locks[key] = fd


def release_output(out: Path | str) -> None:
    """Drop this process's lock on `out` (a finished stage; exiting drops it too)."""
    fd = _locks.pop(Path(out).resolve(), None)
    if fd is not None:
        os.close(fd)


def _refuse_build_dir(out: Path) -> None:
    """A single command must not write into a build's directories (the build's record would then
    describe outputs it did not make); the build itself registers its root with `claim_build_root`."""
    for d in (out, out.parent):
        if (d / BUILD_RECORD).exists() and d.resolve() not in _build_roots:
            raise OutputConflict(
                f"{out} is inside the build output {d} ({BUILD_RECORD}); `rsynth build` manages it: choose another --out"
            )


def claim_build_root(root: Path | str) -> None:
    """Make `root` this process's build output: refuse a single command's output directory, lock it."""
    root = Path(root)
    if (root / MANIFEST).exists():
        stage = _manifest_stage(root)
        raise OutputConflict(f"{root} holds the output of `{stage}`, not a build; choose another out for the recipe")
    _build_roots.add(root.resolve())
    claim_output(root)


def _manifest_stage(out: Path) -> str | None:
    try:
        return json.loads((out / MANIFEST).read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        return None


def refuse_other_stage(out: Path, stage: str, overwrite: bool) -> None:
    """Claim the output directory and refuse one holding another command's output before a model is
    loaded (which can take minutes); the writer still checks the full run key once the engine exists.
    A manifest that does not parse is reported as damaged, never as another run's."""
    claim_output(out)
    if overwrite or not (Path(out) / MANIFEST).exists():
        return
    other = load_manifest(Path(out)).get("stage")
    if other != stage:
        raise _conflict(Path(out), other)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name unique to this process, then rename into place: readers and other
    processes never see a partial file, and two writers never share a temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # ENOSPC, EROFS, EACCES, EISDIR: the user's to fix, one line
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _os_error("write", path, exc) from None


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_arrow(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> dict[str, Any]:
    """Write rows as one Arrow IPC stream file, atomically; returns its size and SHA-256 as written."""
    table = pa.Table.from_pylist([conform(r, schema) for r in rows], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table)
    data = sink.getvalue().to_pybytes()
    atomic_write_bytes(path, data)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_problem(manifest: Any) -> str | None:
    """What makes a parsed manifest unusable (a hand edit, an old or foreign file), or None."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    if not isinstance(manifest.get("splits"), dict):
        return "no splits"
    if not isinstance(manifest.get("cursor", 0), int) or not isinstance(manifest.get("partial", {}), dict):
        return "no valid cursor"
    for name, info in manifest["splits"].items():
        shards = info.get("shards") if isinstance(info, dict) else None
        if not isinstance(shards, list) or not all(
            isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("rows"), int) for e in shards
        ):
            return f"split {name!r} has no valid shard list"
    return None


def output_damage(out: Path | str) -> tuple[str, str] | None:
    """("manifest" | "shard", one line) for the first damaged part of a finished stage directory, or
    None: what a build checks before it skips a stage whose output it is about to trust."""
    out = Path(out)
    if not (out / MANIFEST).exists():
        return None
    try:
        manifest = load_manifest(out)
    except OutputError as exc:
        return "manifest", str(exc).split(": re-run")[0]
    for info in manifest["splits"].values():
        for entry in info["shards"]:
            problem = shard_problem(out, entry)
            if problem:
                return "shard", f"{out / entry['file']} is damaged ({problem})"
    return None


def damaged_manifest(path: Path, why: str) -> OutputError:
    """The one line for a manifest that cannot be read: what is wrong and the way out that keeps the cache."""
    cache = path.parent / "cache.sqlite"
    keep = f"; the completion cache {cache} is kept, so no finished completion is paid again" if cache.exists() else ""
    return OutputError(f"{path} is damaged ({why}): re-run with --overwrite to redo this output{keep}")


def load_manifest(out: Path | str) -> dict[str, Any]:
    """OUT/manifest.json, or one line saying it is damaged (a hand-edited or truncated file)."""
    path = Path(out) / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except OSError as exc:
        raise OutputError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:  # truncated, garbage, not UTF-8
        raise damaged_manifest(path, f"not valid JSON: {str(exc).splitlines()[0]}") from None
    problem = manifest_problem(manifest)
    if problem:
        raise damaged_manifest(path, problem)
    return manifest


def shard_problem(out: Path, entry: dict[str, Any]) -> str | None:
    """What is wrong with one listed shard on disk (missing, truncated, altered), or None.

    Shards committed before checksums were recorded are checked by reading them back."""
    path = out / entry["file"]
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if "bytes" not in entry:
        try:
            read_arrow(path)
        except (pa.ArrowInvalid, OSError) as exc:
            return f"unreadable ({str(exc).splitlines()[0]})"
        return None
    if size != entry["bytes"]:
        return f"{'truncated: ' if size < entry['bytes'] else ''}{size} bytes, the manifest recorded {entry['bytes']}"
    try:
        if file_sha256(path) != entry.get("sha256"):
            return "its content changed since it was written (checksum mismatch)"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return None


def read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).read_all()


@dataclass
class _Split:
    schema: pa.Schema
    shards: list[dict[str, Any]] = field(default_factory=list)
    buffer: list[dict[str, Any]] = field(default_factory=list)
    skip: int = 0  # committed rows a resumed run must drop before buffering again

    @property
    def committed(self) -> int:
        return sum(s["rows"] for s in self.shards)


class ShardSetWriter:
    """Buffers rows per split and commits fixed-size shards plus a manifest, atomically.

    `run_key` identifies the run (stage name, config and inputs); re-opening a directory with the
    same key resumes it, a different key is refused rather than silently mixing two runs. `inputs`
    names what the run reads: its identity (`rsynth.data.identity`) is recorded, and a re-run over a
    changed input is refused, even after the run finished, rather than keeping stale rows or
    mixing rows of two inputs. The writer holds the directory's lock (`claim_output`) until `close`.
    """

    def __init__(
        self,
        out_dir: Path | str,
        splits: dict[str, pa.Schema],
        *,
        stage: str,
        run_key: str,
        shard_size: int = 1000,
        primary: str = "data",
        overwrite: bool = False,
        inputs: list[str] | None = None,
    ) -> None:
        self.out = Path(out_dir)
        self.stage = stage
        self.run_key = run_key
        self.shard_size = shard_size
        self.primary = primary
        self.splits = {name: _Split(schema) for name, schema in splits.items()}
        self.cursor = 0
        self.complete = False
        self.stats: dict[str, Any] = {}
        self._inputs = list(inputs or [])
        self.input_ids: list[dict[str, Any]] = []
        self._row_inputs: dict[str, list[int]] = {name: [] for name in splits}
        self._committed_tail: dict[str, list[int]] = {name: [] for name in splits}
        self._partial: dict[str, int] = {name: 0 for name in splits}  # as the last committed manifest says
        self._done_upto = 0
        claim_output(self.out)
        if (self.out / MANIFEST).exists() and not overwrite:
            try:
                self._load(load_manifest(self.out))
            except BaseException:  # refused (another run, a changed input): a library caller's process lives on
                release_output(self.out)
                raise
        else:
            self._clear()
            self.input_ids = [input_identity(spec) for spec in self._inputs]
        for name in self.splits:
            (self.out / name).mkdir(exist_ok=True)

    # -- resume ---------------------------------------------------------------------------------
    def _load(self, manifest: dict[str, Any]) -> None:
        if manifest.get("run_key") != self.run_key:
            raise _conflict(self.out, manifest.get("stage"))
        stored = manifest.get("inputs")
        if stored is not None and (len(stored) != len(self._inputs) or any(map(input_changed, stored, self._inputs))):
            raise OutputConflict(f"input changed since {self.out} was written: use --overwrite or a new --out")
        self.input_ids = stored if stored is not None else [input_identity(spec) for spec in self._inputs]
        self.cursor = manifest["cursor"]
        self.complete = manifest.get("complete", False)
        self.stats = manifest.get("stats", {})
        self._partial = {name: manifest.get("partial", {}).get(name, 0) for name in self.splits}
        for name, split in self.splits.items():
            split.shards = manifest["splits"].get(name, {"shards": []})["shards"]
        self._roll_back_damaged()
        self._done_upto = self.cursor
        for name, split in self.splits.items():
            split.skip = self._partial[name]
        self._remove_uncommitted()

    def _roll_back_damaged(self) -> None:
        """Drop every listed shard that is missing or damaged, with all shards committed after it:
        the state goes back to the checkpoint before the earliest damaged one (its `before`), and
        the run redoes the rest. One warning line per damaged file."""
        damaged = [
            (name, i, problem)
            for name, split in self.splits.items()
            for i, entry in enumerate(split.shards)
            if (problem := shard_problem(self.out, entry))
        ]
        if not damaged:
            return
        blank = {"cursor": 0, "partial": {}, "shards": {}}
        befores = [self.splits[name].shards[i].get("before", blank) for name, i, _ in damaged]
        back = min(befores, key=lambda b: (b["cursor"], sum(b["shards"].values())))
        for name, i, problem in damaged:
            path = self.out / self.splits[name].shards[i]["file"]
            sys.stderr.write(
                f"warning: {path} is damaged ({problem}); dropped it and redoing its rows from input row "
                f"{back['cursor']} (sampled rows come from the completion cache)\n"
            )
        self.cursor, self.complete = back["cursor"], False
        for name, split in self.splits.items():
            split.shards = split.shards[: back["shards"].get(name, 0)]
            self._partial[name] = back["partial"].get(name, 0)

    def _clear(self) -> None:
        for name in self.splits:
            d = self.out / name
            if d.exists():
                for f in d.glob("*.arrow"):
                    f.unlink()
        (self.out / MANIFEST).unlink(missing_ok=True)

    def _remove_uncommitted(self) -> None:
        """Delete shard files a killed run renamed into place but never recorded in the manifest, and
        its temporary files (safe: this process holds the directory's lock)."""
        for name, split in self.splits.items():
            known = {s["file"] for s in split.shards}
            for f in (self.out / name).glob("*.arrow"):
                if f"{name}/{f.name}" not in known:
                    f.unlink()
            for f in (self.out / name).glob(".*.tmp"):
                f.unlink()

    # -- writing --------------------------------------------------------------------------------
    def add(self, split: str, row: dict[str, Any], input_index: int) -> None:
        s = self.splits[split]
        if s.skip:
            s.skip -= 1
            self._committed_tail[split].append(input_index)
            return
        s.buffer.append(row)
        self._row_inputs[split].append(input_index)
        if split == self.primary and len(s.buffer) >= self.shard_size:
            self.checkpoint()

    def input_done(self, input_index: int) -> None:
        """Mark every output row of inputs up to `input_index` as emitted."""
        self._done_upto = max(self._done_upto, input_index + 1)

    def checkpoint(self) -> None:
        """Commit buffered rows as shards, then the manifest. Signals are held until it is done, and
        in-memory state moves only after each shard file is in place, so an error or a second
        checkpoint can never record a row without its shard."""
        with deferred_signals():
            before = self._state()
            for name, s in self.splits.items():
                while s.buffer:
                    chunk = s.buffer[: self.shard_size]
                    fname = f"{name}/shard-{len(s.shards):05d}.arrow"
                    written = write_arrow(self.out / fname, chunk, s.schema)
                    s.shards.append({"file": fname, "rows": len(chunk), **written, "before": before})
                    del s.buffer[: len(chunk)]
                    self._committed_tail[name].extend(self._row_inputs[name][: len(chunk)])
                    del self._row_inputs[name][: len(chunk)]
            self.cursor = self._done_upto
            partial = {}
            for name in self.splits:
                # committed rows of inputs past the cursor: the input being emitted when a full shard
                # forced this checkpoint. A resumed run re-emits that input and drops these rows.
                tail = [i for i in self._committed_tail[name] if i >= self.cursor]
                self._committed_tail[name] = tail
                partial[name] = len(tail)
            self._write_manifest(partial=partial)
            self._partial = partial

    def _state(self) -> dict[str, Any]:
        """The committed state as the last manifest records it: where a roll-back past a damaged shard
        written after it resumes from."""
        shards = {n: len(s.shards) for n, s in self.splits.items()}
        return {"cursor": self.cursor, "partial": dict(self._partial), "shards": shards}

    def _write_manifest(self, *, partial: dict[str, int]) -> None:
        manifest = {
            "rsynth_version": __version__,
            "stage": self.stage,
            "primary": self.primary,  # the main split: what the next command reads (`main_split`)
            "run_key": self.run_key,
            "inputs": self.input_ids,
            "cursor": self.cursor,
            "partial": partial,
            "complete": self.complete,
            "shard_size": self.shard_size,
            "stats": self.stats,
            "splits": {
                name: {"rows": s.committed, "schema": schema_columns(s.schema), "shards": s.shards}
                for name, s in self.splits.items()
            },
        }
        atomic_write_json(self.out / MANIFEST, manifest)

    def close(self, stats: dict[str, Any] | None = None) -> None:
        if stats is not None:
            self.stats = stats
        self.complete = True
        self._write_empty_splits()
        self.checkpoint()
        release_output(self.out)

    def _write_empty_splits(self) -> None:
        """Give every split that got no rows one 0-row shard with its schema, so a glob over it
        (`load_dataset("arrow", data_files="OUT/errors/*.arrow")`) loads instead of failing."""
        before = self._state()
        for name, s in self.splits.items():
            if not s.shards and not s.buffer:
                fname = f"{name}/shard-00000.arrow"
                written = write_arrow(self.out / fname, [], s.schema)
                s.shards.append({"file": fname, "rows": 0, **written, "before": before})

    def rows(self, split: str) -> int:
        s = self.splits[split]
        return s.committed + len(s.buffer)

    def skip_complete(self) -> dict[str, Any]:
        """Leave an already-complete directory (releasing its lock) and say so: this process sent and
        generated nothing, and the finished run's figures are labelled as stored (its "this run"
        counts were that run's, not this one's)."""
        release_output(self.out)
        return {
            "note": ALREADY_COMPLETE,
            "engine prompts sent this run": 0,
            "prompts served from cache this run": 0,
            "completions generated this run": 0,
            **{f"stored: {k}": v for k, v in self.stats.items()},
        }


# Older manifests name no main split; decontaminate's was always kept/.
_LEGACY_PRIMARY = {"decontaminate": "kept"}


def main_split(manifest: dict[str, Any]) -> str:
    """The split of an output that the next command reads: the manifest's `primary` (data/ for most
    stages, kept/ for decontaminate)."""
    return manifest.get("primary") or _LEGACY_PRIMARY.get(manifest.get("stage") or "", "data")


def schema_columns(schema: pa.Schema) -> list[list[str]]:
    """A split's schema as the manifest names it: [column, Arrow type] pairs (what `rsynth doctor` checks)."""
    return [[f.name, str(f.type)] for f in schema]


def read_split(out_dir: Path | str, split: str | None = None) -> pa.Table | None:
    """Read one split of an rsynth output directory as a table (None if it has no rows); by default
    its main split (`main_split`)."""
    out = Path(out_dir)
    manifest = load_manifest(out)
    split = split or main_split(manifest)
    shards = manifest["splits"].get(split, {}).get("shards", [])
    files = [out / s["file"] for s in shards if s["rows"]]  # an empty split's 0-row shard adds nothing
    if not files:
        return None
    tables = []
    for f in files:
        try:
            tables.append(read_arrow(f))
        except (pa.ArrowInvalid, OSError) as exc:
            raise OutputError(
                f"{f} is unreadable ({str(exc).splitlines()[0]}): re-run the command that wrote {out} "
                "to redo it (finished completions come from its cache), or `rsynth doctor` it"
            ) from None
    return pa.concat_tables(tables)


def iter_split_rows(out_dir: Path | str, split: str | None = None) -> Iterator[dict[str, Any]]:
    table = read_split(out_dir, split)
    if table is not None:
        yield from table.to_pylist()
