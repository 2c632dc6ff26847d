"""`generate problems`: procedural templates, or LLM rewrites of seed problems checked by agreement."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsynth.data.readers import FieldSpec, Record, RowError, map_fields
from rsynth.data.schema import ERROR_SCHEMA, PROBLEM_SCHEMA
from rsynth.engines.base import Engine, Prompt, SamplingParams
from rsynth.executor.loop import Item, Rows
from rsynth.executor.partition import Partition, take
from rsynth.executor.stage import Counts, Stage, Target, Work, execute, ready
from rsynth.pipelines.solutions import DEFAULT_INSTRUCTION, run_key
from rsynth.steps import split_steps
from rsynth.answers import extract_final_answer
from rsynth.synth.templates import TEMPLATES, Knobs, generate_problems

TEMPLATE_CHOICES = (*TEMPLATES, "mixed")

REWRITE_INSTRUCTION = (
    "Write a new math word problem in the style of the example below, with a different story and "
    "different numbers, solvable in a few steps. Write only the new problem, nothing else.\n\nExample: {problem}"
)


def write_template_problems(out: Path, template: str, n: int, seed: int, knobs: Knobs, *, shard_size: int, overwrite: bool,
                            partition: Partition | None = None) -> dict[str, Any]:
    """`n` procedural problems; the template name stands in for an input (so partitions key apart)."""
    key = lambda inputs: run_key("generate-problems", inputs, {}, _NoEngine(), {"n": n, "seed": seed, "knobs": knobs.__dict__}, None)  # noqa: E731

    def records(target: Target) -> Iterator[Record]:
        rows = generate_problems(template, n, seed, knobs)
        return (Record(target.input, i + 1, row) for i, row in enumerate(take(rows, target.partition, n, target.out)))

    work = Work(lambda rec: rec.data, lambda items: {it.index: [("data", it.value)] for it in items}, batch_size=shard_size,
                description="writing problems", summary=lambda c: {"problems": c.rows["data"], "template": template, "seed": seed})
    stage = Stage("generate-problems", {"data": PROBLEM_SCHEMA}, key=key, work=ready(work), records=records)
    return execute(stage, Target(f"template:{template}", Path(out), shard_size, overwrite, None, True, partition))


class _NoEngine:
    """Template problems use no model; the run key records that."""

    def identity(self) -> dict:
        return {"engine": None}


@dataclass
class EvolveConfig:
    params: SamplingParams = field(default_factory=SamplingParams)
    n_check: int = 4
    agreement: float = 0.75
    instruction: str = REWRITE_INSTRUCTION


SEED_FIELDS = [FieldSpec("problem", str), FieldSpec("id", str, required=False)]


def _majority(answers: list[str | None]) -> tuple[str | None, float]:
    """The most common answer and its share; `None` (no answer) never wins."""
    counts = Counter(a.strip() for a in answers if a and a.strip())
    if not counts:
        return None, 0.0
    answer, votes = counts.most_common(1)[0]
    return answer, votes / len(answers)


def evolve_problems(
    seeds: str, mapping: dict[str, str], out: Path, engine: Engine, config: EvolveConfig, *,
    shard_size: int, overwrite: bool, limit: int | None, quiet: bool, partition: Partition | None = None,
) -> dict[str, Any]:
    """Rewrite each seed problem with the model, solve the rewrite `n_check` times, and keep it only if
    at least `agreement` of the solutions give the same answer (which becomes its reference answer).
    Rewrites that fail the check go to `rejected/` with the answers as evidence."""
    return execute(evolve_stage(mapping, engine, config, limit), Target(seeds, Path(out), shard_size, overwrite, limit, quiet, partition))


def evolve_stage(mapping: dict[str, str], engine: Engine, config: EvolveConfig, limit: int | None) -> Stage:
    fingerprint = {"params": config.params.provenance(), "seed": config.params.seed, "n": config.n_check, "agree": config.agreement,
                   "instr": config.instruction}

    def validate(record: Record) -> dict | RowError:
        view = map_fields(record, SEED_FIELDS, mapping)
        if isinstance(view, RowError):
            return view
        view["id"] = view["id"] or f"seed-{record.row}"
        return view

    def process(items: list[Item]) -> dict[int, Rows]:
        rewrites = engine.generate([Prompt.user(config.instruction.format(problem=it.value["problem"])) for it in items], config.params.with_n(1))
        texts = [r[0].text.strip() for r in rewrites]
        solved = engine.generate([Prompt.user(DEFAULT_INSTRUCTION.format(problem=t)) for t in texts], config.params.with_n(config.n_check))
        out_rows: dict[int, Rows] = {}
        for it, text, sols in zip(items, texts, solved):
            answers = [extract_final_answer(c.text) for c in sols]
            answer, share = _majority(answers)
            keep = bool(text) and answer is not None and share >= config.agreement
            best = next((c.text for c, a in zip(sols, answers) if a and a.strip() == answer), "")
            row = {
                "id": f"{it.value['id']}-rw{config.params.seed}",
                "domain": "math",
                "problem": text,
                "reference_answer": answer,
                "gold_steps": split_steps(best) if keep else [],
                "source": f"rewrite:{it.value['id']}",
                "metadata": json.dumps({"seed_problem": it.value["problem"], "answers": answers, "agreement": share}),
            }
            out_rows[it.index] = [("data" if keep else "rejected", row)]
        return out_rows

    def summary(c: Counts) -> dict[str, Any]:
        return {"seed rows": c.seen, "problems kept (data/)": c.rows["data"], "rejected (rejected/)": c.rows["rejected"],
                "bad input rows (errors/)": c.rows["errors"]}

    work = Work(validate, process, batch_size=max(1, engine.max_batch_prompts // config.n_check), description="rewriting seeds", summary=summary)
    return Stage("generate-problems", {"data": PROBLEM_SCHEMA, "rejected": PROBLEM_SCHEMA, "errors": ERROR_SCHEMA},
                 key=lambda inputs: run_key("generate-problems-evolve", inputs, mapping, engine, fingerprint, limit), work=ready(work))
