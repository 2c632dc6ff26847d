"""The reward scorer on real verifiers: math-verify workers, the code sandbox, Lean's prechecks.

Every reward here comes from a real verifier run; the cache and worker-count tests count what
actually happened (cache hits, live child processes), not what the code meant to do.
"""

from __future__ import annotations

import json
import multiprocessing

import pytest

from rsynth.rewards import RewardParams, RewardScorer, Rollout
from rsynth.rewards.candidates import detect_domain, prepare
from tests import lean_support

ADD_SPEC = json.dumps(
    {"tests": "assert add(1, 2) == 3\nassert add(-1, 1) == 0", "style": "assert", "entry_point": "add"}
)
GOOD = "Here is my solution.\n```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
HANG = "```python\ndef add(a, b):\n    while True:\n        pass\n```"
STATEMENT = "theorem two_eq : (1 : Nat) + 1 = 2"


@pytest.fixture(scope="module")
def scorer():
    with RewardScorer(RewardParams(workers=2, math_timeout=10, code_timeout=3)) as s:
        yield s


MATH_CASES = [
    ("\\frac{1}{2}", "Halving gives $x = 0.5$, so \\boxed{\\frac{1}{2}}.", 1.0, "correct"),
    ("\\frac{1}{2}", "so the answer is \\boxed{0.5}", 1.0, "correct"),  # equivalent, not equal text
    ("3", "It is \\boxed{2} or maybe \\boxed{3}", 0.0, "hedged"),
    ("3", "Step 1: 1 + 2 = 3.\nThe answer is: 3", 1.0, "correct"),
    ("3", "I get 1 + 2 = 3", 0.0, "no_answer"),  # no marked answer: the default rules do not guess
    ("3", "<think>maybe \\boxed{4}</think> The answer is \\boxed{3}", 1.0, "correct"),
    ("(2,\\infty)", "so $\\boxed{x>2}$", 1.0, "correct"),
    ("7", "\\boxed{8}", 0.0, "incorrect"),
    ("", "\\boxed{8}", 0.0, "error"),
]


def test_math_rewards_are_one_or_zero(scorer):
    rewards = scorer.score([Rollout(gt, text, "math") for gt, text, _, _ in MATH_CASES])
    got = [(r.score, r.status) for r in rewards]
    assert got == [(score, status) for _, _, score, status in MATH_CASES]


def test_the_cache_verifies_an_answer_once(scorer):
    before = scorer.stats()
    # a GRPO group: 8 completions of one prompt, written differently, with two distinct answers
    group = [Rollout("42", f"Reasoning {i}... so \\boxed{{{42 if i % 2 else 41}}}", "math") for i in range(8)]
    rewards = scorer.score(group)
    assert [r.score for r in rewards] == [0.0, 1.0] * 4
    after = scorer.stats()
    assert after["cached verdicts"] - before["cached verdicts"] == 2  # two answers verified, six served twice
    again = scorer.score(group[:2])
    assert all(r.cached for r in again) and scorer.stats()["cache hits"] == after["cache hits"] + 2


def test_a_big_batch_runs_on_the_configured_workers(scorer):
    rollouts = [Rollout(str(n), f"\\boxed{{{n + n % 2}}}", "math") for n in range(200)]
    before = {p.pid for p in multiprocessing.active_children()}
    rewards = scorer.score(rollouts)
    started = {p.pid for p in multiprocessing.active_children()} - before
    assert [r.score for r in rewards] == [1.0 if n % 2 == 0 else 0.0 for n in range(200)]
    assert len(started) <= 2  # at most the math pool's 2 workers (none if running already), not one per rollout


def test_code_rewards_run_the_tests_in_the_sandbox(scorer):
    rewards = scorer.score(
        [
            Rollout(ADD_SPEC, GOOD),
            Rollout(ADD_SPEC, WRONG),
            Rollout(ADD_SPEC, HANG),
            Rollout("assert add(2, 2) == 4", GOOD, "code"),
        ]
    )
    assert [(r.score, r.status) for r in rewards] == [(1.0, "pass"), (0.0, "fail"), (0.0, "timeout"), (1.0, "pass")]


