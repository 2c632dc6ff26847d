"""`generate formal` and `generate proofs`: the DeepSeek-Prover pipeline on the batch Lean verifier.

- formal: a model turns natural-language problems into Lean 4 statements; a statement is kept
  only if it elaborates (checked with a `sorry` proof), its hypotheses do not prove `False`, and
  its conclusion is not closed by a trivial tactic under a short heartbeat limit; optionally the
  model grades faithfulness. Every check of a batch goes into ONE Lean run.
- proofs: n whole proofs per statement and, in parallel, n proofs of its negation; all of them in
  one Lean run per batch. A proved negation shows the statement false: its traces go to
  `rejected/`. Each proof gets tactic-level labels from the first error Lean reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsynth.config import fingerprint
from rsynth.data.readers import FieldSpec, Record, RowError, map_fields
from rsynth.data.schema import (
    ERROR_SCHEMA,
    PROBLEM_SCHEMA,
    REJECTED_SCHEMA,
    STATEMENT_OUTCOME_SCHEMA,
    TRACE_SCHEMA,
    empty_labels,
)
from rsynth.engines.base import Engine, Prompt, SamplingParams
from rsynth.runner.loop import Item, Rows
from rsynth.runner.stage import Counts, RunOptions, Stage, Target, Work, execute, ready, split_summary
from rsynth.stages.provenance import provenance
from rsynth.stages.run_key import run_key
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem
from rsynth.verifiers.lean import LeanVerifier, refuse_escape_hatches
from rsynth.verifiers.lean_syntax import (
    Statement,
    extract_tactics,
    negated,
    parse_statement,
    split_header,
    tactic_steps,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

FORMALIZE_INSTRUCTION = (
    "Translate the following math problem into a Lean 4 theorem statement. State the hypotheses as "
    "named binders and the claim as the theorem's type. Do not prove it: end with `:= by sorry`, and "
    "write only the theorem in a ```lean block.\n\nProblem: {problem}"
)
PROVE_INSTRUCTION = (
    "Complete the following Lean 4 theorem with a tactic proof. Write the whole theorem and its "
    "proof in a ```lean block.\n\n```lean\n{statement} := by\n```"
)
GRADE_INSTRUCTION = (
    "Does the Lean 4 statement state exactly the math problem (same hypotheses, same claim)? Reply "
    "with one digit from 1 (unrelated) to 5 (exact).\n\nProblem: {problem}\n\nLean 4:\n{statement}\n\nScore:"
)
VACUITY_TACTIC = "first | contradiction | omega | simp_all"
TRIVIAL_TACTICS = ("decide", "simp")
MATHLIB_TRIVIAL = ("norm_num",)  # a Mathlib tactic: only tried when the header imports Mathlib


class StatementChecker(LeanVerifier):
    """The Lean verifier, plus elaboration checks: items marked `extra["elaborate"]` carry a
    `:= by sorry` proof, so their verdict `sorry` means "elaborates" and `error` means it does not.
    The statement itself must still be free of escape hatches (`axiom`, `sorry`, ...)."""

    def _precheck(self, item: VerifyItem) -> Verdict | None:
        if item.extra.get("elaborate"):
            return refuse_escape_hatches(item.extra["statement"])
        return super()._precheck(item)


def needs_mathlib(header: str) -> bool:
    return bool(re.search(r"^\s*import\s+Mathlib", header, flags=re.M))


# -- generate formal ------------------------------------------------------------------------------
@dataclass
class FormalConfig:
    n_samples: int = 1
    params: SamplingParams = field(default_factory=lambda: SamplingParams(max_new_tokens=512))
    instruction: str = FORMALIZE_INSTRUCTION
    header: str = ""
    trivial_heartbeats: int = 20000
    min_quality: float | None = None  # None: no grading; else keep grades >= this (1..5)

    def fingerprint(self) -> dict[str, Any]:
        return fingerprint(self, n_samples="n", trivial_heartbeats="hb", min_quality="quality")


def statement_checks(st: Statement, header: str, heartbeats: int) -> list[tuple[str, VerifyItem]]:
    """(rejection reason, Lean item) per filter. The elaboration item is first (strict: no
    auto-bound implicits); the others reject the statement when Lean PROVES them."""
    checks = [
        (
            "does_not_elaborate",
            VerifyItem(None, st.with_proof("sorry", strict=True), {"elaborate": True, "statement": st.text}),
        )
    ]
    if st.binders:
        checks.append(
            (
                "vacuous_false_hypotheses",
                VerifyItem(None, st.theorem(f"{st.name}_vacuous", "False", VACUITY_TACTIC, heartbeats=heartbeats)),
            )
        )
    tactics = TRIVIAL_TACTICS + (MATHLIB_TRIVIAL if needs_mathlib(header) else ())
    for tac in tactics:
        checks.append(
            (
                f"trivial_closed_by_{tac}",
                VerifyItem(None, st.theorem(f"{st.name}_trivial", st.conclusion, tac, heartbeats=heartbeats)),
            )
        )
    return checks


def judge_statement(checks: list[tuple[str, VerifyItem]], verdicts: list[Verdict]) -> tuple[str | None, dict[str, Any]]:
    """(rejection reason or None, evidence: every check's verdict)."""
    evidence = {
        reason: {"status": v.status, **({"message": v.evidence["message"]} if "message" in v.evidence else {})}
        for (reason, _), v in zip(checks, verdicts)
    }
    elab = verdicts[0]
    if elab.status != "sorry":
        return "does_not_elaborate", {**evidence, "does_not_elaborate": {"status": elab.status, **elab.evidence}}
    for (reason, _), v in zip(checks[1:], verdicts[1:]):
        if v.ok:
            return reason, evidence
    return None, evidence


def parse_grade(text: str) -> int | None:
    m = re.search(r"[1-5]", text)
    return int(m.group(0)) if m else None


NL_FIELDS = [FieldSpec("problem", str), FieldSpec("id", str, required=False)]


def run_formal(
    input: str,
    mapping: dict[str, str],
    out: Path,
    engine: Engine,
    verifier: Verifier,
    config: FormalConfig,
    **run: Unpack[RunOptions],
) -> dict[str, Any]:
    """Autoformalize every problem of `input`: statements that pass every filter go to `data/`,
    the others to `rejected/` with their reason and evidence, bad rows to `errors/`."""
    return execute(
        formal_stage(mapping, engine, verifier, config, run.get("limit")),
        Target(input, Path(out), **run),
    )


def _validate_problem(mapping: dict[str, str], record: Record) -> dict[str, Any] | RowError:
    view = map_fields(record, NL_FIELDS, mapping)
    if not isinstance(view, RowError):
        view["id"] = view["id"] or f"{Path(record.source).name.split('.')[0]}-{record.row}"
    return view


def formalize_batch(engine: Engine, verifier: Verifier, config: FormalConfig, items: list[Item]) -> dict[int, Rows]:
    """Statements for a batch of problems; every check of every candidate goes into one Lean run."""
    params = config.params.with_n(config.n_samples)
    answers = engine.generate(
        [Prompt.user(config.instruction.format(problem=it.value["problem"])) for it in items], params
    )
    cands = [(it, j, c.text, parse_statement(c.text)) for it, comps in zip(items, answers) for j, c in enumerate(comps)]
    checks = [statement_checks(st, config.header, config.trivial_heartbeats) if st else [] for *_, st in cands]
    flat = verifier.verify_batch([item for group in checks for _, item in group])
    grades = _grades(engine, config, cands)
    out_rows: dict[int, Rows] = {it.index: [] for it in items}
    pos = 0
    for (it, j, text, st), group, grade in zip(cands, checks, grades):
        verdicts, pos = flat[pos : pos + len(group)], pos + len(group)
        row = {
            "id": f"{it.value['id']}/f{j}",
            "domain": "lean",
            "problem": it.value["problem"],
            "reference_answer": st.with_opens(st.text) if st else None,
            "gold_steps": [],
            "source": f"formalize:{it.value['id']}",
        }
        if st is None:
            reason, evidence = "no_statement", {"completion": text[:2000]}
        else:
            reason, evidence = judge_statement(group, verdicts)
        if reason is None and config.min_quality is not None and (grade is None or grade < config.min_quality):
            reason = "low_quality"
        meta = {"checks": evidence, "quality": grade, "header": config.header}
        if reason is None:
            out_rows[it.index].append(("data", {**row, "metadata": json.dumps(meta, ensure_ascii=False)}))
        else:
            out_rows[it.index].append(
                (
                    "rejected",
                    {
                        **row,
                        "metadata": json.dumps({"quality": grade}),
                        "reason": reason,
                        "evidence": json.dumps(evidence, ensure_ascii=False, default=str),
                    },
                )
            )
    return out_rows


def formal_stage(
    mapping: dict[str, str], engine: Engine, verifier: Verifier, config: FormalConfig, limit: int | None
) -> Stage:
    def summary(c: Counts) -> dict[str, Any]:
        return split_summary(c, {"data": "statements kept", "rejected": "rejected"}, seconds=False)

    work = Work(
        partial(_validate_problem, mapping),
        partial(formalize_batch, engine, verifier, config),
        batch_size=max(1, engine.max_batch_prompts // config.n_samples),
        description="autoformalizing",
        summary=summary,
    )
    return Stage(
        "generate-formal",
        {"data": PROBLEM_SCHEMA, "rejected": REJECTED_SCHEMA, "errors": ERROR_SCHEMA},
        key=lambda inputs: run_key("generate-formal", inputs, mapping, engine, config.fingerprint(), limit),
        work=ready(work),
    )


def _grades(engine: Engine, config: FormalConfig, cands: list) -> list[int | None]:
    """The model's 1-5 faithfulness grade per parsed statement (None when grading is off)."""
    todo = [(k, it, st) for k, (it, _, _, st) in enumerate(cands) if st is not None]
    grades: list[int | None] = [None] * len(cands)
    if config.min_quality is None or not todo:
        return grades
    prompts = [
        Prompt.user(GRADE_INSTRUCTION.format(problem=it.value["problem"], statement=st.text)) for _, it, st in todo
    ]
    replies = engine.generate(prompts, SamplingParams(1, 0.0, 1.0, 8, config.params.seed))
    for (k, _, _), reply in zip(todo, replies):
        grades[k] = parse_grade(reply[0].text)
    return grades


# -- generate proofs ------------------------------------------------------------------------------
@dataclass
class ProofsConfig:
    n_samples: int = 4
    params: SamplingParams = field(default_factory=lambda: SamplingParams(max_new_tokens=512))
    instruction: str = PROVE_INSTRUCTION
    header: str = ""
    negation: bool = True

    def fingerprint(self) -> dict[str, Any]:
        return fingerprint(self, n_samples="n")


@dataclass
class FormalTask:
    id: str
    problem: str
    statement: Statement


STATEMENT_FIELDS = [
    FieldSpec("statement", str),
    FieldSpec("id", str, required=False),
    FieldSpec("problem", str, required=False),
]


def statement_mapping(record: Record, mapping: dict[str, str]) -> dict[str, str]:
    """rsynth statement rows say `reference_answer`, miniF2F says `formal_statement` and `name`."""
    m = dict(mapping)
    for name, alternatives in (("statement", ("reference_answer", "formal_statement")), ("id", ("name",))):
        if name not in m and name not in record.data:
            m[name] = next((a for a in alternatives if a in record.data), name)
    return m


def make_statement_validator(mapping: dict[str, str], header: str):
    """Rows whose statement does not parse, or needs imports the run's header lacks, are errors."""
    have = set(split_header(header)[0])

    def validate(record: Record) -> FormalTask | RowError:
        m = statement_mapping(record, mapping)
        view = map_fields(record, STATEMENT_FIELDS, m)
        if isinstance(view, RowError):
            return view
        raw = json.dumps(record.data, ensure_ascii=False, default=str)[:2000]
        st = parse_statement(view["statement"])
        if st is None:
            return RowError(
                record.source, record.row, m.get("statement", "statement"), "no Lean theorem statement found", raw
            )
        missing = [imp for imp in split_header(view["statement"])[0] if imp not in have]
        if missing:
            return RowError(
                record.source,
                record.row,
                m.get("statement", "statement"),
                f"statement needs `{'; '.join(missing)}`: run with --header "
                f"'{chr(10).join(missing)}' and a Lean that has it (--lean-cmd 'lake env lean' --lean-cwd PROJECT)",
                raw,
            )
        tid = view["id"] or f"{Path(record.source).name.split('.')[0]}-{record.row}"
        return FormalTask(tid, view["problem"] or "", st)

    return validate


def first_error_labels(num_steps: int, verdict: Verdict) -> dict[str, Any]:
    """Tactic-level labels from the first error: tactics before it good, it bad, later unknown.

    An error before every tactic (Lean puts "unsolved goals" at `by`) means the tactics ran but
    stopped short, so the last one is blamed. Refusals before Lean ran (`sorry`, axioms) and
    empty proofs get no labels."""
    labels = empty_labels()
    if verdict.ok:
        first = -1
    elif verdict.status in ("error", "timeout") and "line" in verdict.evidence and num_steps:
        first = min(verdict.evidence.get("tactic_index", num_steps - 1), num_steps - 1)
    else:
        return labels
    hard = [True] * num_steps if first < 0 else [True] * first + [False] + [None] * (num_steps - first - 1)
    return {**labels, "label_method": "lean:first_error", "step_hard": hard, "first_error": first}


class ProofSampler:
    """A batch of statements -> proof traces; proofs and negation proofs share one Lean run."""

    def __init__(self, engine: Engine, verifier: Verifier, config: ProofsConfig) -> None:
        self.engine, self.verifier, self.config = engine, verifier, config
        self.provenance = provenance(engine, config.params.with_n(config.n_samples), verifier)

    def targets(self, task: FormalTask) -> list[Statement]:
        return [task.statement, negated(task.statement)] if self.config.negation else [task.statement]

    def __call__(self, items: list[Item]) -> dict[int, Rows]:
        c = self.config
        targets = [st for it in items for st in self.targets(it.value)]
        prompts = [Prompt.user(c.instruction.format(statement=st.with_opens(st.text))) for st in targets]
        comps = self.engine.generate(prompts, c.params.with_n(c.n_samples))
        proofs = [[(comp, extract_tactics(comp.text)) for comp in group] for group in comps]
        checks = [
            VerifyItem(st.with_opens(st.text), st.with_proof(tac) if tac.strip() else "", {})
            for st, group in zip(targets, proofs)
            for _, tac in group
        ]
        verdicts = iter(self.verifier.verify_batch(checks))
        graded = [[(comp, tac, next(verdicts)) for comp, tac in group] for group in proofs]
        out: dict[int, Rows] = {}
        per = len(self.targets(items[0].value))
        for n, it in enumerate(items):
            own, *neg = graded[n * per : (n + 1) * per]
            out[it.index] = self._rows(it.value, own, neg[0] if neg else [])
        return out

    def _rows(self, task: FormalTask, own: list, neg: list) -> Rows:
        st = task.statement
        proved = sum(v.ok for *_, v in own)
        pass_rate = proved / len(own) if own else 0.0
        refuted = next((negated(st).with_proof(tac) for _, tac, v in neg if v.ok), None)
        outcome = "negation_proved" if refuted else "proved" if proved else "unproved"
        split = "rejected" if refuted else "data"
        rows: Rows = []
        for j, (comp, tac, v) in enumerate(own):
            steps = tactic_steps(tac)
            rows.append(
                (
                    split,
                    {
                        "id": f"{task.id}/s{self.config.params.seed}/{j}",
                        "problem_id": task.id,
                        "domain": "lean",
                        "problem": task.problem or st.text,
                        "reference_answer": st.with_opens(st.text),
                        "sample_index": j,
                        "completion": st.with_proof(tac),
                        "steps": steps,
                        "final_answer": None,
                        "verdict": v.status,
                        "num_tokens": comp.num_tokens,
                        "finish_reason": comp.finish_reason,
                        "pass_rate": pass_rate,
                        "provenance": self.provenance,
                        **first_error_labels(len(steps), v),
                    },
                )
            )
        rows.append(
            (
                "statements",
                {
                    "id": task.id,
                    "statement": st.with_opens(st.text),
                    "outcome": outcome,
                    "proofs": len(own),
                    "proved": proved,
                    "pass_rate": pass_rate,
                    "negation_proofs": len(neg),
                    "negation_proved": sum(v.ok for *_, v in neg),
                    "evidence": json.dumps({"reason": "negation_proved", "negation_proof": refuted}, ensure_ascii=False)
                    if refuted
                    else None,
                },
            )
        )
        return rows


def run_proofs(
    input: str,
    mapping: dict[str, str],
    out: Path,
    engine: Engine,
    verifier: Verifier,
    config: ProofsConfig,
    *,
    batch_size: int = 64,
    **run: Unpack[RunOptions],
) -> dict[str, Any]:
    """Prove every statement of `input` (data/: proof traces, statements/: per-statement outcome,
    rejected/: traces of statements whose negation was proved, errors/: bad rows)."""
    stage = proofs_stage(mapping, engine, verifier, config, batch_size, run.get("limit"))
    return execute(stage, Target(input, Path(out), **run))


def proofs_stage(
    mapping: dict[str, str],
    engine: Engine,
    verifier: Verifier,
    config: ProofsConfig,
    batch_size: int,
    limit: int | None,
) -> Stage:
    def summary(c: Counts) -> dict[str, Any]:
        return split_summary(
            c, {"data": "proof traces", "statements": "statements", "rejected": "traces of refuted statements"}
        )

    work = Work(
        make_statement_validator(mapping, config.header),
        ProofSampler(engine, verifier, config),
        batch_size=batch_size,
        description="proving",
        summary=summary,
    )
    splits = {
        "data": TRACE_SCHEMA,
        "rejected": TRACE_SCHEMA,
        "statements": STATEMENT_OUTCOME_SCHEMA,
        "errors": ERROR_SCHEMA,
    }
    return Stage(
        "generate-proofs",
        splits,
        key=lambda inputs: run_key("generate-proofs", inputs, mapping, engine, config.fingerprint(), limit),
        work=ready(work),
    )
