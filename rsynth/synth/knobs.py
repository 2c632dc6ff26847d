"""What a procedural-problem request names: the template and its difficulty knobs.

Kept apart from `templates.py` so that the CLI and the params classes can offer the template choices
without importing sympy, which is a third of the command line's start-up time; only the stage that
writes problems loads the templates themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATE_NAMES = ("arithmetic", "linear", "fractions", "percent")


@dataclass(frozen=True)
class Knobs:
    """Difficulty: how many operations a problem chains, and how large its numbers are."""

    max_steps: int = 3
    max_number: int = 20
