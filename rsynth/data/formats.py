"""Export and import formats (TRL stepwise, Math-Shepherd, OpenRLHF, ProcessBench) as pure row conversions.

Step separator: the string between steps wherever a format joins them into one text (Math-Shepherd,
OpenRLHF). TRL's rows keep steps as a list; its PRMTrainer appends its own `step_separator` (default
`"\n"`, `DEFAULT_SEPARATOR`) after each step and trains the label on that separator's last token, so
export records the separator a trainer should be given, and counts steps that contain it.

Label choice: `hard` uses the annotator's hard labels; `threshold=X` marks a step right when its MC
value is >= X and the annotator's rule does not call it bad (a threshold only ever makes labels
stricter, so no exported step at or after `first_error` is ever correct); `soft` writes MC values as
floats. A step whose MC was never estimated (OmegaPRM only estimates the prefixes its binary search
visits) has no value to export: `--unestimated` says what happens to it -- `drop` leaves the trace
out, `mask` writes a null label (only where the format can hold one: jsonl), `refuse` (the default)
stops with the trace and step named. Values are never invented from the hard label.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rsynth.data.formats_pairs import PAIR_FORMATS  # verifier and preference formats, in their own module
from rsynth.data.formats_rl import RL_FORMATS

FORMATS = ("trl", "math-shepherd", "processbench", "jsonl", "openrlhf", *PAIR_FORMATS, *RL_FORMATS)
SOFT_FORMATS = ("jsonl", "openrlhf")  # formats whose label column can hold floats
MASK_FORMATS = ("jsonl",)  # formats whose label column can hold null (a masked step)
UNESTIMATED = ("refuse", "drop", "mask")  # what to do with a step whose MC value was never estimated
STEP_TAG = "ки"  # Math-Shepherd's step-end token
DEFAULT_SEPARATOR = "\n"  # TRL PRMConfig.step_separator's default


class ExportError(Exception):
    """A format/label combination that would silently corrupt labels, or a malformed row."""


def parse_label(spec: str) -> tuple[str, float | None]:
    if spec in ("hard", "soft"):
        return spec, None
    m = re.fullmatch(r"threshold=([0-9]*\.?[0-9]+)", spec)
    if m and 0.0 <= float(m.group(1)) <= 1.0:
        return "threshold", float(m.group(1))
    raise ExportError(f"--label {spec!r}: expected hard, soft or threshold=X with 0 <= X <= 1")


def check_combination(fmt: str, label: str, unestimated: str = "refuse") -> None:
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if unestimated not in UNESTIMATED:
        raise ExportError(f"--unestimated {unestimated!r}: expected one of {', '.join(UNESTIMATED)}")
    if unestimated == "mask" and label != "hard" and fmt not in MASK_FORMATS:
        raise ExportError(
            f"--unestimated mask: --format {fmt} cannot hold a masked (null) step label; "
            f"use --format {' or '.join(MASK_FORMATS)}, or --unestimated drop"
        )
    if label == "soft" and fmt not in SOFT_FORMATS and fmt not in RL_FORMATS:  # RL rows carry no step labels
        raise ExportError(
            f"--format {fmt} stores boolean/step-sign labels, so soft (float) labels would be truncated "
            "(TRL's PRMTrainer casts labels with int(), turning 0.75 into 0); use --format jsonl or openrlhf for soft labels, "
            "or --label hard / --label threshold=X"
        )


def parse_separator(text: str) -> str:
    """`\\n`, `\\t` and `\\\\` typed on a shell or in a plain YAML scalar mean newline, tab and backslash."""
    if not text:
        raise ExportError("--step-separator must not be empty: steps would run together")
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


class Unestimated(Exception):
    """A trace with a step whose MC value was never estimated, under `--unestimated drop`."""


def step_labels(row: dict[str, Any], label: str, threshold: float | None, unestimated: str = "refuse") -> list[Any]:
    """The exported label of each step; raises `Unestimated` for a trace to drop (see the module doc)."""
    hard = row.get("step_hard")
    if hard is None:
        raise ExportError(f"trace {row.get('id')!r} has no step labels (run annotate-prm first)")
    if label == "hard":
        return [bool(h) for h in hard]
    mc = row.get("step_mc") or [None] * len(hard)
    missing = next((i for i, m in enumerate(mc) if m is None), None)
    if missing is not None and unestimated == "drop":
        raise Unestimated(row.get("id"))
    if missing is not None and unestimated != "mask":
        raise ExportError(
            f"trace {row.get('id')!r}: step {missing} has no MC estimate, so it has no {label} label "
            "(OmegaPRM estimates only the prefixes its search visits); pass --unestimated drop "
            "(leave such traces out) or --unestimated mask (null labels, --format jsonl), or use --label hard"
        )
    if label == "soft":
        return list(mc)
    return [None if m is None else (h is not False and m >= threshold) for m, h in zip(mc, hard)]


def to_trl(row: dict[str, Any], labels: list[Any]) -> dict[str, Any]:
    return {"prompt": row["problem"], "completions": list(row["steps"]), "labels": [bool(x) for x in labels]}


def tagged_text(row: dict[str, Any], tags: list[str], separator: str) -> str:
    """Math-Shepherd's layout: the problem, then each step followed by a space and its tag."""
    body = separator.join(f"{s} {t}" for s, t in zip(row["steps"], tags))
    return f"{row['problem']} {body}"


