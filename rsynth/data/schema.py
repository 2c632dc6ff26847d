"""The one Arrow schema family every stage reads and writes.

Problems, traces, error rows and OmegaPRM tree nodes each have a fixed schema so that every output
directory loads with `datasets` without type inference surprises (a column of all-null labels would
otherwise come back as `null` type and break concatenation across shards).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

DOMAINS = ("math", "lean", "code")

SAMPLING_TYPE = pa.struct(
    [
        ("temperature", pa.float64()),
        ("top_p", pa.float64()),
        ("max_new_tokens", pa.int64()),
        ("n", pa.int64()),
    ]
)

PROVENANCE_TYPE = pa.struct(
    [
        ("model", pa.string()),
        ("engine", pa.string()),
        ("sampling", SAMPLING_TYPE),
        ("seed", pa.int64()),
        ("rsynth_version", pa.string()),
        ("verifier", pa.string()),
        ("verifier_version", pa.string()),
    ]
)

PROBLEM_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("domain", pa.string()),
        ("problem", pa.string()),
        ("reference_answer", pa.string()),
        ("gold_steps", pa.list_(pa.string())),
        ("source", pa.string()),
        ("metadata", pa.string()),  # JSON object: template knobs, passthrough input columns
        ("source_ref", pa.string()),  # the input row it came from: FILE@SHA8:ROW (null for template problems)
    ]
)

# Label fields (filled by annotate-prm; null until then). MC values are kept with the counts they
# came from so hard, soft and thresholded labels can all be derived later without re-sampling.
LABEL_FIELDS = [
    ("label_method", pa.string()),
    ("step_mc", pa.list_(pa.float64())),
    ("step_k", pa.list_(pa.int64())),
    ("step_correct", pa.list_(pa.int64())),
    ("step_hard", pa.list_(pa.bool_())),
    ("step_progress", pa.list_(pa.float64())),
    ("step_relative_progress", pa.list_(pa.float64())),  # GenPRM RPE: MC_i / MC_{i-1}
    ("first_error", pa.int64()),
    ("trace_value_min", pa.float64()),
]

TRACE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("problem_id", pa.string()),
        ("domain", pa.string()),
        ("problem", pa.string()),
        ("reference_answer", pa.string()),
        ("sample_index", pa.int64()),
        ("completion", pa.string()),
        ("steps", pa.list_(pa.string())),
        ("final_answer", pa.string()),
        ("verdict", pa.string()),
        ("num_tokens", pa.int64()),
        ("finish_reason", pa.string()),
        ("pass_rate", pa.float64()),
        ("provenance", PROVENANCE_TYPE),
        *LABEL_FIELDS,
        ("source_ref", pa.string()),  # the input row it came from: FILE@SHA8:ROW (rsynth.data.readers.source_ref)
    ]
)

ERROR_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("row", pa.int64()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)

TREE_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("problem_id", pa.string()),
        ("question", pa.string()),
        ("prefix_steps", pa.list_(pa.string())),
        ("mc", pa.float64()),
        ("k", pa.int64()),
        ("correct", pa.int64()),
        ("visits", pa.int64()),
        ("depth", pa.int64()),
    ]
)


# One row per input question or trace: how its search ended and what it cost. Questions the
# pre-filter found all-right or all-wrong appear only here, so every input row is accounted for.
QUESTION_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("input_id", pa.string()),
        ("problem", pa.string()),
        ("reference_answer", pa.string()),
        ("method", pa.string()),
        ("outcome", pa.string()),  # searched | all_correct | all_wrong | labelled
        ("stop_reason", pa.string()),
        ("root_mc", pa.float64()),
        ("traces", pa.int64()),
        ("tree_nodes", pa.int64()),
        ("requests", pa.int64()),
        ("completions", pa.int64()),
        ("generated_tokens", pa.int64()),
    ]
)


def conform(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Return `row` restricted to the schema's columns, missing ones as null.

    Stages add fields as they go; conforming at write time keeps every shard of a split on one
    schema instead of trusting each stage to spell every column.
    """
    return {name: row.get(name) for name in schema.names}


def empty_labels() -> dict[str, Any]:
    return {name: None for name, _ in LABEL_FIELDS}


# A candidate a filter turned down (generate formal, generate code --synthesize-tests): the problem
# row it would have been, the filter's reason (does_not_elaborate, vacuous_false_hypotheses, ...)
# and the evidence behind it as a JSON string (Lean message, sandbox stderr, grades).
REJECTED_SCHEMA = pa.schema([*PROBLEM_SCHEMA, ("reason", pa.string()), ("evidence", pa.string())])

# generate proofs: one row per statement: how many sampled proofs Lean accepted, and whether a
# proof of the negation showed the statement false (then its traces go to `rejected/`).
STATEMENT_OUTCOME_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("statement", pa.string()),
        ("outcome", pa.string()),  # proved | unproved | negation_proved
        ("proofs", pa.int64()),
        ("proved", pa.int64()),
        ("pass_rate", pa.float64()),
        ("negation_proofs", pa.int64()),
        ("negation_proved", pa.int64()),
        ("evidence", pa.string()),  # JSON: the proved negation, or null
    ]
)

# `rsynth judge`: an LLM judge's first-error verdicts for a trace (rsynth.annotators.judge). The
# trace's own columns (MC labels included) pass through, so consensus can compare the two sources.
JUDGE_PROVENANCE_TYPE = pa.struct(
    [
        ("model", pa.string()),
        ("engine", pa.string()),
        ("sampling", SAMPLING_TYPE),
        ("seed", pa.int64()),
        ("rsynth_version", pa.string()),
        ("template", pa.string()),
    ]
)
JUDGE_FIELDS = [
    ("judge_first_error", pa.int64()),  # majority verdict; null when no judgement parsed
    ("judge_votes", pa.list_(pa.int64())),  # one per judgement, null where unparseable
    ("judge_agreement", pa.float64()),  # winner's votes / all judgements
    ("judge_unparsed", pa.int64()),
    ("judge_tokens", pa.int64()),  # generated tokens of all judgements of this trace
    ("judge_critiques", pa.list_(pa.string())),
    ("judge_provenance", JUDGE_PROVENANCE_TYPE),
]
JUDGED_TRACE_SCHEMA = pa.schema([*TRACE_SCHEMA, *JUDGE_FIELDS])
# `consensus`: why a judged trace was kept (data/) or set aside (filtered/).
CONSENSUS_SCHEMA = pa.schema([*JUDGED_TRACE_SCHEMA, ("consensus_reason", pa.string())])
