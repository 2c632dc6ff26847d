"""Verifiers (math, code, lean) behind one interface (`rsynth.verifiers.base.Verifier`)."""

from __future__ import annotations

from rsynth.verifiers.base import Verdict, Verifier, VerifyItem

__all__ = ["Verdict", "Verifier", "VerifyItem", "get_verifier"]


def get_verifier(name: str, **options) -> Verifier:
    """Build a verifier by name; unknown names are a user error, not a traceback."""
    if name == "math":
        from rsynth.verifiers.math import MathVerifier

        return MathVerifier(**options)
    if name == "code":
        from rsynth.verifiers.code import CodeVerifier

        return CodeVerifier(**options)
    if name == "lean":
        from rsynth.verifiers.lean import LeanVerifier

        return LeanVerifier(**options)
    if name == "lean-dojo":
        from rsynth.verifiers.leandojo import LeanDojoVerifier

        return LeanDojoVerifier(**options)
    raise ValueError(f"unknown verifier {name!r} (expected: math, code, lean or lean-dojo)")