def test_format_and_length_terms_are_off_by_default_and_opt_in():
    wordy = "x" * 300 + " \\boxed{5}"
    with RewardScorer(RewardParams(workers=1, format_weight=0.25, length_limit=100, length_penalty=0.5)) as s:
        right, unmarked, long = s.score(
            [Rollout("5", "\\boxed{5}"), Rollout("5", "The result: 5"), Rollout("5", wordy)]
        )
    assert right.score == 1.25  # right and boxed
    assert unmarked.score == 0.0 and unmarked.status == "no_answer"
    assert long.score == pytest.approx(1.25 - 0.5)  # more than twice the limit: the full penalty
    with RewardScorer(RewardParams(workers=1, format_weight=0.25)) as s:
        hedged = s.score([Rollout("5", "\\boxed{5} \\boxed{6}")])[0]
    assert hedged.score == 0.0 and hedged.status == "hedged"  # no format bonus for a hedge


def test_the_domain_comes_from_the_hint_or_the_ground_truth():
    assert detect_domain(ADD_SPEC) == "code"
    assert detect_domain(STATEMENT) == "lean"
    assert detect_domain("\\frac{1}{2}") == "math"
    assert detect_domain("12", "rsynth/code") == "code"
    assert detect_domain("12", "HuggingFaceH4/MATH-500") == "math"
    assert detect_domain(STATEMENT, "theorem-proving") == "lean"


def test_a_lean_rollout_keeps_the_ground_truth_statement():
    """A model that restates an easier theorem is still checked against the ground truth's."""
    prep = prepare("lean", STATEMENT, "```lean\ntheorem two_eq : True := by\n  exact True.intro\n```", "boxed")
    assert prep.item.candidate.startswith("theorem two_eq :\n    (1 : Nat) + 1 = 2 := by")
    assert prep.item.candidate.rstrip().endswith("exact True.intro")


def test_lean_sorry_scores_zero_without_running_lean():
    from tests.lean_support import have_lean

    if not have_lean():
        pytest.skip("no Lean: run `make lean` (the verifier needs a Lean command even to refuse)")
    with RewardScorer(RewardParams(workers=1)) as s:
        r = s.score([Rollout(STATEMENT, "```lean\ntheorem two_eq : (1 : Nat) + 1 = 2 := by\n  sorry\n```", "lean")])[0]
    assert (r.score, r.status) == (0.0, "sorry")


def test_params_are_validated_with_the_flag_name():
    from rsynth.errors import UserError

    with pytest.raises(UserError, match="--answer-rules"):
        RewardParams(answer_rules="boxed,guess")
    with pytest.raises(UserError, match="--workers"):
        RewardParams(workers=0)
    assert RewardParams.from_kwargs({"workers": 1, "reward_router_address": None}).workers == 1


LEAN_ROLLOUTS = [
    ("```lean\ntheorem two_eq : (1 : Nat) + 1 = 2 := by\n  decide\n```", "proved"),  # whole theorem restated
    ("The goal closes by computation:\n```lean\ndecide\n```", "proved"),  # tactics only
    (
        "```lean\ntheorem two_eq : True := by\n  exact True.intro\n```",
        "error",
    ),  # an easier statement: its proof fails here
]


@lean_support.contribute("rewards")
def _lean_items(scratch):
    return [prepare("lean", STATEMENT, text, "boxed").item for text, _ in LEAN_ROLLOUTS]


@pytest.mark.slow
def test_lean_reward_items_get_real_lean_verdicts(lean_run):
    """The items the reward builds from rollouts, checked in the suite's one real Lean run."""
    assert [v.status for v in lean_run.verdicts("rewards")] == [status for _, status in LEAN_ROLLOUTS]


@pytest.mark.parametrize(
    "module", ["rsynth.rewards.verl", "rsynth.rewards.trl", "rsynth.rewards.openrlhf", "rsynth.rewards.server"]
)
def test_reward_modules_load_no_cli(module):
    import subprocess
    import sys

    from tests.paths import REPO

    code = f"import sys, {module}; bad = [m for m in sys.modules if m == 'typer' or m.startswith('rsynth.cli')]; print(bad)"
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stderr
