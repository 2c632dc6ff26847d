"""`generate problems`: procedural templates, or LLM rewrites of seed problems checked by agreement."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsynth.answers import extract_final_answer
from rsynth.data.readers import FieldSpec, Record, RowError, map_fields, source_ref
from rsynth.data.schema import ERROR_SCHEMA, PROBLEM_SCHEMA, REJECTED_SCHEMA
from rsynth.engines.base import Engine, Prompt, SamplingParams
from rsynth.runner.loop import Item, Rows
from rsynth.runner.partition import Partition, take
from rsynth.runner.stage import Counts, Stage, Target, Work, execute, ready
from rsynth.stages.problem import DEFAULT_INSTRUCTION
from rsynth.stages.run_key import run_key
from rsynth.steps import split_steps
from rsynth.synth.knobs import TEMPLATE_NAMES, Knobs

TEMPLATE_CHOICES = (*TEMPLATE_NAMES, "mixed")

REWRITE_INSTRUCTION = (
    "Write a new math word problem in the style of the example below, with a different story and "
    "different numbers, solvable in a few steps. Write only the new problem, nothing else.\n\nExample: {problem}"
)


def write_template_problems(
    out: Path,
    template: str,
    n: int,
    seed: int,
    knobs: Knobs,
    *,
    shard_size: int,
    overwrite: bool,
    partition: Partition | None = None,
) -> dict[str, Any]:
    """`n` procedural problems; the template name stands in for an input (so partitions key apart)."""

    def key(inputs):
        return run_key(
            "generate-problems", inputs, {}, _NoEngine(), {"n": n, "seed": seed, "knobs": knobs.__dict__}, None
        )  # noqa: E731

    def records(target: Target) -> Iterator[Record]:
        from rsynth.synth.templates import generate_problems  # sympy: loaded only when problems are written

        rows = generate_problems(template, n, seed, knobs)
        return (Record(target.input, i + 1, row) for i, row in enumerate(take(rows, target.partition, n, target.out)))

    work = Work(
        lambda rec: rec.data,
        lambda items: {it.index: [("data", it.value)] for it in items},
        batch_size=shard_size,
        description="writing problems",
        summary=lambda c: {"problems": c.rows["data"], "template": template, "seed": seed},
    )
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
    per_seed: int = 1  # rewrites sampled per seed problem (see `rewrite_plan`)
    total: int | None = None  # rewrites in all (`--n` with `--from`); None: per_seed for every seed


def rewrite_plan(n: int, seeds: int) -> tuple[int, int]:
    """(rewrites per seed, seed rows to read) for `n` rewrites in total from `seeds` seed rows:
    spread evenly, first seeds first, and no seed read that would get none."""
    per_seed = max(1, -(-n // max(seeds, 1)))
    return per_seed, min(seeds, -(-n // per_seed))


ANSWER_STATEMENT = re.compile(r"(?im)^\s*(?:\*\*)?(?:final\s+)?(?:answer|solution)\s*(?:\*\*)?\s*[:：]")
QUESTION = re.compile(
    r"\?|(?i:\b(?:how\s+(?:many|much|long|far|old)|what|which|find|calculate|compute|determine|work\s+out)\b)"
)


def not_a_problem(text: str) -> str | None:
    """Why a rewrite is not a problem (the rejected row's reason), or None. A model asked for a problem
    often writes a solution instead; its "answer" would then become a reference that its own text
    contradicts, so a rewrite must ask something and state no answer."""
    if not text:
        return "empty_rewrite"
    if extract_final_answer(text) is not None or ANSWER_STATEMENT.search(text):
        return "states_an_answer"
    if not QUESTION.search(text):
        return "no_question"
    return None


SEED_FIELDS = [FieldSpec("problem", str), FieldSpec("id", str, required=False)]


def _majority(answers: list[str | None]) -> tuple[str | None, float]:
    """The most common answer and its share; `None` (no answer) never wins."""
    counts = Counter(a.strip() for a in answers if a and a.strip())
    if not counts:
        return None, 0.0
    answer, votes = counts.most_common(1)[0]
    return answer, votes / len(answers)


def validate_seed(record: Record, mapping: dict[str, str]) -> dict | RowError:
    """A seed problem row, with an id from its source file and row when it has none."""
    view = map_fields(record, SEED_FIELDS, mapping)
    if isinstance(view, RowError):
        return view
    view["source_ref"] = source_ref(record)
    view["id"] = view["id"] or view["source_ref"]
    return view


def evolve_problems(
    seeds: str,
    mapping: dict[str, str],
    out: Path,
    engine: Engine,
    config: EvolveConfig,
    *,
    shard_size: int,
    overwrite: bool,
    limit: int | None,
    quiet: bool,
    partition: Partition | None = None,
) -> dict[str, Any]:
    """Rewrite each seed problem `per_seed` times with the model; keep a rewrite only if it is a problem
    (asks something, states no answer) and at least `agreement` of `n_check` solutions of it give the
    same answer (which becomes its reference answer). Every other rewrite goes to `rejected/` with its
    reason (empty_rewrite, states_an_answer, no_question, no_answer_found, low_agreement) and evidence."""
    return execute(
        evolve_stage(mapping, engine, config, limit),
        Target(seeds, Path(out), shard_size, overwrite, limit, quiet, partition),
    )


def evolve_stage(mapping: dict[str, str], engine: Engine, config: EvolveConfig, limit: int | None) -> Stage:
    fingerprint = {
        "params": config.params.provenance(),
        "seed": config.params.seed,
        "n": config.n_check,
        "agree": config.agreement,
        "instr": config.instruction,
        **(
            {"per_seed": config.per_seed, "total": config.total}
            if config.per_seed != 1 or config.total is not None
            else {}
        ),
    }

    reasons: Counter[str] = Counter()

    def quota(index: int) -> int:
        """Rewrites kept from the seed at input position `index`: the last seed may get fewer."""
        return (
            config.per_seed
            if config.total is None
            else max(0, min(config.per_seed, config.total - index * config.per_seed))
        )

    def process(items: list[Item]) -> dict[int, Rows]:
        rewrites = engine.generate(
            [Prompt.user(config.instruction.format(problem=it.value["problem"])) for it in items],
            config.params.with_n(config.per_seed),
        )
        cands = [
            (it, j, c.text.strip())
            for it, group in zip(items, rewrites)
            for j, c in enumerate(group)
            if j < quota(it.index)
        ]
        why = [not_a_problem(text) for _, _, text in cands]
        checked = [cand for cand, w in zip(cands, why) if w is None]
        solved = iter(
            engine.generate(
                [Prompt.user(DEFAULT_INSTRUCTION.format(problem=t)) for _, _, t in checked],
                config.params.with_n(config.n_check),
            )
            if checked
            else []
        )
        out_rows: dict[int, Rows] = {}
        for (it, j, text), reason in zip(cands, why):
            seed_id = it.value["id"]
            row = {
                "id": f"{seed_id}-rw{config.params.seed}" + (f"-{j}" if j else ""),
                "domain": "math",
                "problem": text,
                "reference_answer": None,
                "gold_steps": [],
                "source": f"rewrite:{seed_id}",
                "source_ref": it.value["source_ref"],
            }
            meta: dict[str, Any] = {"seed_problem": it.value["problem"]}
            if reason is None:
                sols = next(solved)
                answers = [extract_final_answer(c.text) for c in sols]
                answer, share = _majority(answers)
                meta.update(answers=answers, agreement=share)
                reason = "no_answer_found" if answer is None else "low_agreement" if share < config.agreement else None
                if reason is None:
                    best = next(c.text for c, a in zip(sols, answers) if a and a.strip() == answer)
                    row.update(reference_answer=answer, gold_steps=split_steps(best))
            row["metadata"] = json.dumps(meta)
            split = "data" if reason is None else "rejected"
            reasons[reason or "kept"] += 1
            out_rows.setdefault(it.index, []).append(
                (split, row if reason is None else {**row, "reason": reason, "evidence": row["metadata"]})
            )
        return out_rows

    def summary(c: Counts) -> dict[str, Any]:
        return {
            "seed rows": c.seen,
            "problems kept (data/)": c.rows["data"],
            "rejected (rejected/)": c.rows["rejected"],
            **{f"rejected {r} (this run)": n for r, n in sorted(reasons.items()) if r != "kept"},
            "bad input rows (errors/)": c.rows["errors"],
        }

    work = Work(
        lambda rec: validate_seed(rec, mapping),
        process,
        batch_size=max(1, engine.max_batch_prompts // (config.n_check * config.per_seed)),
        description="rewriting seeds",
        summary=summary,
    )
    return Stage(
        "generate-problems",
        {"data": PROBLEM_SCHEMA, "rejected": REJECTED_SCHEMA, "errors": ERROR_SCHEMA},
        key=lambda inputs: run_key("generate-problems-evolve", inputs, mapping, engine, fingerprint, limit),
        work=ready(work),
    )
