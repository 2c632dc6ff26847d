"""Every stage goes through the one stage runner (`rsynth.runner.stage.execute`).

Two views: the code (only the runner opens a stage's `ShardSetWriter` and drives `run_stage`; a
merge of finished partitions is not a stage), and the outputs (every stage directory a build writes
records the identity of the input it read, which only the runner does: `tests/recipes/test_build.py`
and `tests/stages/test_consensus.py` check that on real builds with `assert_on_runner`).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = "rsynth/runner/stage.py"
# Not stages: the writer's own module, and `merge_outputs` (joins finished partitions into one directory).
NOT_STAGES = {"rsynth/data/shards.py", "rsynth/runner/partition.py", "rsynth/runner/loop.py"}
# Modules still running their own stage loop; each entry is a defect to remove, not a licence.
OFF_RUNNER: set[str] = set()  # modules still running their own stage loop (none)


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


MODULES = sorted(
    str(p.relative_to(REPO))
    for p in (REPO / "rsynth").rglob("*.py")
    if str(p.relative_to(REPO)) not in NOT_STAGES | {RUNNER}
)


@pytest.mark.parametrize("module", MODULES)
def test_only_the_runner_opens_a_stage_writer(module: str):
    loops = _calls(REPO / module) & {"ShardSetWriter", "run_stage"}
    if module in OFF_RUNNER:
        assert loops, f"{module} is on the runner now: remove it from OFF_RUNNER"
    else:
        assert not loops, f"{module} calls {sorted(loops)}: declare a Stage and run it with runner.stage.execute"


def test_the_runner_is_what_the_check_looks_for():
    assert {"ShardSetWriter", "run_stage"} <= _calls(REPO / RUNNER)


def assert_on_runner(out: Path) -> None:
    """An output directory a stage wrote through the runner: its manifest names the stage and records
    the identity (path, size, content hash) of every input it read."""
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    assert manifest.get("complete") and manifest.get("stage"), out
    inputs = manifest.get("inputs")
    assert inputs and all(isinstance(i, dict) and i for i in inputs), f"{out}: manifest records no input identity"
