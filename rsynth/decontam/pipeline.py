"""`decontaminate` as a `Stage` run by `rsynth.runner.stage.execute`: classify batches of rows
(optionally in worker processes), ask the judge what the rules leave open, and route every input row
to exactly one of kept / removed / errors (plus a review/ listing of kept rows worth a look).

Kept and removed rows carry every input column. The output schema is inferred from the first
`SCHEMA_ROWS` rows of the input; a later row that does not fit it (a new column, a value of another
type) is routed to `errors` with the reason instead of being coerced or dropped. Memory is bounded by
the batch size, not by the input length (except with `--dedup`, which must remember what it kept).
The executor owns the run key, resume, the input's recorded identity and the manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa

from rsynth.data.readers import (
    FieldSpec,
    InputError,
    Record,
    RowError,
    _clip,
    check_columns,
    check_input,
    map_fields,
    read_records,
)
from rsynth.data.schema import ERROR_SCHEMA
from rsynth.data.shards import MANIFEST, claim_output, load_manifest, read_split
from rsynth.decontam.classify import BatchResult, Classifier, SemanticSettings, Settings, init_worker, run_in_worker
from rsynth.decontam.dedup import Deduper
from rsynth.decontam.index import IndexConfig, cache_dir, index_key, load_or_build
from rsynth.decontam.judge import ask_judge
from rsynth.decontam.keys import row_facts
from rsynth.decontam.matcher import Match, Thresholds
from rsynth.decontam.params import DecontamParams
from rsynth.decontam.paraphrase import SemanticConfig
from rsynth.decontam.references import ReferenceSet, load_references
from rsynth.engines.base import Engine
from rsynth.runner.loop import Item, Rows
from rsynth.runner.partition import Partition
from rsynth.runner.stage import Counts, Stage, Target, Work, execute

SCHEMA_ROWS = 1000
SHARD_ROWS = 10_000  # fewer, larger shards: each commit is an fsync plus a manifest rewrite
# semantic-stage evidence (null for the other stages): the deciding neighbour's cosine, the
# quantity-signature overlap, which rule fired, both signatures, and the judge's verdict if asked
EVIDENCE_TYPE = pa.struct(
    [
        ("cosine", pa.float64()),
        ("signature_overlap", pa.float64()),
        ("rule", pa.string()),
        ("row_signature", pa.string()),
        ("item_signature", pa.string()),
        ("judge", pa.string()),
        ("row_answer", pa.string()),
        ("item_answer", pa.string()),
        ("execution", pa.string()),
    ]
)
CONTAMINATION_TYPE = pa.struct(
    [
        ("benchmark", pa.string()),
        ("item_id", pa.string()),
        ("stage", pa.string()),
        ("score", pa.float64()),
        ("span", pa.string()),
        ("evidence", EVIDENCE_TYPE),
    ]
)
REVIEW_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("row", pa.int64()),
        ("id", pa.string()),
        ("benchmark", pa.string()),
        ("item_id", pa.string()),
        ("score", pa.float64()),
        ("stage", pa.string()),
        ("evidence", EVIDENCE_TYPE),
        ("text", pa.string()),
        ("item_text", pa.string()),
    ]
)


def _column_type(values: list[Any]) -> pa.DataType:
    """Arrow type of a column's first values; with mixed types, the most common one wins, so a
    few mistyped rows become errors instead of deciding (or breaking) the output schema."""
    _arrow_errors = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError)
    try:
        kind = pa.array(values).type
    except _arrow_errors:
        votes: Counter[pa.DataType] = Counter()
        for v in values:
            if v is not None:
                try:
                    votes[pa.array([v]).type] += 1
                except _arrow_errors:
                    continue
        kind = votes.most_common(1)[0][0] if votes else pa.string()
    return pa.string() if pa.types.is_null(kind) else kind


def _infer_schema(rows: list[dict[str, Any]]) -> pa.Schema:
    """Output schema from the first rows: every column seen, in first-seen order."""
    names = dict.fromkeys(k for row in rows for k in row)
    return pa.schema([pa.field(name, _column_type([row.get(name) for row in rows])) for name in names])


class _Fit:
    """Checks rows against a split's schema (inferred from the first rows): a row that does not fit
    becomes an error row with the reason, rather than being coerced or losing a column."""

    def __init__(self, schemas: dict[str, pa.Schema]) -> None:
        self.schemas = schemas

    def fits(self, split: str, rows: list[dict[str, Any]]) -> list[str | None]:
        """None for each row that converts to the split's schema, else the reason it does not."""
        schema = self.schemas[split]
        names = set(schema.names)
        reasons: list[str | None] = []
        for row in rows:
            if names.issuperset(row):
                reasons.append(None)
                continue
            extra = next(k for k in row if k not in names)
            reasons.append(f"column {extra!r} is not among the columns of the first {SCHEMA_ROWS} rows")
        try:
            pa.Table.from_pylist([r for r, why in zip(rows, reasons) if why is None], schema=schema)
            return reasons
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        for i, row in enumerate(rows):
            if reasons[i] is None:
                for name in schema.names:
                    try:
                        pa.array([row.get(name)], type=schema.field(name).type)
                    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                        kind, why = schema.field(name).type, str(exc).splitlines()[0]
                        reasons[i] = f"column {name!r} does not fit type {kind} of the first rows: {why}"
                        break
        return reasons


