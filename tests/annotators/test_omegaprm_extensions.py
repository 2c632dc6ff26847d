"""rsynth's additions to OmegaPRM: each test's output changes when its change is switched off.

Fix 1 pools only still-right states, fix 2 emits right rollouts as all-positive traces, fix 3 falls
back to a cheaper candidate when the best one does not fit the budget; sequential estimates sample in
chunks and stop once the decision is settled.
"""

from __future__ import annotations

import random

import pytest

from rsynth.annotators.base import Counters, Rollout, RolloutRequest, ask, drive
from rsynth.annotators.omegaprm import OmegaPRMConfig, Tree, binom_cdf, omegaprm_search, sequential_plan
from rsynth.annotators.scripted import ScriptedPolicy, planted_trace, true_first_error
from rsynth.answers import NO_ANSWER


def ro(correct: bool, steps=("x", "y"), tokens: int = 60, status: str | None = None) -> Rollout:
    return Rollout(tuple(steps), tokens, "a", correct, status or ("correct" if correct else "incorrect"))


# --- fix 1: pool only states that pass the decision rule ------------------------------------------


def test_dead_states_are_not_pooled_but_the_root_is():
    cfg = OmegaPRMConfig(k=8, min_correct=2)
    wrong = [ro(False, (f"w{i}",)) for i in range(7)]
    tree = Tree(cfg)
    tree.add(("s",), [ro(True), *wrong])  # 1 of 8 right: dead under min_correct=2
    assert tree.pool == [] and tree.alive[("s",)] is False
    tree.add((), [ro(True), *wrong])  # the root holds no step that could be wrong: pooled
    assert len(tree.pool) == 7
    paper = Tree(OmegaPRMConfig(k=8, min_correct=2, pool_alive_only=False))
    paper.add(("s",), [ro(True), *wrong])
    assert len(paper.pool) == 7  # the paper pools any 0 < MC < 1


def test_pooling_only_alive_states_raises_root_mode_accuracy_under_lucky_recoveries():
    def accuracy(pool_alive_only: bool) -> float:
        hits = total = 0
        for seed in range(40):
            cfg = OmegaPRMConfig(k=8, min_correct=2, chunks=1, pool_alive_only=pool_alive_only)
            res = drive(omegaprm_search(cfg, seed), ScriptedPolicy(16, p=0.5, q=0.15, seed=seed))
            wrong = [t for t in res.traces if not t.correct]
            hits += sum(t.first_error == true_first_error(t.steps) for t in wrong)
            total += len(wrong)
        return hits / total

    # 0.495 vs 0.474: one label per prefix (dead wins) already moves a dead pooled state's error into
    # the state itself, which closed most of the gap (0.417 before it); pooling alive states still wins.
    assert accuracy(True) > accuracy(False) + 0.01


def test_rollouts_without_an_answer_are_not_pooled():
    tree = Tree(OmegaPRMConfig())
    tree.add((), [ro(True), ro(False, ("a",)), ro(False, ("b",), status=NO_ANSWER)])
    assert [c.full for c in tree.pool] == [("a",)]


# --- fix 2: right rollouts become all-positive traces ----------------------------------------------


def test_root_search_emits_distinct_clean_positive_traces_with_their_mc_path():
    cfg = OmegaPRMConfig(k=8, chunks=1)
    res = drive(omegaprm_search(cfg, 3), ScriptedPolicy(12, p=0.5, q=0.0, seed=3))
    positives = [t for t in res.traces if t.correct]
    assert positives and all(t.first_error == -1 and all(t.labels["step_hard"]) for t in positives)
    assert all(true_first_error(t.steps) == -1 for t in positives)
    assert len({t.steps for t in res.traces}) == len(res.traces)  # deduplicated
    deep = [t for t in positives if any(m is not None for m in t.step_mc[:-1])]
    assert deep  # positives from bisection states carry the MC values of the prefixes the tree knows
    for t in deep:
        for i, m in enumerate(t.step_mc[:-1]):
            node = next((n for n in res.nodes if n.prefix_steps == t.steps[: i + 1]), None)
            assert m == (None if node is None else node.mc)
    off = drive(
        omegaprm_search(OmegaPRMConfig(k=8, chunks=1, positive_traces=False), 3),
        ScriptedPolicy(12, p=0.5, q=0.0, seed=3),
    )
    assert not any(t.correct for t in off.traces)
    assert [t for t in res.traces if not t.correct] == off.traces


def test_identical_right_rollouts_become_one_positive_trace():
    def policy(reqs: list[RolloutRequest]):
        return [[ro(i % 2 == 0, ("same", "end") if i % 2 == 0 else (f"w{i}", "z")) for i in range(r.k)] for r in reqs]

    res = drive(omegaprm_search(OmegaPRMConfig(k0=8, k=4, max_search=0), 0), policy)
    assert [t.steps for t in res.traces if t.correct] == [("same", "end")]


