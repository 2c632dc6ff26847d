"""The run key of a stage: what determines its output, so a resume never mixes two runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rsynth.engines.base import Engine


def run_key(
    stage: str, inputs: str, mapping: dict[str, str], engine: Engine, config: dict[str, Any], limit: int | None
) -> str:
    """Identify a run by what determines its output. A path input counts by its absolute path, so the
    same command resumed from another directory (or with ./x for x) is the same run."""
    base, sep, tag = inputs.partition("#shard=")
    if Path(base).exists():
        inputs = str(Path(base).resolve()) + sep + tag
    return digest([stage, inputs, mapping, engine.identity(), config, limit], sort_keys=True)


def digest(parts: list[Any], *, sort_keys: bool = False) -> str:
    """16 hex digits of the JSON of `parts`: the run key of a stage that writes its own list (a stage
    with two engines or none). `sort_keys` is as each stage always had it, so old runs still resume."""
    return hashlib.sha256(json.dumps(parts, sort_keys=sort_keys, default=str).encode()).hexdigest()[:16]
