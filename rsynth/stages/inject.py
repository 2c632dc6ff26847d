"""`rsynth generate injected-errors`: SPC-style traces whose first error is known by construction.

From correct, step-split solutions (`generate solutions` traces whose verdict is correct, or problems
with `gold_steps` such as `generate problems` output) one step is rewritten with an error and the
solution continued from it: by rule (`rsynth.synth.inject`: arithmetic slip, sign, swapped operand,
wrong operation; no model) or by a model asked for a subtle error and a consistent continuation.
A trace is kept only when the math verifier now calls its final answer wrong, so the error is
consequential. Its labels: the chosen step is the first error, the steps before it are correct,
later ones unknown (`label_method` injected:rule:<kind> or injected:model). With `--mc-confirm K`,
K rollouts from the prefix before and after the error give MC values (`step_mc` at those two
steps) and whether they agree with the injected label (before > 0 or at the root, after = 0).

Rows are labelled traces (the annotate-prm schema plus `mutation` and `source_trace_id`), so export,
judge, consensus and eval-labels take them as they are. `removed/` holds every attempt that was not
kept, with its reason and evidence; `skipped/` input rows that are not correct solutions.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rsynth.config import param
from rsynth.data.readers import Record, RowError
from rsynth.data.schema import ERROR_SCHEMA, TRACE_SCHEMA, empty_labels
from rsynth.engines.base import Engine, Prompt, SamplingParams
from rsynth.errors import UserError
from rsynth.runner.loop import Item, Rows
from rsynth.runner.stage import Counts, RunOptions, Stage, Target, Work, execute, split_summary, with_counts
from rsynth.stages.run_key import digest
from rsynth.steps import join_steps
from rsynth.synth.inject import MUTATIONS, inject, model_prompt, parse_model_rewrite
from rsynth.verifiers.base import VerifyItem

if TYPE_CHECKING:
    from typing_extensions import Unpack

METHODS = ("rule", "model")
INJECTED_SCHEMA = pa.schema([*TRACE_SCHEMA, ("mutation", pa.string()), ("source_trace_id", pa.string())])
REMOVED_SCHEMA = pa.schema(
    [("id", pa.string()), ("source_trace_id", pa.string()), ("reason", pa.string()), ("evidence", pa.string())]
)


@dataclass
class InjectParams:
    """`generate injected-errors` parameters (CLI options and `inject-errors` recipe keys)."""

    method: str = param(
        "rule",
        "--method",
        "rule: arithmetic slip / sign / swapped operand / wrong operation, no model | model: "
        "the model rewrites a step with a subtle error and continues.",
        choices=METHODS,
    )
    mutations: str = param(",".join(MUTATIONS), "--mutations", "rule: mutation kinds to draw from, comma-separated.")
    per_trace: int = param(
        1, "--per-trace", "Injection attempts per correct solution (each a different step or mutation)."
    )
    mc_confirm: int = param(
        0,
        "--mc-confirm",
        "K rollouts from the prefix before and after the error to confirm the label (needs a model); 0: off.",
    )
    keep_correct: bool = param(
        False,
        "--keep-correct",
        "Also write each source solution as an all-correct trace (label -1), for critic data with both kinds.",
    )
    verify_timeout: float = param(5.0, "--verify-timeout", "Seconds per answer check.")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        self.kinds = tuple(k.strip() for k in self.mutations.split(",") if k.strip())
        if not self.kinds or any(k not in MUTATIONS for k in self.kinds):
            raise UserError(
                f"--mutations {self.mutations!r}: expected a comma-separated subset of {', '.join(MUTATIONS)}"
            )
        if self.per_trace < 1 or self.mc_confirm < 0:
            raise UserError("--per-trace must be >= 1 and --mc-confirm >= 0")

    def needs_engine(self) -> bool:
        return self.method == "model" or self.mc_confirm > 0


@dataclass
class Source:
    id: str
    problem: str
    reference: str
    steps: list[str]
    row: dict[str, Any]


def validate(record: Record) -> Source | tuple[str, str] | RowError:
    """A correct solution to inject into; (id, why not) for a row that is not one; RowError if unreadable."""
    d = record.data
    rid = str(d.get("id") or f"{Path(record.source).name.split('.')[0]}-{record.row}")
    problem, reference = d.get("problem"), d.get("reference_answer", d.get("answer"))
    if not isinstance(problem, str) or reference is None:
        return RowError.of(record, "needs problem and reference_answer (a trace or a problem row)", "problem")
    steps = d.get("steps") if d.get("steps") else d.get("gold_steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        return rid, "no steps (steps or gold_steps)"
    if d.get("steps") and d.get("verdict") not in (None, "correct"):
        return rid, f"not a correct solution (verdict {d.get('verdict')})"
    return Source(rid, problem, str(reference), list(steps), d)


def _labels(n: int, first_error: int, method: str) -> dict[str, Any]:
    hard = [True] * n if first_error < 0 else [True] * first_error + [False] + [None] * (n - first_error - 1)
    return {**empty_labels(), "label_method": method, "step_hard": hard, "first_error": first_error}


class Injector:
    """A batch of correct solutions -> injected traces, checked by the math verifier."""

    def __init__(self, params: InjectParams, engine: Engine | None, verifier: Any, sampling: SamplingParams) -> None:
        self.p, self.engine, self.verifier, self.sampling = params, engine, verifier, sampling
        self.counts: Counter[str] = Counter()

    def __call__(self, items: list[Item]) -> dict[int, Rows]:
        out: dict[int, Rows] = {it.index: [] for it in items}
        attempts: list[tuple[int, Source, int, list[str] | None, dict[str, Any]]] = []
        model_plan: list[tuple[int, Source, int, int]] = []
        for it in items:
            if not isinstance(it.value, Source):
                rid, why = it.value
                out[it.index].append(("skipped", {"id": rid, "source_trace_id": rid, "reason": why, "evidence": None}))
                continue
            src: Source = it.value
            self.counts["correct solutions"] += 1
            if self.p.keep_correct:
                out[it.index].append(
                    (
                        "data",
                        self._row(src, f"{src.id}/orig", src.steps, _labels(len(src.steps), -1, "given:correct"), None),
                    )
                )
            for a in range(self.p.per_trace):
                rng = random.Random(f"{self.sampling.seed}/{src.id}/{a}")
                if self.p.method == "rule":
                    got = inject(src.steps, rng, self.p.kinds)
                    attempts.append(
                        (
                            it.index,
                            src,
                            a,
                            got[0] if got else None,
                            asdict(got[1]) if got else {"reason": "no_mutable_step"},
                        )
                    )
                else:
                    model_plan.append((it.index, src, a, rng.randrange(max(len(src.steps) - 1, 1))))
        attempts += self._model_attempts(model_plan)
        self._finish(attempts, out)
        return out

    def _model_attempts(
        self, plan: list[tuple[int, Source, int, int]]
    ) -> list[tuple[int, Source, int, list[str] | None, dict[str, Any]]]:
        if not plan:
            return []
        assert self.engine is not None
        replies = self.engine.generate(
            [Prompt.user(model_prompt(s.problem, s.steps, k)) for _, s, _, k in plan], self.sampling.with_n(1)
        )
        out = []
        for (index, src, a, k), group in zip(plan, replies):
            text = group[0].text if group else ""
            steps = parse_model_rewrite(text, src.steps, k)
            info = {"step": k, "kind": "model", "original": src.steps[k], "rewritten": steps[k] if steps else None}
            out.append(
                (index, src, a, steps, info if steps else {"reason": "model_reply_unparsed", "reply": text[:2000]})
            )
        return out

    def _finish(
        self, attempts: list[tuple[int, Source, int, list[str] | None, dict[str, Any]]], out: dict[int, Rows]
    ) -> None:
        from rsynth.answers import extract_answer

        answers = [extract_answer(join_steps(steps)) if steps else None for *_, steps, _ in attempts]
        todo = [i for i, (a, att) in enumerate(zip(answers, attempts)) if a is not None]
        verdicts = dict(
            zip(todo, self.verifier.verify_batch([VerifyItem(attempts[i][1].reference, answers[i]) for i in todo]))
        )
        kept = []
        for i, (index, src, a, steps, info) in enumerate(attempts):
            tid = f"{src.id}/inj{self.sampling.seed}-{a}"
            if steps is None:
                out[index].append(
                    (
                        "removed",
                        {
                            "id": tid,
                            "source_trace_id": src.id,
                            "reason": info["reason"],
                            "evidence": json.dumps(info, ensure_ascii=False),
                        },
                    )
                )
                self.counts[f"removed: {info['reason']}"] += 1
                continue
            v = verdicts.get(i)
            if v is None or v.ok or v.status != "incorrect":
                reason = (
                    "no_final_answer" if v is None else "final_answer_still_correct" if v.ok else f"answer_{v.status}"
                )
                out[index].append(
                    (
                        "removed",
                        {
                            "id": tid,
                            "source_trace_id": src.id,
                            "reason": reason,
                            "evidence": json.dumps({**info, "final_answer": answers[i]}, ensure_ascii=False),
                        },
                    )
                )
                self.counts[f"removed: {reason}"] += 1
                continue
            method = f"injected:rule:{info['kind']}" if self.p.method == "rule" else "injected:model"
            row = self._row(src, tid, steps, _labels(len(steps), info["step"], method), info, answers[i], v.status)
            kept.append((index, row))
            self.counts[f"kept: {method}"] += 1
        if self.p.mc_confirm:
            self._confirm([row for _, row in kept])
        for index, row in kept:
            out[index].append(("data", row))

    def _confirm(self, rows: list[dict[str, Any]]) -> None:
        """MC values of the prefix before and after the injected step; agreement recorded in `mutation`."""
        from rsynth.stages.domains import MathChecker
        from rsynth.stages.problem import DEFAULT_INSTRUCTION

        assert self.engine is not None
        checker, k = MathChecker(DEFAULT_INSTRUCTION), self.p.mc_confirm
        prefixes = [(r, tuple(r["steps"][: r["first_error"] + d])) for r in rows for d in (0, 1)]
        replies = self.engine.generate(
            [checker.prompt(r["problem"], r["reference_answer"], p) for r, p in prefixes], self.sampling.with_n(k)
        )
        items, owners = [], []
        for j, ((r, p), group) in enumerate(zip(prefixes, replies)):
            for c in group:
                item, answer = checker.check(r["reference_answer"], p, c.text)
                if answer is not None:
                    items.append(item)
                    owners.append(j)
        correct = Counter(j for j, v in zip(owners, self.verifier.verify_batch(items)) if v.ok)
        for n, r in enumerate(rows):
            before, after = correct[2 * n] / k, correct[2 * n + 1] / k
            e = r["first_error"]
            mc, ks, right = [None] * len(r["steps"]), [None] * len(r["steps"]), [None] * len(r["steps"])
            if e > 0:
                mc[e - 1], ks[e - 1], right[e - 1] = before, k, correct[2 * n]
            mc[e], ks[e], right[e] = after, k, correct[2 * n + 1]
            agrees = after == 0 and (before > 0 or e == 0)
            r.update(step_mc=mc, step_k=ks, step_correct=right)
            r["mutation"] = json.dumps(
                {**json.loads(r["mutation"]), "mc_before": before, "mc_after": after, "k": k, "mc_agrees": agrees}
            )
            self.counts["MC confirmations"] += 1
            self.counts["MC agrees with the injected first error"] += agrees

    def _row(
        self,
        src: Source,
        tid: str,
        steps: list[str],
        labels: dict[str, Any],
        info: dict[str, Any] | None,
        answer: str | None = None,
        verdict: str = "correct",
    ) -> dict[str, Any]:
        prov = src.row.get("provenance") if isinstance(src.row.get("provenance"), dict) else None
        return {
            "id": tid,
            "problem_id": src.row.get("problem_id") or src.id,
            "domain": "math",
            "problem": src.problem,
            "reference_answer": src.reference,
            "sample_index": src.row.get("sample_index") or 0,
            "completion": join_steps(steps),
            "steps": steps,
            "final_answer": answer if info else src.row.get("final_answer"),
            "verdict": verdict,
            "num_tokens": None,
            "finish_reason": None,
            "pass_rate": None,
            "provenance": prov,
            **labels,
            "mutation": json.dumps(info, ensure_ascii=False) if info else None,
            "source_trace_id": src.id,
        }


def inject_stage(
    params: InjectParams, engine: Engine | None, sampling: SamplingParams, limit: int | None, batch_size: int = 64
) -> Stage:
    counts: Counter[str] = Counter()

    @contextmanager
    def work() -> Iterator[Work]:
        from rsynth.verifiers.math import MathVerifier

        with MathVerifier(timeout=params.verify_timeout) as verifier:
            injector = Injector(params, engine, verifier, sampling)
            injector.counts = counts

            def summary(c: Counts) -> dict[str, Any]:
                labels = {"data": "injected traces", "removed": "attempts not kept", "skipped": "not correct solutions"}
                return with_counts(c, counts, split_summary(c, labels, seconds=False))

            yield Work(
                validate,
                injector,
                batch_size=batch_size,
                description=f"injecting errors ({params.method})",
                summary=summary,
                checkpoint_stats=True,
            )

    def key(inputs: str) -> str:
        ident = engine.identity() if engine is not None and params.needs_engine() else None
        return digest(["inject", inputs, asdict(params), sampling.provenance(), sampling.seed, ident, limit])

    splits = {"data": INJECTED_SCHEMA, "removed": REMOVED_SCHEMA, "skipped": REMOVED_SCHEMA, "errors": ERROR_SCHEMA}
    return Stage("generate-injected-errors", splits, key=key, work=work)


def run_inject(
    input: str,
    out: Path,
    params: InjectParams,
    sampling: SamplingParams,
    engine: Engine | None = None,
    **run: Unpack[RunOptions],
) -> dict[str, Any]:
    """Inject errors into every correct solution of `input` (see the module docstring for the splits)."""
    if params.needs_engine() and engine is None:
        raise UserError("--method model and --mc-confirm need a model")
    return execute(
        inject_stage(params, engine, sampling, run.get("limit")),
        Target(input, Path(out), **run),
    )
