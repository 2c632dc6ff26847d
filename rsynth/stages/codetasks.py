"""`rsynth generate code-tasks`: Absolute Zero's deduction, abduction and induction tasks, every
program run in the sandbox.

Programs come from seed rows (HumanEval / MBPP+ canonical solutions, `generate code` output, or any
row with `program`/`entry_point`/`inputs`), or, with `--programs propose`, from the model, shown K
reference programs from the input (Absolute Zero's proposer). A program is *valid* when it parses,
defines its entry point, uses no forbidden module or call (`rsynth.synth.codetasks`), and returns
the same literal outputs on two separate sandbox runs within the limits. Each valid program gives up
to three tasks; each task's gold answer is checked by running it like a solver's answer would be.
With `--solver-model`, n solver attempts per task are run in the sandbox too: the solve rate is
recorded and `--keep-solve-rate LO:HI` keeps the learnable tasks (the rest go to `filtered/`).

Splits: `data/` tasks, `attempts/` solver attempts (each row is what `rsynth verify code --style io
--field code=candidate` checks), `rejected/` invalid seeds or proposals with the reason and the
evidence, `filtered/` tasks outside the solve-rate range, `errors/` unreadable rows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rsynth.data.readers import Record, RowError
from rsynth.data.schema import ERROR_SCHEMA
from rsynth.engines.base import Engine, Prompt, SamplingParams
from rsynth.errors import UserError
from rsynth.runner.loop import Item, Rows
from rsynth.runner.stage import Counts, RunOptions, Stage, Target, Work, execute, split_summary, with_counts
from rsynth.stages.codetasks_params import CodeTasksParams
from rsynth.stages.run_key import digest
from rsynth.synth.codetasks import (
    CASE_FN,
    NotALiteral,
    Seed,
    Task,
    answer_text,
    args_text,
    candidate,
    literal_text,
    make_tasks,
    parse_proposal,
    probe_program,
    propose_prompt,
    read_literal,
    safety_problem,
    seed_from_row,
)
from rsynth.verifiers.base import Verdict, VerifyItem

if TYPE_CHECKING:
    from typing_extensions import Unpack

CODE_TASK_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("domain", pa.string()),
        ("task_type", pa.string()),
        ("problem", pa.string()),
        ("answer", pa.string()),  # gold: output literal (deduction), argument list (abduction), program (induction)
        ("tests", pa.string()),
        ("entry_point", pa.string()),  # the io spec and function `verify code --style io` runs
        ("reference_answer", pa.string()),  # the same as one generate-code TestSpec JSON (tests, style io, entry_point)
        ("program", pa.string()),
        ("function", pa.string()),
        ("inputs", pa.list_(pa.string())),
        ("outputs", pa.list_(pa.string())),
        ("held_out_inputs", pa.list_(pa.string())),
        ("message", pa.string()),
        ("seed_id", pa.string()),
        ("source", pa.string()),
        ("solver_attempts", pa.int64()),
        ("solver_correct", pa.int64()),
        ("solve_rate", pa.float64()),
        ("reason", pa.string()),
    ]
)
ATTEMPT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task_id", pa.string()),
        ("task_type", pa.string()),
        ("attempt", pa.int64()),
        ("reply", pa.string()),
        ("answer", pa.string()),
        ("code", pa.string()),
        ("tests", pa.string()),
        ("entry_point", pa.string()),
        ("verdict", pa.string()),
        ("ok", pa.bool_()),
    ]
)
REJECTED_SEED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("program", pa.string()),
        ("entry_point", pa.string()),
        ("inputs", pa.list_(pa.string())),
        ("reason", pa.string()),
        ("evidence", pa.string()),
    ]
)


def seed_validator(max_inputs: int):
    """Record -> its Seed, or (why it holds none, the row) for rejected/."""

    def validate(record: Record) -> Seed | tuple[str, dict[str, Any]] | RowError:
        got = seed_from_row(record.data, f"{Path(record.source).name.split('.')[0]}-{record.row}", max_inputs)
        return got if isinstance(got, Seed) else (got, record.data)

    return validate


class TaskMaker:
    """A batch of input rows -> programs (seeds or proposals) -> valid programs -> tasks -> solve rates."""

    def __init__(
        self,
        params: CodeTasksParams,
        proposer: Engine | None,
        solver: Engine | None,
        verifier: Any,
        sampling: SamplingParams,
    ) -> None:
        self.p, self.proposer, self.solver, self.verifier, self.sampling = params, proposer, solver, verifier, sampling
        self.counts: Counter[str] = Counter()

    def __call__(self, items: list[Item]) -> dict[int, Rows]:
        out: dict[int, Rows] = {it.index: [] for it in items}
        seeds: list[tuple[int, Seed]] = []
        library = [it.value for it in items if isinstance(it.value, Seed)]
        for it in items:
            if not isinstance(it.value, Seed):
                reason, row = it.value
                out[it.index].append(
                    (
                        "rejected",
                        {
                            "id": str(row.get("task_id") or row.get("id") or it.record.row),
                            "source": "seed",
                            "reason": f"no_seed: {reason}",
                            "evidence": json.dumps({"row": it.record.row}),
                        },
                    )
                )
                self.counts["input rows without a program"] += 1
            elif self.p.programs == "seeds":
                seeds.append((it.index, it.value))
        if self.p.programs == "propose":
            seeds += self._propose(items, library, out)
        for index, task_rows in self._validate_and_make(seeds).items():
            out[index] += task_rows
        return out

    # -- proposals --------------------------------------------------------------------------------
    def _propose(self, items: list[Item], library: list[Seed], out: dict[int, Rows]) -> list[tuple[int, Seed]]:
        assert self.proposer is not None
        todo = [(it.index, it.value) for it in items if isinstance(it.value, Seed)]
        if not todo:
            return []
        prompts = []
        for j, (_, seed) in enumerate(todo):  # this row's program and the next K-1 of the batch
            refs = [seed] + [library[(j + d) % len(library)] for d in range(1, min(self.p.references, len(library)))]
            prompts.append(Prompt.user(propose_prompt(refs, self.p.max_inputs)))
        replies = self.proposer.generate(prompts, self.sampling.with_n(self.p.proposals))
        found = []
        for (index, seed), group in zip(todo, replies):
            for k, comp in enumerate(group):
                self.counts["proposer calls"] += 1
                got = parse_proposal(comp.text, f"{seed.id}/p{self.sampling.seed}/{k}", self.p.max_inputs)
                if isinstance(got, str):
                    out[index].append(
                        (
                            "rejected",
                            {
                                "id": f"{seed.id}/p{self.sampling.seed}/{k}",
                                "source": "proposed",
                                "reason": got,
                                "evidence": json.dumps({"reply": comp.text[:2000]}),
                            },
                        )
                    )
                    self.counts[f"proposals rejected: {got}"] += 1
                else:
                    found.append((index, got))
        return found

    # -- validity ---------------------------------------------------------------------------------
    def _validate_and_make(self, seeds: list[tuple[int, Seed]]) -> dict[int, Rows]:
        out: dict[int, Rows] = {}
        runnable: list[tuple[int, Seed, str]] = []
        for index, seed in seeds:
            problem = safety_problem(seed.program, seed.entry_point)
            if problem:
                out.setdefault(index, []).append(
                    ("rejected", self._rejected(seed, problem.split(":")[0], {"detail": problem}))
                )
            else:
                runnable.append((index, seed, probe_program(seed.program, seed.entry_point, seed.inputs)))
        cases = [[[i] for i in range(len(s.inputs))] for _, s, _ in runnable]
        jobs = [(probe, CASE_FN, c) for (_, _, probe), c in zip(runnable, cases)]
        # two independent runs, the second under another str hash seed: outputs must not depend on either
        firsts, seconds = self.verifier.run_outputs(jobs), self.verifier.run_outputs(jobs, hash_seed=1)
        valid: list[tuple[int, Seed, list[str]]] = []
        for (index, seed, _), first, second in zip(runnable, firsts, seconds):
            reason, evidence = self._check_outputs(first, second)
            if reason:
                out.setdefault(index, []).append(("rejected", self._rejected(seed, reason, evidence)))
            else:
                valid.append((index, seed, first))
                self.counts[f"valid programs ({seed.source})"] += 1
        tasks = [
            (index, seed, outputs, t)
            for index, seed, outputs in valid
            for t in make_tasks(seed, outputs, self.p.type_list, self.sampling.seed)
        ]
        for index, rows in self._solve(tasks).items():
            out.setdefault(index, []).extend(rows)
        return out

    @staticmethod
    def _check_outputs(first: list[str] | str, second: list[str] | str) -> tuple[str | None, dict[str, Any]]:
        if isinstance(first, str) or isinstance(second, str):
            return "run_failed", {"why": first if isinstance(first, str) else second}
        if first != second:
            return "nondeterministic", {"first": [o[:200] for o in first], "second": [o[:200] for o in second]}
        for o in first:
            try:
                if literal_text(read_literal(o)) != o:
                    return "output_not_literal", {"output": o[:300]}
            except NotALiteral as exc:
                return "output_not_literal", {"output": o[:300], "why": str(exc)}
            if len(o) > 300:
                return "output_too_long", {"chars": len(o)}
        return None, {}

    def _rejected(self, seed: Seed, reason: str, evidence: dict[str, Any]) -> dict[str, Any]:
        self.counts[f"programs rejected: {reason}"] += 1
        return {
            "id": seed.id,
            "source": seed.source,
            "program": seed.program,
            "entry_point": seed.entry_point,
            "inputs": [args_text(a) for a in seed.inputs],
            "reason": reason,
            "evidence": json.dumps(evidence, ensure_ascii=False),
        }

    # -- answers: gold checked by execution, solver attempts ---------------------------------------
    def _solve(self, tasks: list[tuple[int, Seed, list[str], Task]]) -> dict[int, Rows]:
        n = self.p.solver_attempts if self.solver is not None else 0
        replies = (
            self.solver.generate([Prompt.user(t.prompt) for *_, t in tasks], self.sampling.with_n(n))
            if n and tasks
            else [[] for _ in tasks]
        )
        plan: list[VerifyItem | None] = []
        for (_, seed, _, task), group in zip(tasks, replies):
            held = [a for a, _ in task.held_out]
            for text in [task.answer] + [answer_text(task.type, c.text) for c in group]:
                program = candidate(task.type, text, seed.program, seed.entry_point, held)
                plan.append(
                    None
                    if program is None
                    else VerifyItem(task.tests, program, {"style": "io", "entry_point": CASE_FN})
                )
        verdicts = iter(self._verify(plan))
        out: dict[int, Rows] = {}
        for (index, seed, outputs, task), group in zip(tasks, replies):
            gold = next(verdicts)
            attempts = [(c, next(verdicts)) for c in group]
            tid = f"{seed.id}/{task.type}"
            row = self._task_row(tid, seed, outputs, task)
            if not gold.ok:  # the task's own answer fails its check: never a task
                self.counts["tasks whose gold answer fails"] += 1
                out.setdefault(index, []).append(
                    ("rejected", self._rejected(seed, "gold_answer_fails", {"task": task.type, **gold.evidence}))
                )
                continue
            rows = out.setdefault(index, [])
            for j, (comp, v) in enumerate(attempts):
                text = answer_text(task.type, comp.text)
                program = candidate(task.type, text, seed.program, seed.entry_point, [a for a, _ in task.held_out])
                rows.append(
                    (
                        "attempts",
                        {
                            "id": f"{tid}/a{j}",
                            "task_id": tid,
                            "task_type": task.type,
                            "attempt": j,
                            "reply": comp.text,
                            "answer": text,
                            "code": program,
                            "tests": task.tests,
                            "entry_point": CASE_FN,
                            "verdict": v.status,
                            "ok": v.ok,
                        },
                    )
                )
            if attempts:
                correct = sum(v.ok for _, v in attempts)
                row.update(solver_attempts=len(attempts), solver_correct=correct, solve_rate=correct / len(attempts))
            lo_hi = self.p.solve_range
            kept = lo_hi is None or lo_hi[0] <= row["solve_rate"] <= lo_hi[1]
            self.counts[f"{task.type} tasks {'kept' if kept else 'filtered'}"] += 1
            rows.append(("data", row) if kept else ("filtered", {**row, "reason": "solve_rate_out_of_range"}))
        return out

    def _verify(self, plan: list[VerifyItem | None]) -> list[Verdict]:
        ran = iter(self.verifier.verify_batch([p for p in plan if p is not None]))
        return [
            Verdict("unparseable", False, {"reason": "the answer is not a literal / argument list / program"})
            if p is None
            else next(ran)
            for p in plan
        ]

    @staticmethod
    def _task_row(tid: str, seed: Seed, outputs: list[str], task: Task) -> dict[str, Any]:
        spec = json.dumps({"tests": task.tests, "style": "io", "entry_point": CASE_FN}, ensure_ascii=False)
        return {
            "id": tid,
            "domain": "code",
            "task_type": task.type,
            "problem": task.prompt,
            "answer": task.answer,
            "tests": task.tests,
            "entry_point": CASE_FN,
            "reference_answer": spec,
            "program": seed.program,
            "function": seed.entry_point,
            "inputs": [args_text(a) for a in seed.inputs],
            "outputs": outputs,
            "held_out_inputs": [a for a, _ in task.held_out],
            "message": seed.message,
            "seed_id": seed.id,
            "source": seed.source,
            "solver_attempts": None,
            "solver_correct": None,
            "solve_rate": None,
            "reason": None,
        }


def code_tasks_stage(
    params: CodeTasksParams,
    sampling: SamplingParams,
    proposer: Engine | None,
    solver: Engine | None,
    limit: int | None,
    batch_size: int = 16,
) -> Stage:
    """The `generate code-tasks` stage; the sandbox opens only when there is work to do."""
    counts = TaskMaker(params, proposer, solver, None, sampling).counts

    @contextmanager
    def work() -> Iterator[Work]:
        from rsynth.stages.domains import code_verifier

        with code_verifier(params.verify_timeout, params.workers, params.sandbox) as verifier:
            maker = TaskMaker(params, proposer, solver, verifier, sampling)
            maker.counts = counts

            def summary(c: Counts) -> dict[str, Any]:
                labels = {
                    "data": "tasks",
                    "attempts": "solver attempts",
                    "rejected": "rejected programs",
                    "filtered": "tasks outside the solve-rate range",
                }
                return with_counts(c, counts, split_summary(c, labels, seconds=False))

            yield Work(
                seed_validator(params.max_inputs),
                maker,
                batch_size=batch_size,
                description="making code tasks",
                summary=summary,
                checkpoint_stats=True,
            )

    def key(inputs: str) -> str:
        ident = [getattr(e, "identity", lambda: None)() if e is not None else None for e in (proposer, solver)]
        return digest(["code-tasks", inputs, params.fingerprint(), sampling.provenance(), sampling.seed, ident, limit])

    splits = {
        "data": CODE_TASK_SCHEMA,
        "attempts": ATTEMPT_SCHEMA,
        "rejected": REJECTED_SEED_SCHEMA,
        "filtered": CODE_TASK_SCHEMA,
        "errors": ERROR_SCHEMA,
    }
    return Stage("generate-code-tasks", splits, key=key, work=work)


def run_code_tasks(
    input: str,
    out: Path,
    params: CodeTasksParams,
    sampling: SamplingParams,
    proposer: Engine | None = None,
    solver: Engine | None = None,
    **run: Unpack[RunOptions],
) -> dict[str, Any]:
    """Make code tasks from every row of `input` into `out` (see the module docstring for the splits)."""
    if params.programs == "propose" and proposer is None:
        raise UserError("--programs propose needs a model to propose programs")
    return execute(
        code_tasks_stage(params, sampling, proposer, solver, run.get("limit")),
        Target(input, Path(out), **run),
    )
