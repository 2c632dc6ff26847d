"""Input readers: JSONL/JSON, Parquet, Arrow, `save_to_disk` directories, rsynth output directories
and hub dataset ids, all yielding the same `Record | RowError` stream.

A file-level problem (missing, unreadable, unknown format) raises `InputError` with one line naming
the file; a row-level problem (bad JSON, not an object, missing or mistyped field) becomes a
`RowError` that the stage writes to its `errors` split, so nothing is dropped silently.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?::[\w.-]+)?$")
DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".gz", ".parquet", ".arrow", ".csv")
RAW_LIMIT = 2000  # characters of the offending row kept in the errors split
LINE_COUNT_LIMIT = 1 << 30  # bytes: count_records counts JSON lines up to this size, cheap next to a run


class InputError(Exception):
    """A fatal, file-level input problem; the message is one line meant for the user."""


@dataclass(frozen=True)
class Record:
    source: str
    row: int  # 1-based line or row number in `source`
    data: dict[str, Any]


@dataclass(frozen=True)
class RowError:
    source: str
    row: int
    field: str | None
    reason: str
    raw: str

    @classmethod
    def of(cls, record: Record, reason: str, field: str | None = None) -> RowError:
        """The error row of a record that parsed but cannot be processed (the raw row clipped)."""
        return cls(
            record.source, record.row, field, reason, _clip(json.dumps(record.data, default=str, ensure_ascii=False))
        )

    def as_row(self) -> dict[str, Any]:
        return {"source": self.source, "row": self.row, "field": self.field, "reason": self.reason, "raw": self.raw}


def _clip(text: str) -> str:
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "…"


def parse_field_map(specs: Iterable[str], input: str | None = None) -> dict[str, str]:
    """Parse `--field name=column` options into {canonical name: source column}; with `input`, also
    check every named column exists in it (`check_columns`)."""
    mapping: dict[str, str] = {}
    for spec in specs:
        name, sep, column = spec.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise InputError(f"--field {spec!r}: expected NAME=COLUMN, e.g. --field problem=question")
        mapping[name.strip()] = column.strip()
    if input is not None:
        check_columns(input, mapping)
    return mapping


def check_columns(spec: str, mapping: dict[str, str], rows: int = 64) -> None:
    """A `--field` naming a column that none of the first `rows` rows has is a typo, not bad rows:
    one line now, instead of a run that sends every row to errors/ and exits 0."""
    columns: set[str] = set()
    records = 0
    for rec in islice(read_records(spec), rows):
        if isinstance(rec, Record):
            records += 1
            columns.update(rec.data)
    for name, column in mapping.items():
        if records and column not in columns:
            shown = ", ".join(sorted(columns)[:12])
            raise InputError(
                f"--field {name}={column}: no column {column!r} in the first {records} rows of {spec} (columns: {shown})"
            )


def set_encoding_errors(mode: str) -> None:
    """`--encoding-errors`: strict (a row with invalid UTF-8 goes to errors/) or replace (U+FFFD)."""
    global _encoding_errors
    _encoding_errors = mode


_encoding_errors = "strict"


def _jsonl(path: Path, opener) -> Iterator[Record | RowError]:
    """One row per line. Lines are read as bytes and end at b"\n" only: a bare \r is not a row
    break (row numbers match what editors show), and invalid UTF-8 costs only its own row, whose raw
    bytes are kept as base64 in errors/ rather than silently replaced."""
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8", errors=_encoding_errors)
            except UnicodeDecodeError as exc:
                yield RowError(
                    str(path),
                    lineno,
                    None,
                    f"invalid UTF-8 at byte {exc.start} (raw row as base64; --encoding-errors replace keeps it)",
                    base64.b64encode(raw.rstrip(b"\n")).decode(),
                )
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RowError(
                    str(path),
                    lineno,
                    None,
                    f"invalid JSON: {exc.msg} at column {exc.colno}",
                    _clip(line.rstrip("\r\n")),
                )
                continue
            if not isinstance(obj, dict):
                yield RowError(
                    str(path),
                    lineno,
                    None,
                    f"expected a JSON object, got {type(obj).__name__}",
                    _clip(line.rstrip("\r\n")),
                )
                continue
            yield Record(str(path), lineno, obj)


def _json(path: Path) -> Iterator[Record | RowError]:
    try:
        text = path.read_bytes().decode("utf-8", errors=_encoding_errors)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: invalid UTF-8 at byte {exc.start} (pass --encoding-errors replace to read it with U+FFFD)"
        ) from None
    stripped = text.lstrip()
    if not stripped.startswith("["):
        yield from _jsonl(path, open)
        return
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON array: {exc.msg} at line {exc.lineno}") from None
    for i, obj in enumerate(items, start=1):
        if isinstance(obj, dict):
            yield Record(str(path), i, obj)
        else:
            yield RowError(
                str(path), i, None, f"expected a JSON object, got {type(obj).__name__}", _clip(json.dumps(obj))
            )


def _table_batches(source: str, batches: Iterable[pa.RecordBatch]) -> Iterator[Record]:
    row = 0
    for batch in batches:
        for obj in batch.to_pylist():
            row += 1
            yield Record(source, row, obj)


def _arrow_file(path: Path) -> Iterator[Record]:
    from rsynth.data.shards import read_arrow

    yield from _table_batches(str(path), read_arrow(path).to_batches())


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    yield from _table_batches(str(path), pq.ParquetFile(path).iter_batches(batch_size=1024))


def _directory(path: Path) -> Iterator[Record]:
    from rsynth.data.shards import MANIFEST, read_split

    if (path / MANIFEST).exists():
        table = read_split(path)  # its main split: data/, or kept/ for a decontaminate output
        yield from _table_batches(str(path), [] if table is None else table.to_batches())
        return
    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            split = "train" if "train" in ds else next(iter(ds))
            ds = ds[split]
        yield from _table_batches(str(path), ds.data.to_batches())
        return
    files = sorted(p for p in path.iterdir() if p.suffix in {".jsonl", ".parquet", ".arrow", ".json"})
    if not files:
        raise InputError(f"{path}: directory has no manifest.json, save_to_disk layout or data files")
    for f in files:
        yield from _file(f)


def _hub(spec: str) -> Iterator[Record]:
    name, _, split = spec.partition(":")
    try:
        import datasets

        ds = datasets.load_dataset(name, split=split or "train", streaming=True)
        row = 0
        for obj in ds:
            row += 1
            yield Record(f"hub:{name}", row, dict(obj))
    except Exception as exc:  # the hub raises many types (offline, gated, missing split)
        raise InputError(
            f"could not load hub dataset {spec!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None


def _file(path: Path) -> Iterator[Record | RowError]:
    name = path.name.lower()
    if name.endswith((".jsonl.gz", ".json.gz")):
        yield from _jsonl(path, gzip.open)
    elif name.endswith((".jsonl", ".ndjson")):
        yield from _jsonl(path, open)
    elif name.endswith(".json"):
        yield from _json(path)
    elif name.endswith(".parquet"):
        yield from _parquet(path)
    elif name.endswith(".arrow"):
        yield from _arrow_file(path)
    else:
        raise InputError(
            f"{path}: unknown input format (expected .jsonl, .json, .parquet, .arrow or a dataset directory)"
        )


def check_input(spec: str) -> None:
    """Fail at once, with one line, if `spec` is neither a readable path nor a hub id."""
    path = Path(spec)
    if path.exists():
        if path.is_file():
            try:
                with open(path, "rb") as fh:
                    fh.read(1)
            except OSError as exc:
                raise InputError(f"cannot read input file {spec}: {exc.strerror}") from None
        return
    if HUB_ID.match(spec) and not spec.startswith((".", "/")) and not spec.lower().endswith(DATA_SUFFIXES):
        return  # "data/problems.jsonl" is a missing file, not a hub dataset
    raise InputError(f"input file not found: {spec}")


class Records(Iterator[Any]):
    """An input's row stream that also knows its length when that is cheap (for progress totals).

    `total` is computed on first access and never raises: a bar without a total is better than a
    failed run, and the reader itself reports a bad input with its own one-line error."""

    def __init__(self, rows: Iterator[Any], count: Callable[[], int | None]) -> None:
        self._rows = rows
        self._count = count
        self._total: int | None = None
        self._counted = False

    def __iter__(self) -> Records:
        return self

    def __next__(self) -> Any:
        return next(self._rows)

    @property
    def total(self) -> int | None:
        if not self._counted:
            self._counted = True
            try:
                self._total = self._count()
            except Exception:  # unreadable or odd inputs: the reader raises the user-facing error
                self._total = None
        return self._total


def read_records(spec: str) -> Records:
    """Every row of the input named by `spec` (a path or a hub id like `openai/gsm8k:test`)."""
    return Records(_read_records(spec), lambda: count_records(spec))


def _read_records(spec: str) -> Iterator[Record | RowError]:
    check_input(spec)
    path = Path(spec)
    if not path.exists():
        yield from _hub(spec)
        return
    try:
        if path.is_dir():
            yield from _directory(path)
        else:
            yield from _file(path)
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:  # truncated/corrupt .gz: EOFError, zlib.error
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read {spec}: {first}") from None


def count_records(spec: str) -> int | None:
    """The row count of `spec` from metadata alone, where the format keeps one: Parquet footers, Arrow
    files (memory-mapped, batch headers only), rsynth output manifests. None: count by reading."""
    path = Path(spec)
    try:
        if path.is_dir() and (path / "manifest.json").exists():
            from rsynth.data.shards import main_split

            manifest = json.loads((path / "manifest.json").read_text())
            return int(manifest["splits"][main_split(manifest)]["rows"])
        if path.is_file() and path.name.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if path.is_file() and path.name.lower().endswith(".arrow"):
            from rsynth.data.shards import read_arrow

            return read_arrow(path).num_rows  # memory-mapped: no row is decoded
        if (
            path.is_file()
            and path.name.lower().endswith((".jsonl", ".ndjson"))
            and path.stat().st_size <= LINE_COUNT_LIMIT
        ):
            with open(path, "rb") as fh:  # one pass over bytes: each non-blank line is one record or error row
                return sum(1 for line in fh if line.strip())
    except (OSError, KeyError, ValueError, pa.ArrowInvalid):
        return None
    return None


@dataclass(frozen=True)
class FieldSpec:
    """A canonical field a stage needs: its type, and whether a missing value is an error."""

    name: str
    kind: type = str
    required: bool = True


def _coerce(value: Any, kind: type) -> Any:
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)):
            return str(value)
        raise TypeError
    if kind is list:
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise TypeError
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    return value


_KIND_NAMES = {str: "a string", list: "a list of strings", int: "an integer", bool: "a boolean"}


def map_fields(record: Record, specs: list[FieldSpec], mapping: dict[str, str]) -> dict[str, Any] | RowError:
    """Pick and type-check a stage's fields from a record; unmapped columns pass through as-is."""
    out: dict[str, Any] = {}
    for spec in specs:
        column = mapping.get(spec.name, spec.name)
        value = record.data.get(column)
        if value is None:
            if spec.required:
                where = spec.name if column == spec.name else f"{spec.name} (column {column!r})"
                return RowError(
                    record.source,
                    record.row,
                    column,
                    f"missing field {where}",
                    _clip(json.dumps(record.data, default=str)),
                )
            out[spec.name] = None
            continue
        try:
            out[spec.name] = _coerce(value, spec.kind)
        except TypeError:
            return RowError(
                record.source,
                record.row,
                column,
                f"field {column!r} must be {_KIND_NAMES.get(spec.kind, spec.kind.__name__)}, got {type(value).__name__}",
                _clip(json.dumps(record.data, default=str)),
            )
    used = {mapping.get(s.name, s.name) for s in specs}
    out["_extra"] = {k: v for k, v in record.data.items() if k not in used}
    return out


