"""Verification as a stage: one verdict row per input row, malformed rows to `errors` (`rsynth verify`)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from rsynth.config import param, validate_choices
from rsynth.data.readers import FieldSpec, check_columns, check_input, map_fields, parse_field_map
from rsynth.data.schema import ERROR_SCHEMA
from rsynth.errors import UserError
from rsynth.runner.loop import Item, Rows
from rsynth.runner.partition import Partition
from rsynth.runner.stage import Counts, Stage, Target, Work, execute
from rsynth.verifiers import Verifier, VerifyItem, get_verifier
from rsynth.verifiers.code import evalplus_tests
from rsynth.verifiers.code.sandbox import sandbox_param

STYLES = ("assert", "io", "stdio", "evalplus")
BATCH_HELP = "Rows per verifier batch (also the checkpoint interval)."

VERDICT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("verdict", pa.string()),
        ("ok", pa.bool_()),
        ("evidence", pa.string()),  # JSON object: parsed forms, stderr tail, error position
        ("verifier", pa.string()),
        ("verifier_version", pa.string()),
        ("source", pa.string()),
        ("row", pa.int64()),
    ]
)

ID = FieldSpec("id", str, required=False)
FIELDS = {
    "math": [ID, FieldSpec("gold"), FieldSpec("pred")],
    "code": [ID, FieldSpec("code"), FieldSpec("tests", object), FieldSpec("entry_point", required=False)],
    # --style evalplus: an MBPP+ row's own columns (base and plus inputs, reference solution)
    "code-evalplus": [
        ID,
        FieldSpec("code"),
        FieldSpec("entry_point"),
        FieldSpec("task_id", required=False),
        FieldSpec("canonical_solution"),
        FieldSpec("base_input", object),
        FieldSpec("plus_input", object, required=False),
        FieldSpec("atol", object, required=False),
        FieldSpec("prompt", required=False),
    ],
    "lean": [ID, FieldSpec("proof"), FieldSpec("statement", required=False)],
}


@dataclass
class VerifyMathParams:
    """`rsynth verify math`, declared once."""

    timeout: float = param(5.0, "--timeout", "Hard per-item limit in seconds (worker killed past it).")
    workers: int = param(1, "--workers", "Worker processes.")
    batch_size: int = param(256, "--batch-size", BATCH_HELP)

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.workers < 1 or self.batch_size < 1:
            raise UserError("--timeout must be > 0, --workers and --batch-size >= 1")

    def options(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "workers": self.workers}


@dataclass
class VerifyCodeParams:
    """`rsynth verify code`, declared once."""

    style: str = param(
        "assert",
        "--style",
        "Test style: assert (asserts or HumanEval check), io (JSON inputs/outputs), stdio (JSON), "
        "evalplus (MBPP+ rows: base + plus inputs).",
        choices=STYLES,
    )
    timeout: float = param(10.0, "--timeout", "Wall-clock and CPU limit per program run, seconds.")
    workers: int = param(1, "--workers", "Sandboxed runs in flight.")
    memory_mb: int = param(1024, "--memory-mb", "Address-space limit per run.")
    sandbox: str = sandbox_param(aliases=("--backend",))
    batch_size: int = param(256, "--batch-size", BATCH_HELP)

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.timeout <= 0 or self.workers < 1 or self.memory_mb < 1 or self.batch_size < 1:
            raise UserError("--timeout must be > 0, --workers, --memory-mb and --batch-size >= 1")

    def options(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "workers": self.workers, "memory_mb": self.memory_mb, "sandbox": self.sandbox}


@dataclass
class VerifyLeanParams:
    """`rsynth verify lean`'s own option (the Lean setup is `LeanParams`)."""

    batch_size: int = param(1000, "--batch-size", "Proofs per Lean process.")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError("--batch-size must be >= 1")


def fields_of(kind: str, style: str) -> list[FieldSpec]:
    """The fields a row needs: per verifier, and for `code --style evalplus` an MBPP+ row's own."""
    return FIELDS.get(f"{kind}-{style}", FIELDS[kind])