# --- fix 3: a cheaper candidate when the best one does not fit ---------------------------------------


def budget_policy(reqs: list[RolloutRequest]):
    """Root: one long wrong rollout with few tokens (the best Q), one short expensive one, two right."""
    out = []
    for r in reqs:
        if r.prefix == ():
            long, short = tuple(f"l{i}" for i in range(32)), ("s0", "s1")
            out.append([ro(False, long, tokens=10), ro(False, short, tokens=400), ro(True), ro(True)][: r.k])
        else:
            out.append([ro(True, ("c",)) for _ in range(r.k)])
    return out


def test_budget_fallback_bisects_the_best_candidate_that_fits():
    base = dict(k0=4, k=4, min_correct=1, chunks=1, positive_traces=False, rollout_budget=4 + 10)
    on = drive(omegaprm_search(OmegaPRMConfig(**base), 0), budget_policy)
    off = drive(omegaprm_search(OmegaPRMConfig(**base, budget_fallback=False), 0), budget_policy)
    assert off.traces == [] and off.stop_reason == "budget" and off.counters.completions == 4
    assert [t.steps for t in on.traces] == [("s0", "s1")] and on.counters.completions == 8
    assert on.stop_reason == "budget"  # the long one never fits


# --- sequential MC estimates -------------------------------------------------------------------------


def test_alive_prefixes_stop_at_min_correct_and_record_the_k_drawn():
    cfg = OmegaPRMConfig(k=8, min_correct=2, chunks=4, given_k0=0)  # no pass rate: the plain rule
    policy = ScriptedPolicy(16, p=1.0, q=0.0)
    res = drive(omegaprm_search(cfg, 0, planted_trace(16, 11)), policy)
    assert res.traces[0].first_error == 11
    by_prefix = {n.prefix_steps: n for n in res.nodes}
    for prefix, node in by_prefix.items():
        clean = true_first_error(prefix) < 0
        assert node.k == (2 if clean else 8) and node.correct == (2 if clean else 0)
    # a dead prefix without a known pass rate is drawn in 4 chunks, draws 0..3, never served twice
    dead = [r for b in policy.batches for r in b if true_first_error(r.prefix) >= 0]
    assert sorted(r.draw for r in dead if r.prefix == dead[0].prefix) == [0, 1, 2, 3]
    assert res.traces[0].labels["step_k"] == [
        by_prefix[t.steps[: i + 1]].k if t.steps[: i + 1] in by_prefix else None for t in res.traces for i in range(15)
    ] + [1]
    whole = drive(
        omegaprm_search(OmegaPRMConfig(k=8, min_correct=2, chunks=1, given_k0=0), 0, planted_trace(16, 11)),
        ScriptedPolicy(16, p=1.0, q=0.0),
    )
    assert whole.traces[0].first_error == 11 and whole.counters.completions > res.counters.completions


def test_sequential_plan_is_the_first_chunk_meeting_the_error_bound():
    cfg = OmegaPRMConfig(k=16, min_correct=2, chunks=4, dead_delta=0.05)
    assert binom_cdf(1, 4, 0.7) > 0.05 >= binom_cdf(1, 8, 0.7)
    # at n*=8 a rate-0.7 prefix has <= 2 right with p 0.011 and <= 3 with p 0.058: the bar is 3 of 8
    assert binom_cdf(2, 8, 0.7) <= 0.05 < binom_cdf(3, 8, 0.7)
    assert sequential_plan(cfg, 0.7) == (8, 3)
    assert sequential_plan(cfg, 0.1) == (16, 2)  # no n <= k can call a rate-0.1 prefix dead: plain rule
    assert sequential_plan(OmegaPRMConfig(chunks=1, k=16, min_correct=2), 0.7) == (16, 8)  # whole k, adaptive bar
    assert sequential_plan(OmegaPRMConfig(dead_delta=0, k=16, min_correct=2), 0.7) == (16, 2)
    assert sequential_plan(cfg, None) == (16, 2)


def estimate_alive(cfg: OmegaPRMConfig, rate: float, rng: random.Random) -> bool:
    tree = Tree(cfg)
    gen = tree.estimate(("p",), Counters())
    try:
        batch = next(gen)
        while True:
            batch = gen.send([[ro(rng.random() < rate) for _ in range(r.k)] for r in batch])
    except StopIteration:
        pass
    return tree.alive[("p",)]


