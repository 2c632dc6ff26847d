"""`generate code`: sample programs for tasks with tests, run them in the sandbox, label lines.

Task shapes read as they are: HumanEval (`prompt`, `test` with `def check`, `entry_point`),
MBPP+ (`prompt`, `entry_point`, `canonical_solution`, `base_input` + `plus_input`: the "evalplus"
test style, as evalplus runs them; `assertion` alone where there are no inputs), rsynth code tasks (`problem`, `reference_answer` = a
JSON `TestSpec`), or any file with `--field`. A task's tests travel as one JSON `TestSpec` in
`reference_answer`, so traces stay self-contained and annotate-prm can re-run them.

- Tasks without tests (`--synthesize-tests`): the model writes `assert` lines, each is run
  against the task's reference solution, and only those it passes are kept.
- `--mutation-labels M`: up to M single-line mutants of each passing sample are run; a failing
  mutant's changed line is its first error (lines before it good), a passing one is all good.

A trace's steps (and `completion`) are the lines the model wrote; the task prompt (imports,
signature, docstring) is context carried in the spec (`TestSpec.context`), never a labelled step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsynth.config import fingerprint
from rsynth.data.readers import SOURCE_REF, FieldSpec, Record, RowError, map_fields, source_ref
from rsynth.data.schema import ERROR_SCHEMA, PROBLEM_SCHEMA, REJECTED_SCHEMA, TRACE_SCHEMA, empty_labels
from rsynth.engines.base import Completion, Engine, Prompt, SamplingParams
from rsynth.runner.loop import Item, Rows
from rsynth.runner.stage import Counts, RunOptions, Stage, Target, Work, execute, ready, split_summary
from rsynth.stages.provenance import provenance
from rsynth.stages.run_key import run_key
from rsynth.synth.mutations import Mutant, line_mutants
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem
from rsynth.verifiers.code import evalplus_tests

if TYPE_CHECKING:
    from typing_extensions import Unpack

SOLVE_INSTRUCTION = (
    "Write a Python solution to the following task. Reply with the complete code in one ```python block.\n\n{prompt}"
)
TESTS_INSTRUCTION = (
    "Write 5 Python assert statements that test the function `{entry_point}` described below, one "
    "per line, in one ```python block.\n\n{prompt}"
)
FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.S)
STYLES = ("assert", "io", "stdio", "evalplus")


@dataclass(frozen=True)
class TestSpec:
    """How to run a task's tests with the code verifier (its `reference`, `style`, `entry_point`), and
    the task prompt the model's code continues (`context`: its imports, signature and docstring).

    A trace's steps are the lines the model wrote; `item` assembles them with the context into the
    program that runs, so prompt lines are never labelled as steps."""

    __test__ = False  # not a pytest class, despite the name

    tests: str
    style: str = "assert"
    entry_point: str | None = None
    context: str | None = None

    def to_json(self) -> str:
        d = {"tests": self.tests, "style": self.style, "entry_point": self.entry_point}
        return json.dumps({**d, "context": self.context} if self.context is not None else d, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TestSpec:
        d = json.loads(text)
        context = d.get("context")
        return cls(
            d["tests"], d.get("style") or "assert", d.get("entry_point"), context if isinstance(context, str) else None
        )

    def program(self, code: str) -> str:
        """The program to run for the model's `code` (its lines, as the trace's steps join them)."""
        return code if self.context is None else assemble(self.context, code, self.entry_point)

    def item(self, code: str) -> VerifyItem:
        return VerifyItem(self.tests, self.program(code), {"style": self.style, "entry_point": self.entry_point})


def extract_code(text: str) -> str:
    """The last fenced code block (an unclosed one counts), else the whole text."""
    blocks = FENCE.findall(text)
    return (blocks[-1] if blocks else text).strip("\n")


def assemble(prompt: str, completion: str, entry_point: str | None) -> str:
    """The program to run: the model's code when it defines the entry point (with the prompt's
    imports it does not write itself, which HumanEval solutions rely on: merged, never duplicated),
    else the prompt continued by the code (HumanEval's body-only completions)."""
    code = extract_code(completion)
    if not entry_point or re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, flags=re.M):
        own = {ln.strip() for ln in code.split("\n")}
        imports = [ln for ln in prompt.split("\n") if re.match(r"^(import|from)\s+\S+", ln) and ln.strip() not in own]
        return normalize("\n".join(imports + [code]))
    return normalize(prompt.rstrip("\n") + "\n" + code)