@dataclass(frozen=True)
class Plan:
    """Everything the stage needs that is resolved before it runs: the references, their index and
    the settings sent to the workers."""

    params: DecontamParams
    refs: list[ReferenceSet]
    index_id: str
    index_summary: dict[str, int]
    settings: Settings
    ref_texts: tuple[str, ...]
    item_of: dict[tuple[str, str], int]


def plan(params: DecontamParams, semantic: SemanticConfig = SemanticConfig(), quiet: bool = True) -> Plan:
    """Load the references, build or load their n-gram index, and (with --semantic) make sure the
    reference embeddings exist once, before any worker starts."""
    refs = load_references(params.against_names(), params.against_files(), params.against_field)
    config = IndexConfig(n=params.ngram, min_n=params.min_ngram, max_df=params.max_df)
    index, index_path = load_or_build(refs, config)
    ref_texts = tuple(t for ref in refs for t in ref.texts)
    item_of = {(ref.name, i): n for n, (ref, i) in enumerate((ref, i) for ref in refs for i in ref.ids)}
    sem = None
    if params.semantic:
        from rsynth.decontam.semantic import cache_key, ensure_reference_embeddings

        path = cache_dir() / f"semantic-{cache_key([ref.digest() for ref in refs])}.npy"
        # shipped arrays for the bundled sets, embedded once here for the others (not by every worker)
        ensure_reference_embeddings([(ref.name, ref.digest(), ref.texts) for ref in refs], path, quiet)
        sem = SemanticSettings(semantic, ref_texts, path, quiet)
    settings = Settings(
        index_path,
        config,
        Thresholds(item=params.item_threshold, row=params.row_threshold),
        params.dedup,
        sem,
        params.strict,
    )
    summary = {
        "items": len(index.item_ids),
        "ngrams": int(index.keys.size),
        "boilerplate_ngrams_dropped": index.dropped,
    }
    return Plan(params, refs, index_key(refs, config), summary, settings, ref_texts, item_of)


def _label(record: Record) -> str:
    value = record.data.get("id")
    return str(value) if value is not None else f"row {record.row}"


def _head_schema(input: str) -> pa.Schema:
    """The output schema from the first `SCHEMA_ROWS` rows of the whole input (the same for every
    partition, so partitions' outputs merge)."""
    schema = _infer_schema([r.data for r in islice(read_records(input), SCHEMA_ROWS) if isinstance(r, Record)])
    if "contamination" in schema.names:
        raise InputError(f"{input}: input already has a 'contamination' column; rename it first")
    return schema


