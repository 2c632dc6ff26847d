"""Layers point one way: cli -> recipes -> stages -> (annotators, engines, verifiers, decontam) -> data.

An AST check over every module of rsynth/: a module may import rsynth packages of its own layer or
lower ones, never higher. Imports inside functions count too: a lazy upward import is still upward.
Within a layer, files import each other without circles: the file-level import graph (every import,
at the top or inside a function) has no cycle.
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
    "errors": 0,
    "config": 0,
    "steps": 0,
    "answers": 0,
    "__init__": 0,
    "resources": 0,
    "spawn": 0,
    "data": 1,
    "runner": 2,
    "annotators": 3,
    "engines": 3,
    "verifiers": 3,
    "decontam": 3,
    "synth": 3,
    "stages": 4,
    "cards": 4,
    "rewards": 4,
    "recipes": 5,
    "cli": 6,
    "__main__": 6,
    "api": 5,  # the Python API runs the recipe stages' adapters; it never loads the CLI (a higher layer)
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
    upward = [
        f"line {line}: rsynth.{unit}"
        for unit, line in sorted(_imported_units(ast.parse(path.read_text())))
        if unit != "__version__" and LAYERS.get(unit, 0) > own and (_unit(path), unit) not in FACADE
    ]
    assert not upward, f"{path.relative_to(REPO)} (layer {own}) imports a higher layer: {', '.join(upward)}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_NAMES = {_module_name(p): p for p in MODULES}


def _imported_modules(path: Path) -> set[str]:
    """The rsynth modules (files) `path` imports, anywhere in it: `from a.b import c` is the file a/b/c.py
    when that exists, else a/b.py (or a/b/__init__.py)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if (
                isinstance(node, ast.ImportFrom)
                and name == node.module
                and any(f"{node.module}.{a.name}" in MODULE_NAMES for a in node.names)
            ):
                continue  # `from pkg import module`: the module, not the package's __init__
            parts = name.split(".")
            while parts and ".".join(parts) not in MODULE_NAMES:
                parts.pop()
            if parts:
                found.add(".".join(parts))
    found.discard(_module_name(path))
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one file (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {name: _imported_modules(path) & set(MODULE_NAMES) for name, path in MODULE_NAMES.items()}
    graph["rsynth"].discard("rsynth.api")  # FACADE: resolved on first attribute access, after rsynth is loaded
    return graph


def test_no_import_cycle_between_files():
    cycles = _cycles(import_graph())
    assert not cycles, "files import each other in a circle: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_cycle_check_sees_function_local_imports():
    """The check would catch the kind of circle it exists for: a lazy import inside a function."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from rsynth.stages.annotate.stage import run_annotate\n")
    assert any(isinstance(n, ast.ImportFrom) and n.module == "rsynth.stages.annotate.stage" for n in ast.walk(tree))
    assert "rsynth.stages.annotate.stage" in _imported_modules(PACKAGE / "recipes" / "adapters.py")


LIBRARY_IMPORTS = [
    "rsynth.verifiers.math",
    "rsynth.verifiers.code",
    "rsynth.verifiers.lean",
    "rsynth.engines.registry",
    "rsynth.stages.annotate.stage",
    "rsynth.recipes.builder",
    "rsynth.decontam.pipeline",
    "rsynth.api",
]


@pytest.mark.parametrize("module", LIBRARY_IMPORTS)
def test_library_use_loads_no_cli(module: str):
    """Importing a component as a library loads neither typer nor any rsynth.cli module."""
    code = (
        f"import sys, {module}; bad = sorted(m for m in sys.modules if m == 'typer' or m.startswith('rsynth.cli')); "
        "print(','.join(bad))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "", f"importing {module} loaded {res.stdout.strip()}"


def test_the_command_line_starts_without_sympy_or_models():
    """Every CLI call (and every CLI test) pays the command line's imports: sympy, torch and
    transformers load only in the stages that use them."""
    code = (
        "import sys, rsynth.cli; "
        "print(','.join(sorted(m for m in ('sympy', 'torch', 'transformers', 'datasets') if m in sys.modules)))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "", f"`import rsynth.cli` loaded {res.stdout.strip()}"
