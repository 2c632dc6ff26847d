"""Domain-aware rollout checkers: how annotate-prm prompts, splits and verifies per domain.

The searches only read `Rollout.correct`; what "correct" means is the checker's business:
- math: the final answer extracted from prefix + continuation, against the reference answer;
- code: the program (prefix lines + continuation) run against the task's tests in the sandbox;
- lean: the theorem with the tactic prefix + continuation, checked by Lean.
Each checker turns a (task, prefix, continuation) into one `VerifyItem`, so the scheduler's
batching and verdict de-duplication work the same in every domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rsynth.answers import DEFAULT_ANSWER_FALLBACK, NO_ANSWER
from rsynth.engines.base import Prompt
from rsynth.engines.routing import question_key
from rsynth.errors import UserError
from rsynth.stages.codegen import SOLVE_INSTRUCTION, TestSpec, code_steps
from rsynth.stages.formal import PROVE_INSTRUCTION
from rsynth.stages.problem import final_answer
from rsynth.steps import join_steps, split_steps
from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.lean_params import LeanParams
from rsynth.verifiers.lean_syntax import parse_statement, tactic_steps

DOMAINS = ("math", "code", "lean")


class RolloutChecker(Protocol):
    domain: str

    def prompt(self, problem: str, reference: str, prefix: tuple[str, ...]) -> Prompt: ...

    def split(self, continuation: str) -> tuple[str, ...]: ...

    def check(
        self, reference: str, prefix: tuple[str, ...], continuation: str, finish_reason: str | None = "stop"
    ) -> tuple[VerifyItem, str | None]:
        """The verifier item for prefix + continuation (a whole solution), and its final answer;
        `finish_reason` other than "stop" marks a truncated continuation (math: no guessed answer)."""
        ...

    def join(self, steps: tuple[str, ...]) -> str: ...

    def invalid_reference(self, reference: str) -> str | None:
        """Why `reference` cannot be checked in this domain (an errors/ row), or None."""
        ...


@dataclass
class MathChecker:
    instruction: str
    split_mode: str = "auto"
    domain: str = "math"
    answer_fallback: str = DEFAULT_ANSWER_FALLBACK  # the same rule as `generate solutions`

    def prompt(self, problem: str, reference: str, prefix: tuple[str, ...]) -> Prompt:
        head = join_steps(list(prefix)) + "\n\n" if prefix else ""
        return Prompt.user(self.instruction.format(problem=problem), assistant_prefix=head, route=question_key(problem))

    def split(self, continuation: str) -> tuple[str, ...]:
        return tuple(split_steps(continuation, self.split_mode))

    def check(
        self, reference: str, prefix: tuple[str, ...], continuation: str, finish_reason: str | None = "stop"
    ) -> tuple[VerifyItem, str | None]:
        head = join_steps(list(prefix))
        text = f"{head}\n\n{continuation}" if head and continuation else head or continuation
        answer = final_answer(text, self.answer_fallback, finish_reason)
        return VerifyItem(reference, answer), answer

    def join(self, steps: tuple[str, ...]) -> str:
        return join_steps(list(steps))

    def invalid_reference(self, reference: str) -> str | None:
        return None


def _until_fence(text: str) -> str:
    """A continuation ends where the model closes its code block."""
    return text.split("```", 1)[0]


@dataclass
class CodeChecker:
    """Steps are program lines; the reference is the task's JSON `TestSpec`."""

    instruction: str = SOLVE_INSTRUCTION
    domain: str = "code"

    def prompt(self, problem: str, reference: str, prefix: tuple[str, ...]) -> Prompt:
        head = "```python\n" + "".join(line + "\n" for line in prefix)
        return Prompt.user(self.instruction.format(prompt=problem), assistant_prefix=head, route=question_key(problem))

    def split(self, continuation: str) -> tuple[str, ...]:
        return tuple(code_steps(_until_fence(continuation)))

    def check(
        self, reference: str, prefix: tuple[str, ...], continuation: str, finish_reason: str | None = "stop"
    ) -> tuple[VerifyItem, str | None]:
        return TestSpec.from_json(reference).item(self.join(prefix + self.split(continuation))), None

    def join(self, steps: tuple[str, ...]) -> str:
        return "\n".join(steps)

    def invalid_reference(self, reference: str) -> str | None:
        try:
            TestSpec.from_json(reference)
        except (ValueError, KeyError, TypeError):
            return "code tasks need a JSON test spec in reference_answer (rsynth generate code writes one)"
        return None