def _check_tag(row: dict[str, Any], tag: str) -> None:
    if any(tag in s for s in [row["problem"], *row["steps"]]):
        raise ExportError(
            f"trace {row.get('id')!r}: its text contains the step tag {tag!r}, which would add a label position"
        )


def to_math_shepherd(
    row: dict[str, Any], labels: list[Any], task: str, separator: str = DEFAULT_SEPARATOR
) -> dict[str, Any]:
    _check_tag(row, STEP_TAG)
    steps = list(row["steps"])
    return {
        "input": tagged_text(row, [STEP_TAG] * len(steps), separator),
        "label": tagged_text(row, ["+" if ok else "-" for ok in labels], separator),
        "task": task,
    }


def to_openrlhf(
    row: dict[str, Any], labels: list[Any], placeholder: str, separator: str = DEFAULT_SEPARATOR
) -> dict[str, Any]:
    """OpenRLHF ProcessRewardDataset rows: `input` with one placeholder per step, `value` a list with one
    label per placeholder ("+"/"-" for hard labels, floats for soft ones)."""
    _check_tag(row, placeholder)
    value = [("+" if ok else "-") if isinstance(ok, bool) else float(ok) for ok in labels]
    return {"input": tagged_text(row, [placeholder] * len(row["steps"]), separator), "value": value}


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


def export_row(
    row: dict[str, Any],
    fmt: str,
    label: str,
    threshold: float | None,
    task: str,
    separator: str = DEFAULT_SEPARATOR,
    placeholder: str = STEP_TAG,
    unestimated: str = "refuse",
) -> dict[str, Any]:
    labels = step_labels(row, label, threshold, unestimated)
    if fmt == "trl":
        return to_trl(row, labels)
    if fmt == "math-shepherd":
        return to_math_shepherd(row, labels, task, separator)
    if fmt == "openrlhf":
        return to_openrlhf(row, labels, placeholder, separator)
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
        "provenance": {
            "model": item.get("generator"),
            "engine": None,
            "sampling": None,
            "seed": None,
            "rsynth_version": None,
            "verifier": "processbench",
            "verifier_version": None,
        },
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
    return {
        "erroneous items": err_n,
        "correct items": ok_n,
        "missing predictions": missing,
        "accuracy (erroneous)": acc_err,
        "accuracy (correct)": acc_ok,
        "F1": f1,
    }


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)