def _seed_deduper(out: Path, text_column: str, deduper: Deduper) -> int:
    """On resume, remember the kept rows already committed (without the partial tail a resumed run
    re-emits), so a duplicate of a row kept before the interruption is still removed. Returns the
    cursor: inputs before it are committed and are not classified again."""
    from rsynth.decontam import dedup
    from rsynth.decontam.hashing import TokenBatch, text_key
    from rsynth.decontam.normalise import tokens

    if not (out / MANIFEST).exists():
        return 0
    manifest = load_manifest(out)
    table = read_split(out, "kept")
    if table is None:
        return int(manifest.get("cursor", 0))
    rows = table.to_pylist()
    rows = rows[: len(rows) - int(manifest.get("partial", {}).get("kept", 0))]
    toks = [tokens(str(r.get(text_column) or "")) for r in rows]
    feats = dedup.features(TokenBatch.from_tokens(toks))
    for k, (r, t) in enumerate(zip(rows, toks)):
        label = str(r["id"]) if r.get("id") is not None else f"kept row {k + 1}"
        deduper.add(label, text_key(t), feats.signatures[k], feats.bands[k])
    return int(manifest.get("cursor", 0))


class _Classify:
    """Classifies a list of texts in sub-batches, in this process or in a pool of workers (results
    in input order, so the output does not depend on the number of workers)."""

    def __init__(self, settings: Settings, workers: int, batch_size: int) -> None:
        self.batch_size = batch_size
        self.pool: ProcessPoolExecutor | None = None
        self.local: Classifier | None = None
        if workers > 1:
            self.pool = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=init_worker, initargs=(settings,)
            )
        else:
            self.local = Classifier(settings)

    def __call__(self, texts: list[str], facts: list[tuple]) -> list[BatchResult]:
        spans = [(i, i + self.batch_size) for i in range(0, len(texts), self.batch_size)]
        if self.pool is None:
            assert self.local is not None
            return [self.local(texts[a:b], facts[a:b]) for a, b in spans]
        return [f.result() for f in [self.pool.submit(run_in_worker, texts[a:b], facts[a:b]) for a, b in spans]]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.local is not None:
            self.local.close()


def _judge_uncertain(texts: list[str], result: BatchResult, judge: Engine, p: Plan) -> None:
    """Ask the judge about the batch's pairs the rules leave open; 'same' turns the review entry into a removal."""
    asked = [
        j for j, m in enumerate(result.reviews) if m is not None and m.evidence and m.evidence["rule"] in JUDGED_RULES
    ]
    pairs = [
        (texts[j], p.ref_texts[p.item_of[(result.reviews[j].benchmark, result.reviews[j].item_id)]]) for j in asked
    ]
    for j, verdict in zip(asked, ask_judge(judge, pairs)):
        m = result.reviews[j]
        judged = replace(m, evidence={**(m.evidence or {}), "judge": verdict})
        if verdict == "same":
            result.matches[j], result.reviews[j] = judged, None
        else:
            result.reviews[j] = judged


JUDGED_RULES = ("uncertain",)  # the rules' open cases; "another-question" is a policy (review or --strict), not a doubt


def _key(p: Plan, semantic: SemanticConfig, judge: str | None) -> Callable[[str], str]:
    options = {k: v for k, v in asdict(p.params).items() if k not in {"workers", "batch_size"}}
    base = {
        "index": p.index_id,
        "options": options,
        "semantic": asdict(semantic) if p.params.semantic else None,
        "judge": judge,
    }

    def key(keyed_input: str) -> str:
        blob = json.dumps({"input": keyed_input, **base}, sort_keys=True, default=str)
        return "decontaminate:" + hashlib.sha256(blob.encode()).hexdigest()[:24]

    return key


