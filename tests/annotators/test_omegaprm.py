import math
import random
from collections import Counter

import pytest

from rsynth.annotators.base import Counters, GivenTrace, Rollout, drive
from rsynth.annotators.omegaprm import (
    Candidate,
    OmegaPRMConfig,
    Tree,
    omegaprm_search,
    probes_needed,
    q_value,
    u_value,
)
from rsynth.annotators.scripted import ScriptedPolicy, planted_trace, true_first_error

EXACT = dict(p=1.0, q=0.0)  # every clean prefix recovers, no dirty one does: the truth is observable
# Tests of the search's mechanics run the paper's rules (OmegaPRMConfig.paper); rsynth's additions
# (fixes 1-3, sequential estimates) are tested in tests/annotators/test_omegaprm_extensions.py.


def ro(correct: bool, tokens: int = 60, steps=("x", "y")) -> Rollout:
    return Rollout(tuple(steps), tokens, None, correct, "correct" if correct else "incorrect")


def requested_prefixes(policy: ScriptedPolicy) -> list[tuple]:
    return [r.prefix for batch in policy.batches for r in batch]


@pytest.mark.parametrize(
    "m,e", [(8, 0), (8, 7), (8, 3), (8, None), (1, 0), (1, None), (2, 0), (2, 1), (13, 12), (32, 17)]
)
def test_binary_search_finds_planted_first_error(m, e):
    policy = ScriptedPolicy(m, **EXACT)
    res = drive(omegaprm_search(OmegaPRMConfig.paper(), 0, planted_trace(m, e)), policy)
    (t,) = res.traces
    assert res.outcome == "labelled" and t.first_error == (-1 if e is None else e)
    assert res.counters.requests <= probes_needed(m) if e is not None else res.counters.requests == 0
    assert all(len(b) == 1 and b[0].k == 16 for b in policy.batches)
    expected_hard = [e is None or i < e for i in range(m)]
    assert t.labels["step_hard"] == expected_hard and t.labels["label_method"] == "omegaprm:first_error"
    assert t.labels["step_k"][-1] == 1 and t.labels["step_mc"][-1] == (1.0 if e is None else 0.0)


def test_random_planted_first_errors_with_noisy_clean_prefixes():
    rng = random.Random(3)
    for seed in range(100):
        m = rng.randint(1, 40)
        trace = planted_trace(m, rng.randrange(m))
        res = drive(omegaprm_search(OmegaPRMConfig.paper(), seed, trace), ScriptedPolicy(m, p=0.7, q=0.0, seed=seed))
        assert res.traces[0].first_error == true_first_error(trace.steps)


def test_prefix_values_recorded_only_where_estimated():
    trace = planted_trace(8, 5)
    res = drive(omegaprm_search(OmegaPRMConfig.paper(k=4), 0, trace), ScriptedPolicy(8, **EXACT))
    # bisection probes [:4] (ok), [:6] (bad), [:5] (ok) -> steps 3, 5, 4 known; 7 = own verdict
    assert res.traces[0].labels["step_mc"] == [None, None, None, 1.0, 1.0, 0.0, None, 0.0]
    assert sorted(n.depth for n in res.nodes) == [4, 5, 6]
    assert all(n.k == 4 and n.visits == 1 for n in res.nodes)


def test_q_and_u_numbers():
    cfg = OmegaPRMConfig.paper()
    assert q_value(cfg, 0.5, 100) == pytest.approx(0.5**0.5 * 0.9**0.2) == pytest.approx(0.6923624, abs=1e-6)
    assert q_value(cfg, 1.0, 0) == 1.0
    assert u_value(cfg, 4, 1) == pytest.approx(0.125 * 2 / 2)
    assert u_value(cfg, 0, 0) == 0.0


