"""The exceptions every layer may raise, and optional-dependency checks (no CLI involved).

The CLI maps these to one red line and exit code 2 (`rsynth.cli.common.run_cli`); everything below
the CLI raises them without importing it, so a verifier or engine can be used as a library.
"""

from __future__ import annotations

import importlib
from typing import Any


class UserError(Exception):
    """A mistake in the command line, config or input: printed as one line, exit code 2."""


class MissingExtra(Exception):
    """A feature needs an optional dependency that is not installed."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(f"{feature} needs the '{module}' package: pip install 'rsynth[{extra}]'")


def require(module: str, *, feature: str, extra: str) -> Any:
    """Import an optional dependency or raise `MissingExtra` naming the extra to install.

    Components call this when they are built (datatrove's `_requires_dependencies`), so a missing
    extra fails at construction with the pip line, not deep inside a run."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(feature, extra, module.split(".")[0]) from None


class PromptTooLong(Exception):
    """Prompts of one engine `generate` call that cannot be served: longer than the model's context
    or the `--max-input-chars` guard (checked before any model work), or refused by a server as too
    long. Not a run failure: the stage loop (`rsynth.runner.loop`) turns it into `errors/` rows for
    the rows behind those prompts and keeps the others.

    `reasons` maps each such prompt's position in the call to a reason starting with "too_long";
    `done` holds completions the engine produced anyway for other prompts (the openai engine sends
    its requests concurrently), so the completion cache keeps them and they are not paid twice."""

    def __init__(self, reasons: dict[int, str], done: dict[int, list[Any]] | None = None) -> None:
        super().__init__(next(iter(reasons.values())))
        self.reasons = reasons
        self.done = done or {}