def model_code(completion: str) -> str:
    """The lines the model wrote (its last code block, blank lines dropped): a code trace's steps."""
    return normalize(extract_code(completion))


def normalize(program: str) -> str:
    """Blank lines dropped so that steps (lines) and line labels index the same list."""
    return "\n".join(code_steps(program))


def code_steps(program: str) -> list[str]:
    return [ln.rstrip() for ln in program.split("\n") if ln.strip()]


def assert_lines(text: str) -> list[str]:
    """Top-level `assert` statements of a model's test block, one per line."""
    return [ln.strip() for ln in extract_code(text).split("\n") if ln.startswith("assert ")]


@dataclass
class CodeTask:
    id: str
    prompt: str
    spec: TestSpec | None  # None: tests to synthesize
    reference: str | None  # reference solution (needed to keep synthesized tests)
    entry_point: str | None = None
    source_ref: str | None = None  # FILE@SHA8:ROW of the task row (readers.source_ref)


TASK_FIELDS = [
    FieldSpec("prompt", str),
    FieldSpec("id", str, required=False),
    FieldSpec("entry_point", str, required=False),
    FieldSpec("reference_solution", str, required=False),
]
DEFAULTS = {"prompt": ("problem",), "id": ("task_id",), "reference_solution": ("canonical_solution",)}
TEST_COLUMNS = ("reference_answer", "test", "assertion", "tests")


def make_task_validator(mapping: dict[str, str], style: str, synthesize: bool):
    def validate(record: Record) -> CodeTask | RowError:
        task = _validate(record)
        if isinstance(task, CodeTask):
            task.source_ref = source_ref(record)
        return task

    def _validate(record: Record) -> CodeTask | RowError:
        m = dict(mapping)
        for name, alts in DEFAULTS.items():
            if name not in m and name not in record.data:
                m[name] = next((a for a in alts if a in record.data), name)
        view = map_fields(record, TASK_FIELDS, m)
        if isinstance(view, RowError):
            return view
        raw = json.dumps(record.data, ensure_ascii=False, default=str)[:2000]
        tid = view["id"] or source_ref(record)
        column = m.get("tests") or next((c for c in TEST_COLUMNS if record.data.get(c)), None)
        ref = view["reference_solution"]
        if (
            ref is not None
            and view["entry_point"]
            and not re.search(rf"^\s*def\s+{re.escape(view['entry_point'])}\b", ref, flags=re.M)
        ):
            ref = view["prompt"] + ref  # HumanEval's canonical solutions are bodies
        if column is None or not record.data.get(column):
            if synthesize and ref:
                return CodeTask(tid, view["prompt"], None, ref, view["entry_point"])
            why = "task has no tests" + (
                "" if synthesize else " (pass --synthesize-tests to have the model write them)"
            )
            return RowError(
                record.source,
                record.row,
                "tests",
                why + ("" if ref or not synthesize else " and no reference solution to check written tests"),
                raw,
            )
        value = record.data[column]
        plus = evalplus_tests(record.data) if "tests" not in m and column == "assertion" else None
        if plus is not None:  # MBPP+: base + plus inputs, as evalplus runs them (the base asserts pass wrong programs)
            return CodeTask(tid, view["prompt"], TestSpec(plus, "evalplus", view["entry_point"], view["prompt"]), ref)
        if column == "reference_answer":
            try:
                spec = TestSpec.from_json(value)
                return CodeTask(
                    tid,
                    view["prompt"],
                    spec if spec.context is not None else replace(spec, context=view["prompt"]),
                    ref,
                )
            except (ValueError, KeyError, TypeError):
                return RowError(record.source, record.row, column, "reference_answer is not a JSON test spec", raw)
        tests = value if isinstance(value, str) else json.dumps(value)
        return CodeTask(tid, view["prompt"], TestSpec(tests, style, view["entry_point"], view["prompt"]), ref)

    return validate


@dataclass
class CodeConfig:
    n_samples: int = 4
    params: SamplingParams = field(default_factory=lambda: SamplingParams(max_new_tokens=512))
    instruction: str = SOLVE_INSTRUCTION
    style: str = "assert"
    synthesize_tests: bool = False
    mutation_labels: int = 0  # mutants per passing sample (0: none)

    def fingerprint(self) -> dict[str, Any]:
        return fingerprint(self, n_samples="n", synthesize_tests="synth", mutation_labels="mutants")


