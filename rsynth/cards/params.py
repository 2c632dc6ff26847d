"""The dataset card's parameters, declared once: `rsynth card` options and the `card` recipe stage's keys."""

from __future__ import annotations

from dataclasses import dataclass

from rsynth.config import param


@dataclass
class CardParams:
    pretty_name: str | None = param(
        None, "--pretty-name", "The card's pretty_name (default: the recipe or directory name)."
    )
