"""Layers point one way: cli -> recipes -> pipelines -> (annotators, engines, verifiers, decontam) -> data.

An AST check over every module of rsynth/: a module may import rsynth packages of its own layer or
lower ones, never higher. Imports inside functions count too: a lazy upward import is still upward.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "rsynth"

# Lower number = lower layer. Packages in one layer may import each other.
LAYERS: dict[str, int] = {
    "errors": 0, "config": 0, "steps": 0, "answers": 0, "__init__": 0, "resources": 0,
    "data": 1,
    "executor": 2,
    "annotators": 3, "engines": 3, "verifiers": 3, "decontam": 3, "synth": 3,
    "pipelines": 4, "cards": 4, "rewards": 4,
    "recipes": 5,
    "cli": 6, "__main__": 6,
    "api": 7,  # the Python API runs the CLI's commands
}
# The package facade re-exports the Python API lazily (PEP 562 __getattr__), so `import rsynth`
# loads nothing and `rsynth.annotate_prm` still works: the one import allowed to point upward.
FACADE = {("__init__", "api")}


def _unit(path: Path) -> str:
    """The layer unit of a module: its top-level package under rsynth/, or its own name."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_units(tree: ast.AST) -> set[tuple[str, int]]:
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "rsynth" else [f"rsynth.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "rsynth" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in MODULES}
    assert units <= set(LAYERS), f"add to LAYERS: {sorted(units - set(LAYERS))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_upward_import(path: Path):
    own = LAYERS[_unit(path)]
    upward = [f"line {line}: rsynth.{unit}" for unit, line in sorted(_imported_units(ast.parse(path.read_text())))
              if unit != "__version__" and LAYERS.get(unit, 0) > own and (_unit(path), unit) not in FACADE]
    assert not upward, f"{path.relative_to(REPO)} (layer {own}) imports a higher layer: {', '.join(upward)}"


LIBRARY_IMPORTS = [
    "rsynth.verifiers.math", "rsynth.verifiers.code", "rsynth.verifiers.lean", "rsynth.engines.registry",
    "rsynth.pipelines.annotate", "rsynth.recipes.builder", "rsynth.decontam.pipeline",
]


@pytest.mark.parametrize("module", LIBRARY_IMPORTS)
def test_library_use_loads_no_cli(module: str):
    """Importing a component as a library loads neither typer nor any rsynth.cli module."""
    code = (f"import sys, {module}; bad = sorted(m for m in sys.modules if m == 'typer' or m.startswith('rsynth.cli')); "
            "print(','.join(bad))")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "", f"importing {module} loaded {res.stdout.strip()}"