def line_labels(num_lines: int, breaking: int, method: str = "mutation:first_breaking_line") -> dict[str, Any]:
    """PRLCoder labels for a single-line mutant: lines before the breaking one good, it bad, later
    unknown; `breaking` -1 (the mutant still passes) leaves every line good."""
    hard = [True] * num_lines if breaking < 0 else [True] * breaking + [False] + [None] * (num_lines - breaking - 1)
    return {**empty_labels(), "label_method": method, "step_hard": hard, "first_error": breaking}


class CodeSampler:
    """A batch of tasks -> test synthesis (where needed), sampled programs, mutant traces."""

    def __init__(self, engine: Engine, verifier: Verifier, config: CodeConfig) -> None:
        self.engine, self.verifier, self.config = engine, verifier, config
        self.provenance = provenance(engine, config.params.with_n(config.n_samples), verifier)

    def synthesize(self, tasks: list[CodeTask]) -> dict[str, tuple[list[str], list[str]]]:
        """(kept, dropped) assert lines per task id, each line run alone against the reference."""
        todo = [t for t in tasks if t.spec is None]
        replies = self.engine.generate(
            [Prompt.user(TESTS_INSTRUCTION.format(prompt=t.prompt, entry_point=_entry(t))) for t in todo],
            self.config.params.with_n(1),
        )
        lines = [assert_lines(r[0].text) for r in replies]
        checks = [VerifyItem(line, t.reference or "", {"style": "assert"}) for t, ls in zip(todo, lines) for line in ls]
        verdicts = iter(self.verifier.verify_batch(checks))
        out = {}
        for t, ls in zip(todo, lines):
            ok = [(line, next(verdicts).ok) for line in ls]
            out[t.id] = ([line for line, good in ok if good], [line for line, good in ok if not good])
        return out

    def __call__(self, items: list[Item]) -> dict[int, Rows]:
        c = self.config
        written = self.synthesize([it.value for it in items])
        out: dict[int, Rows] = {}
        ready: list[Item] = []
        for it in items:
            task: CodeTask = it.value
            if task.spec is None:
                kept, dropped = written[task.id]
                evidence = json.dumps({"kept": kept, "dropped": dropped})
                if not kept:
                    out[it.index] = [
                        (
                            "rejected",
                            {**self._task_row(task, None), "reason": "no_test_passes_reference", "evidence": evidence},
                        )
                    ]
                    continue
                task.spec = TestSpec("\n".join(kept), "assert", _entry(task), task.prompt)
                out[it.index] = [
                    (
                        "tasks",
                        {
                            **self._task_row(task, task.spec),
                            "metadata": json.dumps({"tests": "synthesized", "dropped": dropped}),
                        },
                    )
                ]
            ready.append(it)
        comps = self.engine.generate(
            [Prompt.user(c.instruction.format(prompt=it.value.prompt)) for it in ready], c.params.with_n(c.n_samples)
        )
        programs = [
            [model_code(comp.text) for comp in group] for it, group in zip(ready, comps)
        ]  # run with the prompt as context
        verdicts = iter(
            self.verifier.verify_batch([it.value.spec.item(p) for it, ps in zip(ready, programs) for p in ps])
        )
        judged = [[next(verdicts) for _ in ps] for ps in programs]
        mutant_rows = self._mutants(ready, programs, judged)
        for it, group, ps, vs in zip(ready, comps, programs, judged):
            pass_rate = sum(v.ok for v in vs) / len(vs) if vs else 0.0
            rows = out.setdefault(it.index, [])
            rows += [
                ("data", self._trace(it.value, j, comp, p, v, pass_rate))
                for j, (comp, p, v) in enumerate(zip(group, ps, vs))
            ]
            rows += mutant_rows.get(it.value.id, [])
        return out

    def _mutants(self, ready: list[Item], programs: list[list[str]], judged: list[list[Verdict]]) -> dict[str, Rows]:
        """Run every mutant of every passing sample in one sandbox batch and label its lines."""
        if not self.config.mutation_labels:
            return {}
        plan: list[tuple[CodeTask, int, Mutant]] = []
        for it, ps, vs in zip(ready, programs, judged):
            for j, (p, v) in enumerate(zip(ps, vs)):
                if v.ok:  # mutate the model's lines only, and only executable ones (see line_mutants)
                    plan += [(it.value, j, m) for m in line_mutants(p, self.config.mutation_labels)]
        verdicts = self.verifier.verify_batch([task.spec.item(m.program) for task, _, m in plan])
        out: dict[str, Rows] = {}
        for (task, j, m), v in zip(plan, verdicts):
            steps = m.program.split("\n")
            out.setdefault(task.id, []).append(
                (
                    "mutants",
                    {
                        "id": f"{task.id}/s{self.config.params.seed}/{j}/m{m.line}",
                        "problem_id": task.id,
                        "domain": "code",
                        "problem": task.prompt,
                        "reference_answer": task.spec.to_json(),
                        "sample_index": j,
                        "completion": m.program,
                        "steps": steps,
                        "final_answer": None,
                        "verdict": v.status,
                        "num_tokens": None,
                        "finish_reason": None,
                        "pass_rate": None,
                        "provenance": self.provenance,
                        **line_labels(len(steps), -1 if v.ok else m.line),
                        SOURCE_REF: task.source_ref,
                    },
                )
            )
        return out

    def _trace(
        self, task: CodeTask, j: int, comp: Completion, program: str, v: Verdict, pass_rate: float
    ) -> dict[str, Any]:
        steps = program.split("\n") if program else []
        labels = (
            line_labels(len(steps), -1, "execution:tests_pass") if v.ok else empty_labels()
        )  # a failing sample's first bad line is unknown
        return {
            "id": f"{task.id}/s{self.config.params.seed}/{j}",
            "problem_id": task.id,
            "domain": "code",
            "problem": task.prompt,
            "reference_answer": task.spec.to_json(),
            "sample_index": j,
            "completion": program,
            "steps": steps,
            "final_answer": None,
            "verdict": v.status,
            "num_tokens": comp.num_tokens,
            "finish_reason": comp.finish_reason,
            "pass_rate": pass_rate,
            "provenance": self.provenance,
            **labels,
            SOURCE_REF: task.source_ref,
        }

    @staticmethod
    def _task_row(task: CodeTask, spec: TestSpec | None) -> dict[str, Any]:
        return {
            "id": task.id,
            "domain": "code",
            "problem": task.prompt,
            "reference_answer": spec.to_json() if spec else None,
            "gold_steps": code_steps(task.reference or ""),
            "source": "synthesize-tests",
            "metadata": None,
            SOURCE_REF: task.source_ref,
        }