def plan_rows(spec: str, validate: Callable[[Record], Any], limit: int | None = None) -> dict[str, Any]:
    """What `--dry-run` reports for a sampling command: each row of `spec` (up to `limit`) through the
    command's own validation, without sampling. An input whose every row fails for one and the same
    reason is refused with that reason (InputError, exit 2), as the run itself would be."""
    valid, bad = 0, []
    for i, rec in enumerate(read_records(spec)):
        if limit is not None and i >= limit:
            break
        view = rec if isinstance(rec, RowError) else validate(rec)
        if isinstance(view, RowError):
            bad.append(view)
        else:
            valid += 1
    if bad and not valid and len({b.reason for b in bad}) == 1:
        raise InputError(
            f"{spec}: every row ({len(bad)}) would go to errors/ for the same reason: {bad[0].reason}{field_hint(bad[0].reason)}"
        )
    plan: dict[str, Any] = {"valid rows": valid, "bad rows (→ errors/)": len(bad)}
    if bad:
        plan["first bad row"] = f"row {bad[0].row}: {bad[0].reason}"
    return plan


def field_hint(reason: str) -> str:
    """The fix to name after a row error reason shared by a whole input: a missing field's mapping."""
    name = reason.split()[2] if reason.startswith("missing field ") else None  # "missing field NAME (column 'C')"
    return f"; name its column with --field {name}=COLUMN" if name else ""