def test_selection_picks_highest_q_plus_u_on_a_hand_built_tree():
    cfg = OmegaPRMConfig.paper()
    tree = Tree(cfg)
    tree.add((), [ro(True), ro(False, 400, ("a",)), ro(False, 100, ("b",))])  # MC 1/3, two wrong rollouts pooled
    tree.add(("r",), [ro(True), ro(True), ro(True), ro(False, 100)])  # MC 3/4
    tree.add(("z",), [ro(False), ro(False)])  # MC 0: nothing pooled
    tree.add(("w",), [ro(True), ro(True)])  # MC 1: nothing pooled
    tree.nodes[()].visits = 3
    assert [(c.state, c.rollout.num_tokens) for c in tree.pool] == [((), 400), ((), 100), (("r",), 100)]
    total = 3 + 1 + 1 + 1
    expect = [
        0.5 ** (2 / 3) * 0.9 ** (400 / 500) + 0.125 * math.sqrt(total) / 4,
        0.5 ** (2 / 3) * 0.9 ** (100 / 500) + 0.125 * math.sqrt(total) / 4,
        0.5 ** (1 / 4) * 0.9 ** (100 / 500) + 0.125 * math.sqrt(total) / 2,
    ]
    assert [tree.score(c) for c in tree.pool] == pytest.approx(expect)
    assert expect[2] == max(expect) and tree.best(random.Random(0)) is tree.pool[2]
    # equal Q (same MC, same length): U makes the less visited state win
    tree.nodes[("r",)].mc, tree.nodes[("r",)].visits = 1 / 3, 5
    assert tree.best(random.Random(0)) is tree.pool[1]


def test_exact_ties_are_broken_by_the_seeded_rng():
    tree = Tree(OmegaPRMConfig.paper())
    tree.add((), [ro(True), ro(False, steps=("a",)), ro(False, steps=("b",))])
    picks = {tree.best(random.Random(s)).rollout.steps for s in range(20)}
    assert picks == {("a",), ("b",)}
    assert tree.best(random.Random(5)) is tree.best(random.Random(5))


def test_pool_dedupes_full_solutions_and_skips_empty_continuations():
    tree = Tree(OmegaPRMConfig.paper())
    tree.add((), [ro(True), ro(False, steps=("a",)), ro(False, steps=("a",)), ro(False, steps=())])
    assert [c.full for c in tree.pool] == [("a",)]


def test_visits_count_estimate_plus_selections():
    res = drive(omegaprm_search(OmegaPRMConfig.paper(max_search=3), 1), ScriptedPolicy(8, p=0.5, q=0.0, seed=1))
    root = next(n for n in res.nodes if n.prefix_steps == ())
    assert root.visits >= 2  # estimated once, then its wrong rollouts were selected
    selections = sum(n.visits - 1 for n in res.nodes)
    assert selections == len(res.traces) == 3


def test_root_search_never_estimates_a_prefix_twice_and_labels_pool_rollouts():
    policy = ScriptedPolicy(16, p=0.6, q=0.0, seed=4)
    res = drive(omegaprm_search(OmegaPRMConfig.paper(k=8, rollout_budget=2000, max_search=15), 9), policy)
    prefixes = requested_prefixes(policy)
    assert len(prefixes) == len(set(prefixes)) == len(res.nodes) == res.counters.requests
    assert res.outcome == "searched" and len(res.traces) == 15
    for t in res.traces:
        assert not t.correct and t.first_error == true_first_error(t.steps)
        assert t.labels["step_progress"][0] is None or t.labels["step_mc"][0] is not None
    assert res.nodes[0].prefix_steps == () and res.nodes[0].k == 32


def test_budget_is_never_exceeded():
    for budget in (40, 64, 100, 150, 200):
        res = drive(omegaprm_search(OmegaPRMConfig.paper(rollout_budget=budget), 2), ScriptedPolicy(32, p=0.5, seed=2))
        assert res.counters.completions <= budget and res.stop_reason == "budget"
    assert res.counters.completions > 200 - 16 * probes_needed(32)  # and it is mostly used


def test_max_search_and_empty_pool_stop_the_search():
    res = drive(omegaprm_search(OmegaPRMConfig.paper(max_search=2, rollout_budget=10**6), 0), ScriptedPolicy(16, p=0.5))
    assert len(res.traces) == 2 and res.stop_reason == "max_search"
    # one-step solutions: every wrong root rollout is its own first error, searched for free
    res = drive(omegaprm_search(OmegaPRMConfig.paper(max_search=100), 0), ScriptedPolicy(1, p=0.5))
    assert res.stop_reason == "pool_empty" and res.counters.requests == 1
    root = res.nodes[0]
    assert len(res.traces) == root.k - root.correct and all(t.first_error == 0 for t in res.traces)


@pytest.mark.parametrize("p,outcome", [(1.0, "all_correct"), (0.0, "all_wrong")])
def test_prefilter_outcomes(p, outcome):
    res = drive(omegaprm_search(OmegaPRMConfig.paper(), 0), ScriptedPolicy(8, p=p, q=0.0))
    assert res.outcome == outcome and res.traces == [] and res.counters.requests == 1
    assert [(n.prefix_steps, n.mc, n.k) for n in res.nodes] == [((), p, 32)]


