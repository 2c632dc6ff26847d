"""One label per (question, prefix): a property test over random scripted policies and search settings.

Every search output must give each step prefix a single hard label, never call a prefix estimated
dead correct, and every export (hard, threshold, soft) must agree with the row's `first_error`.
"""

from __future__ import annotations

import random

import pytest

from rsynth.annotators.base import drive
from rsynth.annotators.labels import first_error_of
from rsynth.annotators.omegaprm import OmegaPRMConfig, omegaprm_search
from rsynth.annotators.scripted import ScriptedPolicy, planted_trace
from rsynth.data.formats import ExportError, export_row, step_labels


def random_case(seed: int):
    """A random policy regime, search configuration and (half the time) a given trace."""
    rng = random.Random(seed)
    steps = rng.randint(2, 14)
    policy = ScriptedPolicy(
        steps,
        p=rng.uniform(0.2, 0.95),
        q=rng.choice([0.0, 0.05, 0.2, 0.4]),
        seed=seed,
        decline=rng.choice(["step", "gradual"]),
    )
    k = rng.choice([2, 4, 8, 16])
    config = OmegaPRMConfig(
        k0=rng.choice([4, 8, 16]),
        k=k,
        min_correct=rng.randint(1, min(k, 3)),
        chunks=rng.choice([1, 2]),
        max_search=rng.randint(1, 12),
        rollout_budget=rng.choice([40, 120, 400]),
        pool_alive_only=rng.random() < 0.7,
        dead_delta=rng.choice([0.0, 0.05]),
        search_given=rng.random() < 0.5,
        given_k0=rng.choice([0, 8]),
    )
    given = planted_trace(steps, rng.choice([None, *range(steps)])) if rng.random() < 0.5 else None
    return config, policy, given


def rows_of(result) -> list[dict]:
    return [{"id": f"t{i}", "problem": "q", "steps": list(t.steps), **t.labels} for i, t in enumerate(result.traces)]


@pytest.mark.parametrize("seed", range(300))
def test_no_prefix_carries_two_labels_and_exports_agree_with_first_error(seed):
    config, policy, given = random_case(seed)
    result = drive(omegaprm_search(config, seed, given), policy)
    dead = {n.prefix_steps for n in result.nodes if n.prefix_steps and result_alive(result, n) is False}
    labels: dict[tuple[str, ...], set] = {}
    for row in rows_of(result):
        hard = row["step_hard"]
        assert row["first_error"] == first_error_of(hard)
        for i, h in enumerate(hard):
            prefix = tuple(row["steps"][: i + 1])
            labels.setdefault(prefix, set()).add(h)
            assert not (h and prefix in dead), f"step {i} on a prefix estimated dead is labelled correct"
        e = row["first_error"]
        assert step_labels(row, "hard", None) == [e < 0 or i < e for i in range(len(hard))]
        for x in (0.25, 0.5, 1.0):
            exported = step_labels(row, "threshold", x, "mask")
            assert not any(ok for i, ok in enumerate(exported) if e >= 0 and i >= e), (
                "a step at/after first_error exported correct"
            )
            assert [ok is None for ok in exported] == [m is None for m in row["step_mc"]]
        assert export_row(row, "processbench", "hard", None, "t")["label"] == e
        soft = step_labels(row, "soft", None, "mask")
        assert [s is None for s in soft] == [m is None for m in row["step_mc"]]  # estimates or absent, never a fill
    contradictions = {p: v for p, v in labels.items() if len(v) > 1}
    assert not contradictions


def result_alive(result, node) -> bool | None:
    """The evidence for an estimated prefix: the trace's own verdict where a trace ends there, else
    the search's decision on the node."""
    ends = {t.steps: t.correct for t in result.traces}
    return ends.get(node.prefix_steps, node.alive)


def test_a_right_rollout_through_a_dead_prefix_is_not_emitted_as_all_positive():
    # p high, q 0.4: lucky recoveries are common, so right rollouts cross prefixes the search found dead
    crossed = 0
    for seed in range(40):
        cfg = OmegaPRMConfig(k0=16, k=8, min_correct=3, chunks=1, pool_alive_only=False)
        res = drive(omegaprm_search(cfg, seed), ScriptedPolicy(10, p=0.8, q=0.4, seed=seed))
        zero = {n.prefix_steps for n in res.nodes if n.prefix_steps and n.alive is False}
        for t in res.traces:
            crossed += any(t.steps[: i + 1] in zero for i in range(len(t.steps)))
            assert all(not t.labels["step_hard"][i] for i in range(len(t.steps)) if t.steps[: i + 1] in zero)
    assert crossed > 0  # the case occurs, and every such trace is labelled bad from the dead prefix on


def test_refuse_names_the_trace_and_step_and_drop_raises_for_the_caller():
    row = {"id": "x", "steps": ["a", "b"], "step_hard": [True, True], "step_mc": [None, 1.0], "first_error": -1}
    with pytest.raises(ExportError, match=r"trace 'x': step 0 has no MC estimate"):
        step_labels(row, "soft", None)
    from rsynth.data.formats import Unestimated

    with pytest.raises(Unestimated):
        step_labels(row, "threshold", 0.5, "drop")
    assert step_labels(row, "soft", None, "mask") == [None, 1.0]
    assert step_labels(row, "hard", None, "refuse") == [True, True]  # hard labels are defined for every step