SOURCE_REF = "source_ref"  # the column every trace row names its origin in: FILE@SHA8:ROW


def source_ref(record: Record) -> str:
    """Where a row came from, as `NAME@SHA8:ROW`: the source file's name, the first 8 hex digits of
    its identity (SHA-256 of a file's bytes, of an rsynth output's manifest) and the 1-based row.

    A row that already names its origin (an earlier stage wrote `source_ref`) keeps it, so the
    reference survives every later stage -- filtering or decontamination can remove rows around it
    without shifting it. The same file gives the same references in every build; an edited file
    gives new ones. Rows without an `id` get this as their id.
    """
    carried = record.data.get(SOURCE_REF)
    if isinstance(carried, str) and carried:
        return carried
    return f"{_identity(record.source)}:{record.row}"


def _identity(source: str) -> str:
    path = Path(source)
    try:
        stat = (path / "manifest.json" if path.is_dir() else path).stat()
    except OSError:
        return source  # a hub id stands for itself
    return _hashed(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _hashed(source: str, size: int, mtime_ns: int) -> str:
    """NAME@SHA8 of a file or an rsynth output directory (cached per size and mtime: hashed once per run)."""
    import hashlib

    path = Path(source)
    target = path / "manifest.json" if path.is_dir() else path
    h = hashlib.sha256()
    with open(target, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    name = path.name.split(".")[0] if path.is_file() else path.name
    return f"{name}@{h.hexdigest()[:8]}"