def _entry(task: CodeTask) -> str:
    """The function the written tests call: the task's entry point, else the reference's first def."""
    if task.entry_point:
        return task.entry_point
    m = re.search(r"^def\s+(\w+)\s*\(", task.reference or "", flags=re.M)
    return m.group(1) if m else "solution"


def run_code(
    input: str,
    mapping: dict[str, str],
    out: Path,
    engine: Engine,
    verifier: Verifier,
    config: CodeConfig,
    **run: Unpack[RunOptions],
) -> dict[str, Any]:
    """Sample, run and label programs for every task of `input` (data/: sampled programs,
    mutants/: line-labelled mutants, tasks/: tasks with synthesized tests, rejected/: tasks whose
    written tests all failed the reference, errors/: bad rows)."""
    return execute(
        code_stage(mapping, engine, verifier, config, run.get("limit")),
        Target(input, Path(out), **run),
    )


def code_stage(
    mapping: dict[str, str], engine: Engine, verifier: Verifier, config: CodeConfig, limit: int | None
) -> Stage:
    def summary(c: Counts) -> dict[str, Any]:
        return split_summary(
            c,
            {
                "data": "programs",
                "mutants": "line-labelled mutants",
                "tasks": "tasks with synthesized tests",
                "rejected": "rejected tasks",
            },
        )

    work = Work(
        make_task_validator(mapping, config.style, config.synthesize_tests),
        CodeSampler(engine, verifier, config),
        batch_size=max(1, engine.max_batch_prompts // config.n_samples),
        description="sampling programs",
        summary=summary,
    )
    splits = {
        "data": TRACE_SCHEMA,
        "mutants": TRACE_SCHEMA,
        "tasks": PROBLEM_SCHEMA,
        "rejected": REJECTED_SCHEMA,
        "errors": ERROR_SCHEMA,
    }
    return Stage(
        "generate-code",
        splits,
        key=lambda inputs: run_key("generate-code", inputs, mapping, engine, config.fingerprint(), limit),
        work=ready(work),
    )
