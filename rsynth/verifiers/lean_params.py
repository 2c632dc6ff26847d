"""Which Lean runs and how: the options of every command that checks Lean, declared once.

`generate formal`, `generate proofs`, `verify lean` and `annotate-prm --domain lean` (and the
annotate-prm recipe stage) all take these as `--lean-cmd`, `--lean-cwd`, `--header`,
`--lean-timeout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsynth.config import param
from rsynth.errors import UserError


@dataclass
class LeanParams:
    lean_cmd: str | None = param(
        None,
        "--lean-cmd",
        "How to run Lean: wasm | lean | 'lake env lean' (with --lean-cwd PROJECT); default: "
        "lean on PATH, else the wasm Lean of `make lean`.",
    )
    lean_cwd: str | None = param(
        None, "--lean-cwd", "Directory Lean runs in: a Lake project (e.g. one with Mathlib) for 'lake env lean'."
    )
    header: str = param(
        "",
        "--header",
        "Lines put before every Lean batch, e.g. 'import Mathlib' (statements' own imports must be here).",
    )
    lean_timeout: float = param(1800.0, "--lean-timeout", "Wall-clock seconds for one Lean run over a whole batch.")

    def __post_init__(self) -> None:
        if self.lean_timeout <= 0:
            raise UserError("--lean-timeout must be > 0")

    def verifier_options(self) -> dict[str, Any]:
        """Keyword arguments of `LeanVerifier` (and `get_verifier("lean")`)."""
        return {"command": self.lean_cmd, "cwd": self.lean_cwd, "header": self.header, "timeout": self.lean_timeout}

    def verifier(self, kind: type | None = None) -> Any:
        """A `LeanVerifier` (or the subclass `kind`); a missing Lean is a user error naming how to get one."""
        from rsynth.verifiers.lean import LeanVerifier

        try:
            return (kind or LeanVerifier)(**self.verifier_options())
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
