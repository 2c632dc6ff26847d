"""ProcessBench predictions for `rsynth eval-labels`: read the way the official evaluation reads them.

QwenLM/ProcessBench `code/run_eval.py` takes the last `\\boxed{([^}]*)}` of a critique (regex, no
nested braces), strips it and reads it with `int()`; anything else is no prediction. With several
critiques per item (`--use_voting`) it counts the extracted strings that exist, takes
`Counter.most_common(1)` (ties: the first seen) and reads that with `int()`. That is the default
reading here (`official`), so a judge run scores what the published numbers score.

rsynth's judge stage votes differently (`annotators/judge.py`: `\\boxed{paragraph_1}` and
`\\boxed{$2$}` count, out-of-range indices do not, ties go to the earliest error); that reading is
`lenient`, opt-in, and named as such in the report. `int()` parses digits only: nothing is evaluated.

`--pred` is an rsynth output directory (judge or annotate-prm) or a JSON / JSONL file of rows with an
`id` and a `prediction` (an integer or null, as ProcessBench's own output files have), or a
`generated_critique` (a string, or a list of them for voting) that is read as above.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsynth.annotators.judge import majority_vote, parse_first_error
from rsynth.data.readers import RowError, read_records
from rsynth.errors import UserError

READINGS = ("official", "lenient")
READING_NOTES = {
    "official": "official ProcessBench reading: last \\boxed{} read with int()",
    "lenient": "LENIENT reading (not the official ProcessBench numbers): "
    "\\boxed{paragraph_N}, \\boxed{$N$}, rsynth's vote",
}
_OFFICIAL_BOX = re.compile(r"\\boxed\{([^}]*)\}")
_NO_RANGE = 10**9  # a file's rows carry no steps: the lenient reading then checks no index range


def official_answer(critique: str) -> str | None:
    """The stripped content of the critique's last `\\boxed{...}` (no nested braces), or None."""
    found = _OFFICIAL_BOX.findall(critique)
    return found[-1].strip() if found else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def official_prediction(critiques: Sequence[str]) -> int | None:
    """ProcessBench's prediction from one critique or several (its vote), or None."""
    if len(critiques) == 1:
        return _int(official_answer(critiques[0]))
    answers = [a for a in (official_answer(c) for c in critiques) if a is not None]
    return _int(Counter(answers).most_common(1)[0][0]) if answers else None


def lenient_prediction(critiques: Sequence[str], num_steps: int = _NO_RANGE) -> int | None:
    """rsynth's judge reading: every critique parsed leniently, then rsynth's vote."""
    return majority_vote([parse_first_error(c, num_steps) for c in critiques]).first_error


def _critiques(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def file_predictions(path: str, reading: str) -> dict[str, int]:
    """{id: prediction} of a JSON / JSONL file; a malformed row is a one-line UserError naming it."""
    preds: dict[str, int] = {}
    for rec in read_records(path):
        if isinstance(rec, RowError):
            raise UserError(f"{rec.source}: row {rec.row}: {rec.reason}")
        where = f"{rec.source}: row {rec.row}"
        rid = rec.data.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool):
            raise UserError(f"{where}: field 'id': expected a string or an integer")
        if "prediction" in rec.data:
            value = rec.data["prediction"]
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise UserError(
                    f"{where}: field 'prediction': expected an integer, a string or null, got {json.dumps(value)[:60]}"
                )
            pred = (
                value
                if isinstance(value, int)
                else (_int(value.strip()) if reading == "official" else lenient_prediction([f"\\boxed{{{value}}}"]))
            )
        elif (critiques := _critiques(rec.data.get("generated_critique"))) is not None:
            pred = official_prediction(critiques) if reading == "official" else lenient_prediction(critiques)
        else:
            raise UserError(f"{where}: needs a field 'prediction' (integer or null) or 'generated_critique' (text)")
        if pred is not None:
            preds[str(rid)] = pred
    return preds


def judge_predictions(out: Path, reading: str) -> dict[str, int]:
    """{id: prediction} of a judge output directory: its critiques read by `reading` (every row, the
    ones whose lenient vote failed included); `lenient` is the stage's own `judge_first_error`."""
    from rsynth.data.shards import iter_split_rows

    preds: dict[str, int] = {}
    for split in ("data", "unparsed"):
        for row in iter_split_rows(out, split):
            critiques = row.get("judge_critiques") or []
            if reading == "official":
                pred = official_prediction(critiques) if critiques else None
            else:
                pred = row.get("judge_first_error")
            if pred is not None:
                preds[row["id"]] = pred
    return preds