@dataclass
class LeanChecker:
    """Steps are tactic lines; the reference is the theorem statement."""

    instruction: str = PROVE_INSTRUCTION
    domain: str = "lean"

    def prompt(self, problem: str, reference: str, prefix: tuple[str, ...]) -> Prompt:
        st = parse_statement(reference)
        assert st is not None  # refused by invalid_reference
        stated = st.with_opens(st.text)
        head = f"```lean\n{stated} := by\n" + "".join(f"  {line}\n" for line in prefix)
        return Prompt.user(
            self.instruction.format(statement=stated), assistant_prefix=head, route=question_key(problem)
        )

    def split(self, continuation: str) -> tuple[str, ...]:
        return tuple(tactic_steps(_until_fence(continuation)))

    def check(
        self, reference: str, prefix: tuple[str, ...], continuation: str, finish_reason: str | None = "stop"
    ) -> tuple[VerifyItem, str | None]:
        st = parse_statement(reference)
        assert st is not None
        tactics = self.join(prefix + self.split(continuation))
        return VerifyItem(st.with_opens(st.text), st.with_proof(tactics) if tactics.strip() else ""), None

    def join(self, steps: tuple[str, ...]) -> str:
        return "\n".join(steps)

    def invalid_reference(self, reference: str) -> str | None:
        return None if parse_statement(reference) else "no Lean theorem statement in the reference"


def make_checker(
    domain: str, instruction: str, split_mode: str, answer_fallback: str = DEFAULT_ANSWER_FALLBACK
) -> RolloutChecker:
    """The checker for `domain`; math keeps annotate-prm's instruction, step splitting and answer rule."""
    if domain == "code":
        return CodeChecker()
    if domain == "lean":
        return LeanChecker()
    return MathChecker(instruction, split_mode, answer_fallback=answer_fallback)


def no_answer(domain: str, answer: str | None) -> bool:
    """A math solution from which no rule of the chain extracted an answer: neither right nor wrong
    (code and lean verdicts come from running the whole text, never from an extracted answer)."""
    return domain == "math" and answer is None


def verdict_word(domain: str, ok: bool, answer: str | None = "") -> str:
    """A labelled trace's `verdict` in its domain's words; math keeps "no answer" apart from wrong."""
    if not ok and no_answer(domain, answer):
        return NO_ANSWER
    good, bad = {"code": ("pass", "fail"), "lean": ("proved", "error")}.get(domain, ("correct", "incorrect"))
    return good if ok else bad


def detect_domain(input: str) -> str:
    """The `domain` column of the input's first row (rsynth writes one), else math."""
    from rsynth.data.readers import Record, read_records

    for rec in read_records(input):
        if isinstance(rec, Record):
            domain = rec.data.get("domain")
            return domain if domain in DOMAINS else "math"
    return "math"


def code_verifier(timeout: float, workers: int, sandbox: str = "auto"):
    """The sandboxed code verifier. No usable sandbox (or an unknown name) is a one-line user error
    naming the fixes (`make sandbox`, `--sandbox unsafe-rlimit`), never a silent unsafe fallback."""
    from rsynth.verifiers.code import CodeVerifier

    try:
        return CodeVerifier(timeout=timeout, workers=workers, sandbox=sandbox)
    except (RuntimeError, ValueError) as exc:
        raise UserError(str(exc)) from None


def rollout_verifier(
    domain: str, *, verify_timeout: float, lean: LeanParams | None = None, workers: int = 2, sandbox: str = "auto"
):
    """The verifier that judges a domain's rollouts (None: the math default of `run_annotate`).

    Shared by `annotate-prm` and its recipe stage, so both check code and Lean the same way."""
    if domain == "code":
        return code_verifier(verify_timeout, workers, sandbox)
    if domain == "lean":
        return (lean or LeanParams()).verifier()
    return None
