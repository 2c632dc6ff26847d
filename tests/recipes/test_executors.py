"""Executors are objects: `--executor NAME` picks one, a build runs every stage through the one it is
given (a caller's own included), and a stage that cannot be partitioned never goes to Ray.
(The Ray executor's rows against the local ones: tests/runner/test_partitions.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from rsynth import api
from rsynth.errors import UserError
from rsynth.recipes import ray_executor
from rsynth.recipes.adapters import STAGES, StageContext, StageKind
from rsynth.recipes.executors import EXECUTORS, LocalExecutor, RayExecutor, as_executor, executor_named

OPTIONS = {"blocks": 3, "replicas": 2, "gpus_per_replica": 0.5, "address": "auto", "num_cpus": 2}


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("local", {}, LocalExecutor()),
        ("local", OPTIONS, LocalExecutor()),  # the --ray-* options mean nothing here
        ("ray", {}, RayExecutor()),
        ("ray", OPTIONS, RayExecutor(3, 2, 0.5, "auto", 2)),
        ("ray", {"blocks": 8}, RayExecutor(blocks=8)),
    ],
)
def test_executor_named(name: str, options: dict[str, Any], expected):
    assert executor_named(name, **options) == expected
    assert as_executor(name) == type(expected)()
    assert as_executor(expected) is expected


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: executor_named("slurm"), "--executor 'slurm': expected one of local, ray"),
        (lambda: RayExecutor(blocks=0), "--ray-blocks and --ray-replicas must be >= 1"),
        (lambda: RayExecutor(replicas=0), "--ray-blocks and --ray-replicas must be >= 1"),
    ],
)
def test_bad_executors_are_one_line_errors(make, message: str):
    with pytest.raises(UserError) as err:
        make()
    assert str(err.value) == message
    assert sorted(EXECUTORS) == ["local", "ray"]


class Recording(LocalExecutor):
    """A caller's own executor: runs locally and records what it was asked to run."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def run_checked(self, kind: StageKind, ctx: StageContext) -> dict[str, Any]:
        self.ran.append((kind.name, ctx.stage_id))
        return super().run_checked(kind, ctx)


def test_a_build_runs_every_stage_on_the_executor_it_is_given(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: t\nout: {tmp_path / 'out'}\nstages:\n"
        "  - problems:\n      n: 6\n"
        "  - problems:\n      id: more\n      n: 3\n      seed: 7\n"
    )
    executor = Recording()
    outputs = api.build(recipe, executor=executor)
    assert executor.ran == [("problems", "problems"), ("problems", "more")]
    assert {k: v["data"].num_rows for k, v in outputs.items()} == {"problems": 6, "more": 3}
    again = Recording()
    api.build(recipe, executor=again)
    assert again.ran == []  # finished stages are skipped before any executor is asked


def test_a_stage_that_cannot_be_partitioned_runs_locally_under_ray(tmp_path, monkeypatch):
    def no_ray(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a non-shardable stage went to Ray")

    monkeypatch.setattr(ray_executor, "run_on_ray", no_ray)
    api.generate_problems(4, out=tmp_path / "p")
    kind = STAGES["export"]
    assert not kind.shardable
    params = {key: spec.default for key, spec in kind.fields.items()}
    ctx = StageContext("export", params, str(tmp_path / "p"), tmp_path / "e", overwrite=False, quiet=True)
    with pytest.raises(UserError, match="nothing to export: 4 rows in data/, none with step labels"):
        RayExecutor(blocks=2).run(kind, ctx)  # the export stage itself read the 4 problems, here
    with pytest.raises(AssertionError, match="went to Ray"):
        RayExecutor(blocks=2).run(STAGES["problems"], ctx)  # a shardable one does go to Ray
