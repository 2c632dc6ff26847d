"""Export and import formats for step-labelled traces (REFERENCE §3), as pure row conversions.

Label choice: `hard` uses the annotator's hard labels; `threshold=X` marks a step right when its MC
value is >= X; `soft` writes MC values as floats. A step whose MC was never estimated (OmegaPRM
only estimates the prefixes its binary search visits) takes its hard label (1.0 / 0.0) for soft
and threshold labels: its position relative to the first error is what is known about it.
"""

from __future__ import annotations

import json
import re
from typing import Any

FORMATS = ("trl", "math-shepherd", "processbench", "jsonl")
STEP_TAG = "ки"  # Math-Shepherd's step-end token


class ExportError(Exception):
    """A format/label combination that would silently corrupt labels, or a malformed row."""


def parse_label(spec: str) -> tuple[str, float | None]:
    if spec in ("hard", "soft"):
        return spec, None
    m = re.fullmatch(r"threshold=([0-9]*\.?[0-9]+)", spec)
    if m and 0.0 <= float(m.group(1)) <= 1.0:
        return "threshold", float(m.group(1))
    raise ExportError(f"--label {spec!r}: expected hard, soft or threshold=X with 0 <= X <= 1")


def check_combination(fmt: str, label: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if label == "soft" and fmt != "jsonl":
        raise ExportError(
            f"--format {fmt} stores boolean/step-sign labels, so soft (float) labels would be truncated "
            "(TRL's PRMTrainer casts labels with int(), turning 0.75 into 0); use --format jsonl for soft labels, "
            "or --label hard / --label threshold=X"
        )


def step_labels(row: dict[str, Any], label: str, threshold: float | None) -> list[Any]:
    hard = row.get("step_hard")
    if hard is None:
        raise ExportError(f"trace {row.get('id')!r} has no step labels (run annotate-prm first)")
    mc = row.get("step_mc") or [None] * len(hard)
    if label == "hard":
        return [bool(h) for h in hard]
    values = [float(h) if m is None else m for m, h in zip(mc, hard)]
    if label == "soft":
        return values
    return [v >= threshold for v in values]


def to_trl(row: dict[str, Any], labels: list[Any]) -> dict[str, Any]:
    return {"prompt": row["problem"], "completions": list(row["steps"]), "labels": [bool(x) for x in labels]}


def to_math_shepherd(row: dict[str, Any], labels: list[Any], task: str) -> dict[str, Any]:
    steps = list(row["steps"])
    if any(STEP_TAG in s for s in steps):
        raise ExportError(f"trace {row.get('id')!r}: a step contains the step tag {STEP_TAG!r}")
    body = "\n".join(f"{s} {STEP_TAG}" for s in steps)
    marked = "\n".join(f"{s} {'+' if ok else '-'}" for s, ok in zip(steps, labels))
    return {"input": f"{row['problem']} {body}", "label": f"{row['problem']} {marked}", "task": task}


def to_processbench(row: dict[str, Any], labels: list[Any]) -> dict[str, Any]:
    first = next((i for i, ok in enumerate(labels) if not ok), -1)
    prov = row.get("provenance") or {}
    return {
        "id": row["id"],
        "generator": prov.get("model") or "",
        "problem": row["problem"],
        "steps": list(row["steps"]),
        "final_answer_correct": row.get("verdict") == "correct",
        "label": first,
    }


def to_jsonl(row: dict[str, Any], labels: list[Any]) -> dict[str, Any]:
    return {**row, "labels": labels}


def export_row(row: dict[str, Any], fmt: str, label: str, threshold: float | None, task: str) -> dict[str, Any]:
    labels = step_labels(row, label, threshold)
    if fmt == "trl":
        return to_trl(row, labels)
    if fmt == "math-shepherd":
        return to_math_shepherd(row, labels, task)
    if fmt == "processbench":
        return to_processbench(row, labels)
    return to_jsonl(row, labels)


def answer_after_hashes(text: str) -> str | None:
    """GSM8K's reference answer: what follows the final `####`, without thousands separators."""
    if "####" not in text:
        return None
    return text.rsplit("####", 1)[1].strip().replace(",", "")


def processbench_trace(item: dict[str, Any], answers: dict[str, str]) -> dict[str, Any]:
    """A ProcessBench item as a trace row; `answers` maps problem text to its reference answer."""
    return {
        "id": item["id"],
        "problem_id": item["id"],
        "domain": "math",
        "problem": item["problem"],
        "reference_answer": answers.get(item["problem"].strip()),
        "sample_index": 0,
        "completion": "\n\n".join(item["steps"]),
        "steps": list(item["steps"]),
        "final_answer": None,
        "verdict": "correct" if item["final_answer_correct"] else "incorrect",
        "provenance": {"model": item.get("generator"), "engine": None, "sampling": None, "seed": None,
                       "rsynth_version": None, "verifier": "processbench", "verifier_version": None},
    }


def processbench_scores(pred: dict[str, int], gold: list[dict[str, Any]]) -> dict[str, Any]:
    """ProcessBench metric: accuracy on erroneous items (exact first-error index) and on correct items
    (predicting -1), and their harmonic mean. A gold item with no prediction counts as wrong."""
    err_hits = err_n = ok_hits = ok_n = 0
    missing = 0
    for item in gold:
        p = pred.get(item["id"])
        missing += p is None
        if item["label"] == -1:
            ok_n += 1
            ok_hits += p == -1
        else:
            err_n += 1
            err_hits += p == item["label"]
    acc_err = err_hits / err_n if err_n else 0.0
    acc_ok = ok_hits / ok_n if ok_n else 0.0
    f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok else 0.0
    return {"erroneous items": err_n, "correct items": ok_n, "missing predictions": missing,
            "accuracy (erroneous)": acc_err, "accuracy (correct)": acc_ok, "F1": f1}


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)