def decontaminate_stage(
    p: Plan, input: str, out: Path, semantic: SemanticConfig = SemanticConfig(), judge: Engine | None = None
) -> Stage:
    """The decontaminate `Stage`: validate maps the text column; `process` classifies a batch (split
    over the workers), asks the judge, applies dedup in input order and routes each row."""
    params = p.params
    schema = _head_schema(input)
    schemas = {
        "kept": schema,
        "removed": schema.append(pa.field("contamination", CONTAMINATION_TYPE)),
        "errors": ERROR_SCHEMA,
    }
    if params.semantic:
        schemas["review"] = REVIEW_SCHEMA
    fit = _Fit(schemas)
    spec, mapping = [FieldSpec("text", str)], {"text": params.text_column}
    removed_by: Counter[tuple[str, str]] = Counter()
    decisions: Counter[str] = Counter()

    def validate(record: Record) -> str | RowError:
        mapped = map_fields(record, spec, mapping)
        if isinstance(mapped, RowError):
            return mapped
        if not mapped["text"].strip():
            return RowError(
                record.source,
                record.row,
                params.text_column,
                f"field {params.text_column!r} is empty",
                _clip(json.dumps(record.data, default=str)),
            )
        return mapped["text"]

    @contextmanager
    def work() -> Iterator[Work]:
        classify = _Classify(p.settings, params.workers, params.batch_size)
        deduper = Deduper(params.dedup_threshold) if params.dedup else None
        cursor = _seed_deduper(Path(out), params.text_column, deduper) if deduper is not None else 0

        def process(items: list[Item]) -> dict[int, Rows]:
            items = [it for it in items if it.index >= cursor]
            texts = [it.value for it in items]
            facts = [
                row_facts(
                    it.record.data, it.value, params.answer_column, params.solution_column, params.tests_column
                ).as_tuple()
                if params.semantic
                else (None, None, None)
                for it in items
            ]
            results = classify(texts, facts)
            out_rows: dict[int, Rows] = {}
            offset = 0
            for result in results:
                chunk = items[offset : offset + len(result.matches)]
                chunk_texts = texts[offset : offset + len(result.matches)]
                offset += len(chunk)
                if judge is not None:
                    _judge_uncertain(chunk_texts, result, judge, p)
                decisions["embedded"] += result.embedded
                out_rows.update(_route(chunk, chunk_texts, result, deduper, fit, p, removed_by, decisions))
            return out_rows

        def summary(c: Counts) -> dict[str, Any]:
            return _report(input, p, semantic, judge, c, removed_by, decisions)

        try:
            yield Work(
                validate,
                process,
                batch_size=params.batch_size * max(1, 2 * params.workers),
                description="decontaminating",
                summary=summary,
                checkpoint_stats=True,
            )
        finally:
            classify.close()

    return Stage(
        "decontaminate",
        schemas,
        key=_key(p, semantic, judge.model if judge is not None else None),
        work=work,
        primary="kept",
    )


def _route(
    items: list[Item],
    texts: list[str],
    result: BatchResult,
    deduper: Deduper | None,
    fit: _Fit,
    p: Plan,
    removed_by: Counter[tuple[str, str]],
    decisions: Counter[str],
) -> dict[int, Rows]:
    """Each row's split, in input order (dedup keeps the first of a group), plus its review entry."""
    decided: list[tuple[str, dict[str, Any], Match | None]] = []
    for j, it in enumerate(items):
        match, review = result.matches[j], result.reviews[j]
        if match is None and deduper is not None and result.dedup is not None:
            sig, bands = result.dedup.signatures[j], result.dedup.bands[j]
            match = deduper.check(result.exact_keys[j], sig, bands)
            if match is None:
                deduper.add(_label(it.record), result.exact_keys[j], sig, bands)
        if match is not None:
            decided.append(("removed", {**it.record.data, "contamination": match.as_struct()}, match))
        else:
            decided.append(("kept", it.record.data, review))
    for split in ("kept", "removed"):
        at = [k for k, d in enumerate(decided) if d[0] == split]
        for k, why in zip(at, fit.fits(split, [decided[k][1] for k in at])):
            if why is not None:
                rec = items[k].record
                decided[k] = (
                    "errors",
                    RowError(rec.source, rec.row, None, why, _clip(json.dumps(rec.data, default=str))).as_row(),
                    None,
                )
    out: dict[int, Rows] = {}
    for (split, row, match), it, text in zip(decided, items, texts):
        rows: Rows = [(split, row)]
        if match is not None and match.evidence is not None:
            verdict = match.evidence.get("judge")
            where = "review" if split == "kept" else split
            decisions[f"{match.evidence['rule']}{f' -> judge {verdict}' if verdict else ''} ({where})"] += 1
        if split == "removed" and match is not None:
            removed_by[(match.benchmark, match.stage)] += 1
        elif split == "kept" and match is not None and "review" in fit.schemas:
            item = p.item_of.get((match.benchmark, match.item_id))
            rows.append(
                (
                    "review",
                    {
                        "source": it.record.source,
                        "row": it.record.row,
                        "id": _label(it.record),
                        "benchmark": match.benchmark,
                        "item_id": match.item_id,
                        "score": match.score,
                        "stage": match.stage,
                        "evidence": match.evidence,
                        "text": text,
                        "item_text": p.ref_texts[item] if item is not None else None,
                    },
                )
            )
        out[it.index] = rows
    return out


