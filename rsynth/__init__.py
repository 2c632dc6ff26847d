"""rsynth: build step-labelled reasoning training data.

The Python API (`rsynth.api`: `generate_solutions`, `annotate_prm`, `judge`, `consensus`,
`decontaminate`, `verify`, `export`, `build`, ...) and the error types are imported on first use, so
`import rsynth` stays light (no typer, datasets or torch at import).
"""

from typing import Any

__version__ = "0.1.0"

_API = (
    "annotate_prm",
    "build",
    "consensus",
    "decontaminate",
    "export",
    "generate_code",
    "generate_formal",
    "generate_problems",
    "generate_proofs",
    "generate_solutions",
    "judge",
    "load_output",
    "verify",
)
_ERRORS = {
    "UserError": "rsynth.errors",
    "MissingExtra": "rsynth.errors",
    "InputError": "rsynth.data.readers",
    "OutputError": "rsynth.data.shards",
}
__all__ = ["__version__", *_API, *_ERRORS]


def __getattr__(name: str) -> Any:
    if name in _API:
        from rsynth import api

        return getattr(api, name)
    if name in _ERRORS:
        import importlib

        return getattr(importlib.import_module(_ERRORS[name]), name)
    raise AttributeError(f"module 'rsynth' has no attribute {name!r}")
