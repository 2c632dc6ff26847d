"""Shared fixtures: a tiny random chat model built locally (no hub), and an OpenAI-compatible server on it.

The tiny model is real transformers code with random weights: every engine and pipeline test runs the
true generate path in well under a second per call, on any machine, offline.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# One math-library thread per process, for this process and every CLI it starts: the suite runs two
# test workers on two cores, each often beside a CLI child and the Lean batch, and torch's OpenMP
# threads spin while they wait for a core. Measured on the kill-and-resume build tests at load ~8:
# 185 CPU s with torch's default threads, 102 with one (the rows are the same: they are checked).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# Test modules import helpers as `tests.build_support`; the bare name (`build_support`) also works,
# so a test file written against the old flat layout still imports.
if str(REPO / "tests") not in sys.path:
    sys.path.append(str(REPO / "tests"))

from tests.tiny_model import build_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of a tiny random Llama chat model with its tokenizer, built once per session."""
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-model")))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: str):
    """One loaded HFEngine on the tiny model, shared by tests that only call generate."""
    from rsynth.engines.hf import HFEngine

    engine = HFEngine(tiny_model_dir, batch_rows=16)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def openai_server(tiny_engine) -> Iterator:
    """An OpenAI-compatible HTTP server on 127.0.0.1 serving the tiny model (tests/openai_server.py)."""
    from tests.openai_server import serve

    server = serve(tiny_engine, model_name="tiny")
    yield server
    server.stop()


# Files whose tests take minutes (kill-and-resume subprocess runs, sandboxed benchmark sweeps), run
# first, longest first (measured: worker seconds a file in a full run): under pytest-xdist a long file
# started last runs alone on one worker at the end. The Makefile passes `--no-loadscope-reorder`, or
# xdist would reorder files by their number of tests and start recipes/test_build.py (7 tests, ~5
# minutes) last. The MBPP+ sweep (up to 4 GB per sandbox) comes after a few minutes, when the session's
# Lean run (two 3.6 GB processes, started with the first test) is usually done; the Lean files wait
# for that run, so they stay among the rest, well after it.
LONGEST_FIRST = (
    "recipes/test_build.py",
    "stages/test_annotate.py",
    "stages/test_judge.py",
    "cli/test_generate.py",
    "stages/test_export_outputs.py",
    "verifiers/code/test_verifier.py",
    "stages/test_consensus.py",
    "decontam/test_probe.py",
    "cli/test_reliability.py",
    "cli/test_server_faults.py",
    "stages/test_processbench_pred.py",
)


PROCESS_FIXTURES = {"lean_run", "cli_env"}  # a wasm Lean run; the real CLI in a subprocess


def starts_processes(item: pytest.Item) -> bool:
    """A test that runs the CLI or another interpreter in a subprocess (seconds of imports each), or
    Lean: `make test-fast` leaves these out (they are marked `slow`; `make test` runs them)."""
    fn = getattr(item, "function", None)
    if fn is None:
        return False
    names = set(fn.__code__.co_names)
    helpers = [fn.__globals__.get(n) for n in names]  # one level down: a module's own helper that runs the child
    helper_spawns = any(
        getattr(h, "__code__", None) is not None
        and "subprocess" in h.__code__.co_names
        and h.__module__ == fn.__module__
        for h in helpers
    )
    cli = fn.__globals__.get("rsynth")
    return (
        bool(PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())))
        or "subprocess" in names
        or helper_spawns
        or ("rsynth" in names and callable(cli) and not isinstance(cli, type(pytest)))
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Subprocess and Lean tests are slow; longest files first (stable: each file keeps its own order)."""
    for item in items:
        if starts_processes(item):
            item.add_marker(pytest.mark.slow)

    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return next((i for i, name in enumerate(LONGEST_FIRST) if path.endswith("tests/" + name)), len(LONGEST_FIRST))

    items.sort(key=rank)


def _shared_tmp(config: pytest.Config, factory: pytest.TempPathFactory) -> Path:
    """This run's temporary directory, the same for every pytest-xdist worker of the run."""
    base = factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


@pytest.fixture(scope="session")
def lean_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The session's one real Lean batch (tests/lean_support.py): every Lean check of the suite."""
    from tests.lean_support import LeanRun, have_lean

    if not have_lean():
        pytest.skip("no Lean: run `make lean` to install the wasm Lean (or put `lean` on PATH)")
    run = LeanRun(
        _shared_tmp(request.config, tmp_path_factory) / "lean-run",
        tmp_path_factory.mktemp("lean-items"),
        lambda: request.getfixturevalue("tiny_model_dir"),
    )
    yield run
    run.close(wait=request.session.testsfailed == 0)


@pytest.fixture(scope="session", autouse=True)
def _lean_starts_first(request: pytest.FixtureRequest) -> None:
    """Start the Lean batch before the first test when any selected test needs it: its minutes of
    wasm start-up then overlap the rest of the suite. A failure to start is left for the Lean tests
    to report (they ask for `lean_run` again and get its error), never charged to every test."""
    from tests.lean_support import have_lean

    if have_lean() and any("lean_run" in item.fixturenames for item in request.session.items):
        try:
            request.getfixturevalue("lean_run")
        except Exception:
            pass


@pytest.fixture()
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for `python -m rsynth` subprocesses: this checkout first, a private cache, offline hub."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_DATASETS_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["COLUMNS"] = "200"
    return env


def pytest_report_header(config: pytest.Config) -> str:
    """Name the code-sandbox backends at the top of every run: the hostile-program tests run under
    each, and fail (never skip) when there is none."""
    from rsynth.verifiers.code.sandbox import available_backends

    return f"rsynth sandbox backends: {', '.join(available_backends()) or 'NONE (hostile-program tests will fail: make sandbox)'}"