def _item(kind: str, fields: dict[str, Any], style: str) -> VerifyItem:
    if kind == "math":
        return VerifyItem(fields["gold"], fields["pred"])
    if kind == "code" and style == "evalplus":
        return VerifyItem(
            evalplus_tests(fields), fields["code"], {"entry_point": fields["entry_point"], "style": style}
        )
    if kind == "code":
        tests = fields["tests"]
        tests = tests if isinstance(tests, str) else json.dumps(tests)
        return VerifyItem(tests, fields["code"], {"entry_point": fields.get("entry_point"), "style": style})
    return VerifyItem(fields.get("statement"), fields["proof"])


def _key(
    kind: str, mapping: dict[str, str], style: str, options: dict[str, Any], limit: int | None = None
) -> Callable[[str], str]:
    """The run key (as before the executor: the resolved input path, plus the partition tag if any;
    a --limit run is another run, unlimited keys stay as they were)."""

    def key(inputs: str) -> str:
        base, sep, tag = inputs.partition("#shard=")
        parts = [
            kind,
            str(Path(base).resolve()) + sep + tag,
            mapping,
            style,
            sorted(options.items()),
            *([limit] if limit is not None else []),
        ]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    return key


def verify_stage(
    kind: str,
    mapping: dict[str, str],
    options: dict[str, Any],
    *,
    style: str = "assert",
    batch_size: int = 256,
    limit: int | None = None,
) -> Stage:
    """One verdict row per valid input row; counts survive an interrupted run (they are checkpointed)."""
    counts: Counter[str] = Counter()

    @contextmanager
    def work() -> Iterator[Work]:
        try:
            verifier: Verifier = get_verifier(kind, **options)
        except (FileNotFoundError, RuntimeError, ValueError) as exc:
            raise UserError(str(exc)) from None
        with verifier:

            def process(items: list[Item]) -> dict[int, Rows]:
                verdicts = verifier.verify_batch([_item(kind, it.value, style) for it in items])
                out: dict[int, Rows] = {}
                for it, v in zip(items, verdicts):
                    counts[v.status] += 1
                    out[it.index] = [
                        (
                            "data",
                            {
                                "id": it.value.get("id") or f"{Path(it.record.source).name}:{it.record.row}",
                                "verdict": v.status,
                                "ok": v.ok,
                                "evidence": json.dumps(v.evidence, default=str, ensure_ascii=False),
                                "verifier": verifier.name,
                                "verifier_version": verifier.version,
                                "source": it.record.source,
                                "row": it.record.row,
                            },
                        )
                    ]
                return out

            def summary(c: Counts) -> dict[str, Any]:
                total = Counter(c.previous.get("counts", {})) + counts
                total["malformed"] += c.rows["errors"] - c.previous.get("errors", 0)  # bad rows of this run
                return {"counts": {k: v for k, v in total.items() if v}, "errors": c.rows["errors"]}

            yield Work(
                lambda rec: map_fields(rec, fields_of(kind, style), mapping),
                process,
                batch_size=batch_size,
                description=f"verifying ({kind})",
                summary=summary,
                checkpoint_stats=True,
            )

    return Stage(
        f"verify-{kind}",
        {"data": VERDICT_SCHEMA, "errors": ERROR_SCHEMA},
        key=_key(kind, mapping, style, options, limit),
        work=work,
    )


def run_verify(
    kind: str,
    input_spec: str,
    out: Path,
    field_specs: list[str],
    options: dict[str, Any],
    *,
    style: str = "assert",
    batch_size: int = 256,
    overwrite: bool = False,
    partition: Partition | None = None,
    limit: int | None = None,
    quiet: bool = True,
    shard_size: int | None = None,
) -> Counter[str]:
    """Verify every row of `input_spec` into `out`; returns verdict counts (plus `malformed`)."""
    check_input(input_spec)
    mapping = parse_field_map(field_specs)
    specs = fields_of(kind, style)
    unknown = set(mapping) - {s.name for s in specs}
    if unknown:
        raise UserError(f"--field {sorted(unknown)[0]}=...: {kind} fields are {', '.join(s.name for s in specs)}")
    check_columns(input_spec, mapping)
    stage = verify_stage(kind, mapping, options, style=style, batch_size=batch_size, limit=limit)
    stats = execute(
        stage, Target(input_spec, Path(out), shard_size or max(batch_size, 1000), overwrite, limit, quiet, partition)
    )
    return Counter(stats.get("counts", {}))