def _report(
    input: str,
    p: Plan,
    semantic: SemanticConfig,
    judge: Engine | None,
    c: Counts,
    removed_by: Counter[tuple[str, str]],
    decisions: Counter[str],
) -> dict[str, Any]:
    """The run's report (also the manifest's stats): removed rows, and rows sent to review/, apart."""
    prev = c.previous
    by_bench: dict[str, dict[str, int]] = {b: dict(s) for b, s in prev.get("removed_by", {}).items()}
    for (bench, stage), n in sorted(removed_by.items()):
        by_bench.setdefault(bench, {})
        by_bench[bench][stage] = by_bench[bench].get(stage, 0) + n
    params = p.params
    report: dict[str, Any] = {
        "input": input,
        "rows": c.seen,
        "kept": c.rows["kept"],
        "removed": c.rows["removed"],
        "errors": c.rows["errors"],
        "review": c.rows.get("review", 0),
        "removed_by": dict(sorted(by_bench.items())),
        "against": {ref.name: len(ref.ids) for ref in p.refs},
        "settings": {
            **{k: v for k, v in asdict(params).items() if k not in {"workers", "batch_size"}},
            "semantic_config": asdict(semantic) if params.semantic else None,
        },
        "index": p.index_summary,
    }
    if params.semantic:
        merged = Counter(prev.get("semantic", {}).get("decisions", {})) + Counter(
            {k: v for k, v in decisions.items() if k != "embedded"}
        )
        report["semantic"] = {
            "embedded": prev.get("semantic", {}).get("embedded", 0) + decisions["embedded"],
            "decisions": dict(sorted(merged.items())),
            "judge": judge.model if judge is not None else None,
        }
    return report


def run(
    input: str,
    out: Path | str,
    params: DecontamParams = DecontamParams(),
    semantic: SemanticConfig = SemanticConfig(),
    *,
    judge: Engine | None = None,
    shard_size: int = SHARD_ROWS,
    overwrite: bool = False,
    limit: int | None = None,
    quiet: bool = True,
    partition: Partition | None = None,
) -> dict[str, Any]:
    """Decontaminate `input` into `out` through the stage executor; returns the report, also written
    to report.json. `judge` (with `semantic`) decides the pairs the rules leave open, in this
    process, on each batch's few open pairs, whatever the number of workers."""
    out = Path(out)
    check_input(input)
    check_columns(input, {"text": params.text_column})
    claim_output(out)  # an unusable --out is one line before the index or embedding model loads
    p = plan(params, semantic, quiet)
    stage = decontaminate_stage(p, input, out, semantic, judge)
    stats = execute(stage, Target(input, out, shard_size, overwrite, limit, quiet, partition))
    if "note" not in stats:
        from rsynth.data.shards import atomic_write_json

        atomic_write_json(out / "report.json", stats)
    return stats
