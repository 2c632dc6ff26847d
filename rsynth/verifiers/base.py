"""The verifier interface: a batch of (reference, candidate) items in, one `Verdict` per item out.

Every verdict carries the evidence needed to audit it (parsed forms, stderr tail, error position),
and a verifier never raises for a bad item: a crash or timeout on one item is that item's verdict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VerifyItem:
    reference: str | None  # gold answer, tests, or theorem statement
    candidate: str | None  # model answer, program, or proof
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. entry_point, test style


@dataclass(frozen=True)
class Verdict:
    status: str  # math: correct|incorrect|unparseable|timeout|error; code: pass|fail|timeout|error; lean: proved|error|sorry|timeout
    ok: bool  # counts as a right answer for pass rates and MC values
    evidence: dict[str, Any] = field(default_factory=dict)


class Verifier(ABC):
    name: str = "verifier"
    version: str = "0"
    inline: bool = False  # cheap and pure: the async scheduler may call it on its event loop, not a worker thread

    @abstractmethod
    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]: ...

    def close(self) -> None:
        """Stop worker processes."""

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Unchecked(Verifier):
    """`--dry-run` validation: rows are read and mapped exactly as a run would, but nothing is
    executed or verified (every verdict is `unchecked`)."""

    name = "unchecked"

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        return [Verdict("unchecked", False) for _ in items]
