"""`generate solutions`: N sampled step-by-step solutions per problem, split, extracted, verified.

Every sample is kept as a trace row (`data`), or, when its problem's pass rate falls outside
`--keep-pass-rate`, as a `filtered` row whose `pass_rate` is the evidence: nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsynth.answers import DEFAULT_ANSWER_FALLBACK, NO_ANSWER
from rsynth.config import fingerprint
from rsynth.data.readers import SOURCE_REF, Record, RowError
from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams
from rsynth.runner.loop import Item, Rows
from rsynth.runner.stage import Counts, RunOptions, Stage, Target, Work, execute
from rsynth.stages.problem import DEFAULT_INSTRUCTION, final_answer, read_problem
from rsynth.stages.provenance import provenance
from rsynth.stages.run_key import run_key
from rsynth.steps import split_steps
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem

if TYPE_CHECKING:
    from typing_extensions import Unpack


@dataclass
class SolutionsConfig:
    n_samples: int = 4
    params: SamplingParams = field(default_factory=SamplingParams)
    instruction: str = DEFAULT_INSTRUCTION
    split_mode: str = "auto"
    pass_rate_range: tuple[float, float] | None = None
    answer_fallback: str = DEFAULT_ANSWER_FALLBACK  # answer extraction chain, shared with annotate-prm

    def fingerprint(self) -> dict[str, Any]:
        return fingerprint(self, n_samples="n", split_mode="split", pass_rate_range="keep", answer_fallback="answer")


@dataclass
class Problem:
    id: str
    problem: str
    answer: str
    source_ref: str | None = None  # FILE@SHA8:ROW of the input row (readers.source_ref)


def validate_problem(record: Record, mapping: dict[str, str]) -> Problem | RowError:
    view = read_problem(record, mapping)
    return (
        view if isinstance(view, RowError) else Problem(view["id"], view["problem"], view["answer"], view[SOURCE_REF])
    )


def trace_id(problem_id: str, sample: int, seed: int) -> str:
    return f"{problem_id}/s{seed}/{sample}"


class SolutionSampler:
    """Turns a batch of problems into trace rows: one engine call with n samples per prompt."""

    def __init__(self, engine: Engine, verifier: Verifier, config: SolutionsConfig) -> None:
        self.engine = engine
        self.verifier = verifier
        self.config = config
        self.stats = {"problems": 0, "traces": 0, "correct": 0, "filtered": 0, "generated_tokens": 0, "no_answer": 0}
        self.provenance = provenance(engine, config.params.with_n(config.n_samples), verifier)

    def prompt(self, problem: Problem) -> Prompt:
        return Prompt.user(self.config.instruction.format(problem=problem.problem))

    def __call__(self, items: list[Item]) -> dict[int, Rows]:
        params = self.config.params.with_n(self.config.n_samples)
        completions = self.engine.generate([self.prompt(it.value) for it in items], params)
        answers = [
            final_answer(c.text, self.config.answer_fallback, c.finish_reason) for comps in completions for c in comps
        ]
        return self._rows(items, completions, answers, self.verify(items, completions, answers))

    def verify(
        self, items: list[Item], completions: list[list[Completion]], answers: list[str | None]
    ) -> list[Verdict]:
        """One verdict per completion; a completion with no extracted answer is `no_answer` (never
        sent to the verifier), kept apart from wrong ones as in annotate-prm."""
        refs = [it.value.answer for it, comps in zip(items, completions) for _ in comps]
        todo = [i for i, a in enumerate(answers) if a is not None]
        done = dict(zip(todo, self.verifier.verify_batch([VerifyItem(refs[i], answers[i]) for i in todo])))
        return [
            done.get(i) or Verdict(NO_ANSWER, False, {"reason": "no answer rule matched"}) for i in range(len(answers))
        ]

    def _rows(
        self, items: list[Item], completions: list[list[Completion]], answers: list[str | None], verdicts: list[Verdict]
    ) -> dict[int, Rows]:
        out: dict[int, Rows] = {}
        v, a = iter(verdicts), iter(answers)
        lo_hi = self.config.pass_rate_range
        for it, comps in zip(items, completions):
            p: Problem = it.value
            batch = [(c, next(v), next(a)) for c in comps]
            pass_rate = sum(vd.ok for _, vd, _ in batch) / len(batch) if batch else 0.0
            keep = lo_hi is None or lo_hi[0] <= pass_rate <= lo_hi[1]
            rows: Rows = []
            for j, (c, vd, ans) in enumerate(batch):
                rows.append(("data" if keep else "filtered", self._trace_row(p, j, c, vd, ans, pass_rate)))
                self.stats["generated_tokens"] += c.num_tokens
                self.stats["correct"] += int(vd.ok)
                self.stats["no_answer"] += ans is None
            self.stats["problems"] += 1
            self.stats["traces" if keep else "filtered"] += len(batch)
            out[it.index] = rows
        return out

    def _trace_row(
        self, p: Problem, j: int, c: Completion, vd: Verdict, answer: str | None, pass_rate: float
    ) -> dict[str, Any]:
        return {
            "id": trace_id(p.id, j, self.config.params.seed),
            "problem_id": p.id,
            "domain": "math",
            "problem": p.problem,
            "reference_answer": p.answer,
            "sample_index": j,
            "completion": c.text,
            "steps": split_steps(c.text, self.config.split_mode),
            "final_answer": answer,
            "verdict": vd.status,
            "num_tokens": c.num_tokens,
            "finish_reason": c.finish_reason,
            "pass_rate": pass_rate,
            "provenance": self.provenance,
            SOURCE_REF: p.source_ref,
        }


def plan_solutions(input: str, mapping: dict[str, str], config: SolutionsConfig, limit: int | None) -> dict[str, Any]:
    """What a run would do: valid and bad input rows, and how many samples it would draw."""
    from rsynth.data.readers import plan_rows

    plan = plan_rows(input, lambda rec: validate_problem(rec, mapping), limit)
    valid = plan.pop("valid rows")
    return {"valid problems": valid, **plan, "samples to draw": valid * config.n_samples}


def run_solutions(
    input: str,
    mapping: dict[str, str],
    out,
    engine: Engine,
    config: SolutionsConfig,
    *,
    verify_timeout: float = 5.0,
    **run: Unpack[RunOptions],
) -> dict[str, Any]:
    """Run `generate solutions` into `out`, resuming a killed run of the same command."""
    target = Target(input, Path(out), **run)
    return execute(solutions_stage(mapping, engine, config, verify_timeout, run.get("limit")), target)


def solutions_stage(
    mapping: dict[str, str], engine: Engine, config: SolutionsConfig, verify_timeout: float, limit: int | None
) -> Stage:
    from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA
    from rsynth.engines.cache import usage, usage_since
    from rsynth.verifiers.math import MathVerifier

    @contextmanager
    def work() -> Iterator[Work]:
        with MathVerifier(timeout=verify_timeout) as verifier:
            sampler = SolutionSampler(engine, verifier, config)
            used0 = usage(engine)

            def summary(c: Counts) -> dict[str, Any]:
                s = sampler.stats
                drawn = s["traces"] + s["filtered"]
                return {
                    "input rows": c.seen,
                    "traces (data/)": c.rows["data"],
                    "filtered by pass rate (filtered/)": c.rows["filtered"],
                    "bad input rows (errors/)": c.rows["errors"],
                    "problems processed this run": s["problems"],
                    **usage_since(engine, used0),
                    "share correct this run": s["correct"] / drawn if drawn else 0.0,
                    "no-answer rate this run": s["no_answer"] / drawn if drawn else 0.0,
                    "generated tokens this run": s["generated_tokens"],
                    "tokens/s end-to-end": s["generated_tokens"] / c.seconds if c.seconds > 0 else 0.0,
                }

            yield Work(
                lambda r: validate_problem(r, mapping),
                sampler,
                batch_size=max(1, engine.max_batch_prompts // config.n_samples),
                description="sampling solutions",
                summary=summary,
            )

    return Stage(
        "generate-solutions",
        {"data": TRACE_SCHEMA, "filtered": TRACE_SCHEMA, "errors": ERROR_SCHEMA},
        key=lambda inputs: run_key("generate-solutions", inputs, mapping, engine, config.fingerprint(), limit),
        work=work,
    )
