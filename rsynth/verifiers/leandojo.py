"""Optional LeanDojo adapter: replay a tactic proof step by step inside a traced Lean repository.

LeanDojo checks theorems that already exist in a traced repository (it needs `lean-dojo`, an elan
toolchain and GitHub access at run time), so an item names the theorem in `extra` (`repo_url`,
`commit`, `file_path`, `full_name`) and `candidate` is the tactic proof. Each tactic runs against
the previous state, so the verdict says exactly which step failed. None of this can run in
rsynth's CI (no network, no elan); the batch `LeanVerifier` is the verifier that is tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rsynth.errors import require
from rsynth.verifiers.base import Verdict, Verifier, VerifyItem
from rsynth.verifiers.lean import proof_steps, refuse_escape_hatches

NEEDED = ("repo_url", "commit", "file_path", "full_name")


class LeanDojoVerifier(Verifier):
    """Verdicts: proved | error (with `tactic_index`) | sorry | timeout."""

    name = "lean-dojo"
    version = "1"

    def __init__(self, timeout: int = 600) -> None:
        self.dojo = require("lean_dojo", feature="tactic replay with LeanDojo", extra="lean-dojo")
        self.timeout = timeout

    def _replay(self, item: VerifyItem) -> Verdict:
        ld, extra = self.dojo, item.extra
        steps = [s for _, s in proof_steps(item.candidate or "")] or [
            s.strip() for s in (item.candidate or "").splitlines() if s.strip()
        ]
        theorem = ld.Theorem(ld.LeanGitRepo(extra["repo_url"], extra["commit"]), extra["file_path"], extra["full_name"])
        with ld.Dojo(theorem, timeout=self.timeout) as (dojo, state):
            for index, tactic in enumerate(steps):
                state = dojo.run_tac(state, tactic)
                evidence: dict[str, Any] = {"tactic_index": index, "failing_tactic": tactic, "steps": steps}
                if isinstance(state, ld.LeanError):
                    return Verdict("error", False, {**evidence, "message": state.error[:1000]})
                if isinstance(state, ld.ProofGivenUp):
                    return Verdict("sorry", False, evidence)
                if isinstance(state, ld.ProofFinished):
                    return Verdict("proved", True, {"steps_used": index + 1, "steps": steps})
        return Verdict("error", False, {"reason": "unsolved goals after the last tactic", "steps": steps})

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        verdicts = []
        for item in items:
            missing = [k for k in NEEDED if not item.extra.get(k)]
            refused = refuse_escape_hatches(item.candidate or "")
            if missing:
                verdicts.append(Verdict("error", False, {"reason": f"LeanDojo items need extra {missing}"}))
            elif refused is not None:
                verdicts.append(refused)
            else:
                try:
                    verdicts.append(self._replay(item))
                except self.dojo.DojoTacticTimeoutError:
                    verdicts.append(Verdict("timeout", False, {"timeout_s": self.timeout}))
                except Exception as exc:  # init and crash errors are this item's verdict
                    verdicts.append(Verdict("error", False, {"reason": f"{type(exc).__name__}: {str(exc)[:500]}"}))
        return verdicts
