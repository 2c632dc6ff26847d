"""Problem rows as every sampling stage reads them, and the answer a solution gives.

Shared by generate solutions, annotate-prm, problems and the rollout prompts: the default instruction,
the problem/answer/id columns (with rsynth's and GSM8K's conventions), and the answer of a possibly
truncated generation.
"""

from __future__ import annotations

from typing import Any

from rsynth.answers import extract
from rsynth.data.formats import answer_after_hashes
from rsynth.data.readers import SOURCE_REF, FieldSpec, Record, RowError, map_fields, source_ref

DEFAULT_INSTRUCTION = (
    "Solve the following problem step by step. Write each step on its own line, separated by a blank "
    "line, and finish with a final line of the form 'The answer is: <answer>'.\n\nProblem: {problem}"
)

PROBLEM_FIELDS = [
    FieldSpec("problem", str),
    FieldSpec("answer", str),
    FieldSpec("id", str, required=False),
]


def read_problem(
    record: Record, mapping: dict[str, str], specs: list[FieldSpec] = PROBLEM_FIELDS
) -> dict[str, Any] | RowError:
    """`map_fields` for problem-shaped rows, with the defaults every sampling stage shares.

    rsynth's own shards call the answer `reference_answer`; GSM8K's answer is a worked solution
    ending "#### N", of which only N is the reference; every row names its origin (`source_ref`,
    FILE@SHA8:ROW, see `readers.source_ref`), which is also the id of a row without one.
    """
    if "answer" not in mapping and "answer" not in record.data and "reference_answer" in record.data:
        mapping = {**mapping, "answer": "reference_answer"}
    view = map_fields(record, specs, mapping)
    if isinstance(view, RowError):
        return view
    view["answer"] = answer_after_hashes(view["answer"]) or view["answer"]
    view[SOURCE_REF] = source_ref(record)
    view["id"] = view["id"] or view[SOURCE_REF]
    return view


def truncated(finish_reason: str | None) -> bool:
    """A generation that did not end by itself (cut at max tokens, or no stop reported)."""
    return finish_reason != "stop"


def final_answer(text: str, chain: tuple[str, ...] | str, finish_reason: str | None = "stop") -> str | None:
    """The answer of a solution, or None (no_answer). A truncated generation keeps only an answer it
    marked explicitly before the cut (box, "the answer is", ####): a guessing rule such as last-number
    would read an intermediate figure ("60 / 40 = 1.") as the answer of a solution that never ended."""
    found = extract(text, chain)
    return found.answer if found.explicit or not truncated(finish_reason) else None
