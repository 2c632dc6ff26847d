"""The parameters of `generate code-tasks` (CLI options and `code-tasks` recipe keys), declared once,
and the solver engine they name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rsynth.config import param, parse_range
from rsynth.engines.base import Engine
from rsynth.engines.params import EngineParams
from rsynth.errors import UserError
from rsynth.synth.codetasks import TASK_TYPES
from rsynth.verifiers.code.sandbox import CHOICES as SANDBOXES

SOURCES = ("seeds", "propose")


@dataclass
class CodeTasksParams:
    """`generate code-tasks` parameters (CLI options and the `code-tasks` recipe keys)."""

    programs: str = param(
        "seeds",
        "--programs",
        "seeds: the input rows' programs | propose: the model writes new programs, "
        "shown --references input programs (Absolute Zero's proposer).",
        choices=SOURCES,
    )
    types: str = param("deduction,abduction,induction", "--types", "Task types to make, comma-separated.")
    references: int = param(3, "--references", "propose: K reference programs in each proposer prompt.")
    proposals: int = param(2, "--proposals", "propose: programs sampled per input row (one request with n).")
    max_inputs: int = param(6, "--max-inputs", "Inputs kept per program (induction shows half, holds back the rest).")
    solver_model: str | None = param(
        None,
        "--solver-model",
        "Solver for solve rates: a model id/path on the same --engine, or "
        "'same' (the proposer's engine); none: no solve rates.",
    )
    solver_attempts: int = param(4, "--solver-attempts", "Solver attempts per task (one request with n).")
    keep_solve_rate: str | None = param(
        None,
        "--keep-solve-rate",
        "LO:HI: keep tasks whose solve rate is in range (learnable: "
        "e.g. 0.01:0.99); the rest go to filtered/. Needs --solver-model.",
        kind="range",
    )
    verify_timeout: float = param(5.0, "--verify-timeout", "Seconds per sandbox run (the task's time limit).")
    workers: int = param(2, "--workers", "Sandbox runs in parallel.")
    sandbox: str = param(
        "auto", "--sandbox", "Code sandbox: auto | bwrap | unshare | unsafe-rlimit (no isolation).", choices=SANDBOXES
    )

    def __post_init__(self) -> None:
        if self.programs not in SOURCES or self.sandbox not in SANDBOXES:
            raise UserError(f"--programs must be one of {', '.join(SOURCES)}; --sandbox one of {', '.join(SANDBOXES)}")
        self.type_list = tuple(t.strip() for t in self.types.split(",") if t.strip())
        bad = [t for t in self.type_list if t not in TASK_TYPES]
        if bad or not self.type_list:
            raise UserError(f"--types {self.types!r}: expected a comma-separated subset of {', '.join(TASK_TYPES)}")
        if min(self.references, self.proposals, self.max_inputs, self.solver_attempts, self.workers) < 1:
            raise UserError("--references, --proposals, --max-inputs, --solver-attempts and --workers must be >= 1")
        self.solve_range = parse_range(self.keep_solve_rate, "--keep-solve-rate") if self.keep_solve_rate else None
        if self.solve_range and not self.solver_model:
            raise UserError("--keep-solve-rate needs --solver-model (solve rates come from solver attempts)")

    def fingerprint(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("workers", "sandbox")}

    def verifier_check(self) -> None:
        """Refuse at once (one line) where no sandbox works, before any model loads."""
        from rsynth.stages.domains import code_verifier

        code_verifier(self.verify_timeout, 1, self.sandbox).close()


def solver_engine(params: CodeTasksParams, engine: EngineParams, proposer: Engine | None, out: Path) -> Engine | None:
    """The solver: none, the proposer's engine ('same'), or `--solver-model` on the same engine kind
    with its own completion cache in OUT."""
    if not params.solver_model:
        return None
    if params.solver_model == "same":
        if proposer is None:
            raise UserError("--solver-model same needs the proposer's engine")
        return proposer
    return replace(engine, model=params.solver_model).build(Path(out) / "solver-cache.sqlite")