def test_the_dead_rule_keeps_its_error_bound_and_resists_lucky_recoveries():
    cfg = OmegaPRMConfig(k=16, min_correct=2, chunks=4, dead_rate=0.7)
    res = drive(omegaprm_search(cfg, 0, planted_trace(16, 3)), ScriptedPolicy(16, p=0.7, q=0.0, seed=1))
    assert {n.k for n in res.nodes if true_first_error(n.prefix_steps) >= 0} == {8}
    rng = random.Random(0)
    dead = sum(not estimate_alive(cfg, 0.7, rng) for _ in range(2000)) / 2000
    assert dead <= binom_cdf(2, 8, 0.7) + 0.01  # the stated bound (0.011 at n*=8, T=3) holds
    lucky = sum(estimate_alive(cfg, 0.2, rng) for _ in range(2000)) / 2000
    plain = OmegaPRMConfig(k=16, min_correct=2, chunks=4, dead_delta=0)
    lucky_plain = sum(estimate_alive(plain, 0.2, rng) for _ in range(2000)) / 2000
    assert lucky < 0.25 and lucky_plain > 0.7  # q = 0.2: the plain rule calls most dead prefixes alive


def test_root_mode_uses_the_prefilter_pass_rate_for_the_dead_rule():
    cfg = OmegaPRMConfig(k=16, min_correct=2, chunks=4)
    res = drive(omegaprm_search(cfg, 1), ScriptedPolicy(16, p=0.8, q=0.0, seed=2))
    root = next(n for n in res.nodes if n.prefix_steps == ())
    n_star, need = sequential_plan(cfg, root.mc)
    assert n_star < 16 and need > 2
    assert all(n.k <= n_star for n in res.nodes if n.prefix_steps)


def test_sequential_estimates_cost_fewer_completions_per_trace_at_equal_accuracy():
    def run(chunks: int) -> tuple[float, float]:
        hits = comps = 0
        for seed in range(60):
            trace = planted_trace(16, seed % 16)
            res = drive(
                omegaprm_search(OmegaPRMConfig(k=16, chunks=chunks, dead_rate=0.7), seed, trace),
                ScriptedPolicy(16, p=0.7, q=0.02, seed=seed),
            )
            hits += res.traces[0].first_error == true_first_error(trace.steps)
            comps += res.counters.completions
        return hits / 60, comps / 60

    (acc_seq, cost_seq), (acc_whole, cost_whole) = run(4), run(1)
    assert cost_seq < 0.6 * cost_whole and acc_seq >= acc_whole - 0.02


def test_request_draw_validation_and_merge():
    with pytest.raises(ValueError):
        RolloutRequest((), 1, -1)

    gen = ask([RolloutRequest(("a",), 2, 0), RolloutRequest(("a",), 2, 1)], Counters())
    assert next(gen) == [RolloutRequest(("a",), 2, 0), RolloutRequest(("a",), 2, 1)]  # draws are not merged


def test_a_wrong_given_trace_first_learns_the_pass_rate_of_its_question():
    cfg = OmegaPRMConfig(k=16, min_correct=2, chunks=4, given_k0=16)
    policy = ScriptedPolicy(16, p=0.8, q=0.0, seed=5)
    res = drive(omegaprm_search(cfg, 0, planted_trace(16, 9)), policy)
    assert policy.batches[0] == [RolloutRequest((), 16)] and res.traces[0].first_error == 9
    root = next(n for n in res.nodes if n.prefix_steps == ())
    assert all(n.k <= sequential_plan(cfg, root.mc)[0] < 16 for n in res.nodes if n.prefix_steps)
    none = drive(
        omegaprm_search(OmegaPRMConfig(given_k0=0), 0, planted_trace(16, 9)), ScriptedPolicy(16, p=0.8, q=0.0, seed=5)
    )
    assert all(n.prefix_steps for n in none.nodes)
    right = drive(omegaprm_search(cfg, 0, planted_trace(16, None)), lambda reqs: pytest.fail("no rollouts"))
    assert right.traces[0].first_error == -1  # a right given trace still costs nothing


@pytest.mark.parametrize("first_error", [0, 5, 17, 30])
def test_every_bisection_request_was_hinted_by_the_batch_before_it(first_error):
    """`Batch.likely` names the estimate's next chunk and both possible next probes, so a driver that
    prefetched the hints would have every bisection request already running (the first probe of a
    given trace follows the question's pass-rate request, which cannot know the trace's length)."""
    from rsynth.annotators.base import Batch

    policy = ScriptedPolicy(32, p=0.7, q=0.02, seed=first_error)
    search = omegaprm_search(OmegaPRMConfig(), 0, planted_trace(32, first_error))
    batches: list[Batch] = []
    try:
        batch = next(search)
        while True:
            batches.append(batch)
            batch = search.send(policy(batch))
    except StopIteration as stop:
        result = stop.value
    bisection = batches[2:]  # after the pass-rate request and the first probe
    assert len(bisection) >= 3 and result.traces[0].first_error == first_error
    for before, now in zip(batches[1:], bisection):
        assert isinstance(now, Batch) and len(now) == 1
        assert now[0] in before.likely
        assert all(r.prefix != now[0].prefix or r.draw != now[0].draw for r in now.likely)