def test_given_correct_trace_is_all_positive_without_rollouts():
    res = drive(
        omegaprm_search(OmegaPRMConfig.paper(), 0, planted_trace(5, None)), lambda reqs: pytest.fail("no rollouts")
    )
    assert res.traces[0].labels["step_hard"] == [True] * 5 and res.traces[0].first_error == -1


def test_given_wrong_trace_searches_its_pool_only_when_asked():
    trace = planted_trace(16, 9)
    plain = drive(omegaprm_search(OmegaPRMConfig.paper(k=8), 0, trace), ScriptedPolicy(16, p=0.6, q=0.0, seed=1))
    more = drive(
        omegaprm_search(OmegaPRMConfig.paper(k=8, search_given=True), 0, trace),
        ScriptedPolicy(16, p=0.6, q=0.0, seed=1),
    )
    assert len(plain.traces) == 1 and plain.stop_reason is None
    assert len(more.traces) > 1 and more.traces[0].steps == trace.steps and more.stop_reason is not None
    assert more.counters.completions <= 200
    assert all(t.first_error == true_first_error(t.steps) for t in more.traces)


def test_deterministic_given_seed():
    def run(seed):
        return drive(omegaprm_search(OmegaPRMConfig.paper(k=8), seed), ScriptedPolicy(12, p=0.5, q=0.05, seed=3))

    assert run(11) == run(11)
    assert len({tuple(t.steps for t in run(s).traces) for s in range(6)}) > 1  # the seed does steer ties


def test_every_yield_is_one_request_per_distinct_prefix_with_positive_k():
    policy = ScriptedPolicy(10, p=0.5, q=0.05, seed=8)
    drive(omegaprm_search(OmegaPRMConfig.paper(), 8), policy)
    for batch in policy.batches:
        assert all(r.k >= 1 for r in batch) and len({r.prefix for r in batch}) == len(batch)
    assert Counter(len(b) for b in policy.batches) == {1: len(policy.batches)}


def test_config_validation():
    for bad in (dict(k=0), dict(alpha=0.0), dict(beta=1.5), dict(rollout_budget=-1)):
        with pytest.raises(ValueError):
            OmegaPRMConfig(**bad)
    with pytest.raises(ValueError):
        GivenTrace((), False)
    assert Candidate((), ro(False)).full == ("x", "y")
    assert Counters() == Counters(0, 0, 0)


def test_known_prefixes_are_reused_across_rollouts_that_share_steps():
    """Wrong rollouts that share their first steps bisect through the same prefixes: asked once."""
    canon = ("s1", "s2", "s3", "s4")
    made = iter(range(10**6))

    def policy(reqs):
        out = []
        for r in reqs:
            rest = canon[len(r.prefix) : -1]
            ok = "s3" not in r.prefix
            out.append([Rollout(rest + (f"end{next(made)}",), 30, None, ok and i % 2 == 0, "") for i in range(r.k)])
        seen.extend(r.prefix for r in reqs)
        return out

    seen: list[tuple] = []
    res = drive(omegaprm_search(OmegaPRMConfig.paper(max_search=10, k=4, k0=8), 0), policy)
    assert seen == [(), canon[:2], canon[:3]]
    assert len(res.traces) == 4 + 2 and res.stop_reason == "pool_empty"  # wrong rollouts of () and s1,s2
    assert all(t.first_error == 2 for t in res.traces)


def test_min_correct_makes_bisection_resist_lucky_recoveries():
    """With q > 0 a prefix past the error sometimes yields one right rollout; demanding two helps."""

    def accuracy(min_correct):
        rng, hits = random.Random(0), 0
        for seed in range(150):
            trace = planted_trace(32, rng.randrange(32))
            cfg = OmegaPRMConfig.paper(k=8, min_correct=min_correct)
            res = drive(omegaprm_search(cfg, seed, trace), ScriptedPolicy(32, p=0.7, q=0.05, seed=seed))
            hits += res.traces[0].first_error == true_first_error(trace.steps)
        return hits / 150

    assert accuracy(2) > accuracy(1) + 0.15
    with pytest.raises(ValueError):
        OmegaPRMConfig(k=4, min_correct=5)
