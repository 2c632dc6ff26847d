import random

import pytest

from rsynth.annotators.base import Counters, GivenTrace, Rollout, RolloutRequest, ask, drive
from rsynth.annotators.math_shepherd import MathShepherdConfig, math_shepherd_search
from rsynth.annotators.scripted import ScriptedPolicy, planted_trace, true_first_error


def fixed(correct: bool, steps=("x",)) -> Rollout:
    return Rollout(
        tuple(steps), 7 * len(steps), "a" if correct else "b", correct, "correct" if correct else "incorrect"
    )


class CountPolicy:
    """Rollouts from a prefix of length m: the first `hits[m]` of each request are correct."""

    def __init__(self, hits):
        self.hits, self.batches = hits, []

    def __call__(self, reqs):
        self.batches.append(reqs)
        return [[fixed(i < self.hits[len(r.prefix)]) for i in range(r.k)] for r in reqs]


def test_he_and_se_values_and_one_batch_per_trace():
    trace = GivenTrace(("s0", "s1", "s2", "s3", "s4"), False, "b")
    policy = CountPolicy({1: 8, 2: 3, 3: 0, 4: 1})
    res = drive(math_shepherd_search(MathShepherdConfig(n=8), trace), policy)
    assert [[(r.prefix, r.k) for r in b] for b in policy.batches] == [[(trace.steps[: i + 1], 8) for i in range(4)]]
    (t,) = res.traces
    assert t.labels["step_mc"] == [1.0, 3 / 8, 0.0, 1 / 8, 0.0]  # SE; last = own verdict
    assert t.labels["step_k"] == [8, 8, 8, 8, 1]
    assert t.labels["step_hard"] == [True, True, False, True, False]  # HE
    assert t.first_error == 2 and t.labels["label_method"] == "math_shepherd:he"
    assert res.outcome == "labelled" and res.counters.completions == 32 and res.counters.requests == 4
    assert [(n.prefix_steps, n.correct, n.visits, n.depth) for n in res.nodes][1] == (trace.steps[:2], 3, 1, 2)


def test_threshold_rule_changes_hard_labels_not_counts():
    trace = GivenTrace(("s0", "s1", "s2"), True, "a")
    res = drive(math_shepherd_search(MathShepherdConfig(n=8, rule="threshold=0.5"), trace), CountPolicy({1: 8, 2: 3}))
    assert res.traces[0].labels["step_hard"] == [True, False, True]
    assert res.traces[0].first_error == 1


@pytest.mark.parametrize("m,e", [(8, 0), (8, 7), (8, None), (1, 0), (1, None), (5, 2)])
def test_finds_planted_first_error(m, e):
    res = drive(math_shepherd_search(MathShepherdConfig(), planted_trace(m, e)), ScriptedPolicy(m, p=0.9, q=0.0))
    assert res.traces[0].first_error == (-1 if e is None else e)
    assert res.counters.completions == 8 * (m - 1)


def test_single_step_trace_needs_no_rollouts():
    search = math_shepherd_search(MathShepherdConfig(), GivenTrace(("only",), True, "a"))
    res = drive(search, lambda reqs: pytest.fail("no request expected"))
    assert res.traces[0].labels["step_mc"] == [1.0] and res.counters.requests == 0


def test_empty_completion_keeps_its_prefix_verdict():
    # The policy's solutions have 1 step, so every rollout from these longer prefixes continues with
    # nothing; the verdict on prefix + "" is the prefix's own answer, and the labels follow it.
    policy = ScriptedPolicy(1, p=0.0, q=0.0)
    res = drive(math_shepherd_search(MathShepherdConfig(n=4), planted_trace(4, 2)), policy)
    assert all(r.steps == () for r in policy(list(policy.batches[0]))[0])
    assert res.traces[0].labels["step_hard"] == [True, True, False, False]
    assert res.traces[0].labels["step_mc"] == [1.0, 1.0, 0.0, 0.0]


def test_samples_solutions_then_batches_all_their_steps_with_shared_prefixes_merged():
    sols = [fixed(False, ("a", "b", "c")), fixed(True, ("a", "d")), fixed(False, ())]

    def policy(reqs):
        if reqs[0].prefix == ():
            return [sols]
        return [[fixed(True)] * r.k for r in reqs]

    seen = []
    res = drive(math_shepherd_search(MathShepherdConfig(n=2), n_solutions=3), lambda r: seen.append(r) or policy(r))
    assert seen[0] == [RolloutRequest((), 3)]
    assert seen[1] == [RolloutRequest(("a",), 2), RolloutRequest(("a", "b"), 2)]  # ("a",) asked by two traces
    assert [t.steps for t in res.traces] == [("a", "b", "c"), ("a", "d")]  # the empty solution is dropped
    assert res.traces[1].labels["step_mc"] == [1.0, 1.0]


def test_ask_merges_identical_prefixes_and_splits_replies():
    gen = ask([RolloutRequest(("a",), 2), RolloutRequest(("b",), 1), RolloutRequest(("a",), 3)], Counters())
    assert next(gen) == [RolloutRequest(("a",), 3), RolloutRequest(("b",), 1)]
    a = [fixed(i == 0) for i in range(3)]
    with pytest.raises(StopIteration) as stop:
        gen.send([a, [fixed(True)]])
    assert stop.value.value == [a[:2], [fixed(True)], a]


def test_driver_must_return_k_rollouts_per_request():
    with pytest.raises(ValueError):
        drive(
            math_shepherd_search(MathShepherdConfig(n=3), planted_trace(3, 1)),
            lambda reqs: [[fixed(True)] for _ in reqs],
        )


def test_request_k_must_be_positive_and_config_validated():
    with pytest.raises(ValueError):
        RolloutRequest((), 0)
    with pytest.raises(ValueError):
        MathShepherdConfig(n=0)
    with pytest.raises(ValueError):
        MathShepherdConfig(rule="first_error")


def test_random_planted_errors_are_found_when_errors_are_unrecoverable():
    rng = random.Random(7)
    for seed in range(40):
        m = rng.randint(1, 20)
        e = rng.choice([None, rng.randrange(m)])
        trace = planted_trace(m, e)
        res = drive(math_shepherd_search(MathShepherdConfig(), trace), ScriptedPolicy(m, p=0.7, q=0.0, seed=seed))
        assert res.traces[0].first_error == true_first_error(trace.steps)
