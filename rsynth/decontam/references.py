"""Reference (benchmark) sets: the bundled copies, any local file, or a hub dataset id.

Bundled sets live in `rsynth/resources/benchmarks/<name>.jsonl.gz` as `{"id", "text"}` rows: only
the text that a training row could copy (problem statement, prompt, formal statement) plus the
item id, which keeps the wheel small and makes the index independent of unrelated columns.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rsynth.data.readers import HUB_ID, InputError, Record, read_records

BUNDLED = ("gsm8k", "math500", "aime24", "aime25", "amc2023", "humaneval", "mbppplus", "minif2f")
ID_COLUMNS = ("id", "task_id", "name", "problem_id", "unique_id")


@dataclass(frozen=True)
class ReferenceSet:
    """One benchmark: its name, and parallel lists of item ids and item texts."""

    name: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]

    def digest(self) -> str:
        """Content hash, so a cached index is rebuilt whenever a benchmark's items change."""
        h = hashlib.sha256(self.name.encode())
        for i, t in zip(self.ids, self.texts):
            h.update(b"\0" + i.encode() + b"\1" + t.encode())
        return h.hexdigest()


def _bundled(name: str) -> ReferenceSet:
    path = resources.files("rsynth") / "resources" / "benchmarks" / f"{name}.jsonl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return ReferenceSet(name, tuple(str(r["id"]) for r in rows), tuple(r["text"] for r in rows))


def _from_records(name: str, spec: str, field: str) -> ReferenceSet:
    ids: list[str] = []
    texts: list[str] = []
    for rec in read_records(spec):
        if not isinstance(rec, Record):
            raise InputError(f"{rec.source}: row {rec.row}: {rec.reason}")
        text = rec.data.get(field)
        if not isinstance(text, str):
            raise InputError(f"{spec}: row {rec.row}: reference field {field!r} missing or not a string")
        item_id = next((rec.data[c] for c in ID_COLUMNS if rec.data.get(c) is not None), f"row {rec.row}")
        ids.append(str(item_id))
        texts.append(text)
    if not texts:
        raise InputError(f"{spec}: reference set has no rows")
    return ReferenceSet(name, tuple(ids), tuple(texts))


def load_references(against: list[str], files: list[str], field: str) -> list[ReferenceSet]:
    """Resolve `--against` names (bundled names, `all`, or hub ids) and `--against-file` paths."""
    names: list[str] = []
    for name in against:
        names.extend(BUNDLED if name == "all" else [name])
    sets: list[ReferenceSet] = []
    for name in dict.fromkeys(names):
        if name in BUNDLED:
            sets.append(_bundled(name))
        elif HUB_ID.match(name):
            sets.append(_from_records(name, name, field))
        else:
            raise InputError(f"--against {name!r}: not a bundled benchmark ({', '.join(BUNDLED)}, all) or hub id")
    for spec in files:
        sets.append(_from_records(Path(spec).name.split(".")[0], spec, field))
    if not sets:
        raise InputError("nothing to decontaminate against: pass --against all, --against NAME or --against-file FILE")
    return sets
