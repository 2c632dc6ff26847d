"""The provenance every generated row carries, built in one place so all stages write the same keys.

A row must say what produced it -- model, engine, sampling settings, seed, rsynth version and the
verifier that judged it -- so that data built by different runs can be told apart and reproduced.
"""

from __future__ import annotations

from typing import Any

from rsynth import __version__
from rsynth.engines.base import Engine, SamplingParams
from rsynth.verifiers.base import Verifier


def provenance(
    engine: Engine, params: SamplingParams, verifier: Verifier | None = None, **extra: Any
) -> dict[str, Any]:
    """The provenance dict of rows sampled from `engine` with `params` (n as the stage sampled it) and
    judged by `verifier`; `extra` adds stage-specific keys (e.g. the judge's template)."""
    row = {
        "model": engine.model,
        "engine": engine.name,
        "sampling": params.provenance(),
        "seed": params.seed,
        "rsynth_version": __version__,
    }
    if verifier is not None:
        row.update(verifier=verifier.name, verifier_version=verifier.version)
    return {**row, **extra}
