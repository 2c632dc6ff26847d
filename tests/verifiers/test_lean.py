"""Lean 4 verifier on a real Lean: one batched run (the wasm Lean takes minutes per run)."""

from __future__ import annotations

import pytest

from rsynth.verifiers import get_verifier
from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.lean import LeanVerifier, proof_steps, strip_comments
from tests import lean_support

ONE_PLUS_ONE = "theorem one_add_one : 1 + 1 = 2 := by\n  decide"
FALSE_THEOREM = "theorem two_two_five : 2 + 2 = 5 := by\n  decide"
WRONG_STEP = "theorem and_swap (p q : Prop) (hp : p) (hq : q) : q ∧ p := by\n  constructor\n  · exact hp\n  · exact hp"
SAME_NAME_A = "theorem foo (a b : Nat) : a + b = b + a := Nat.add_comm a b"
SAME_NAME_B = "theorem foo : 3 * 4 = 12 := rfl"
SORRY = "theorem cheap (a b : Nat) : a + b = b + a := by\n  sorry"
ADMIT = "theorem cheap2 (a : Nat) : a = a := by admit"
NEW_AXIOM = "axiom cheat : 2 + 2 = 5\ntheorem t : 2 + 2 = 5 := cheat"
EXIT = "theorem early : 1 = 1 := rfl\n#exit"


ITEMS = [
    VerifyItem("theorem one_add_one : 1 + 1 = 2 := by sorry", ONE_PLUS_ONE),
    VerifyItem(None, FALSE_THEOREM),
    VerifyItem(None, WRONG_STEP),
    VerifyItem(None, SAME_NAME_A),
    VerifyItem(None, SAME_NAME_B),
    VerifyItem(None, SORRY),
    VerifyItem(None, ADMIT),
    VerifyItem(None, NEW_AXIOM),
    VerifyItem(None, EXIT),
    VerifyItem("theorem one_add_one : 1 + 1 = 2 := by sorry", "theorem one_add_one : 0 = 0 := rfl"),
]


@lean_support.contribute("verifier")
def _items(scratch):
    return ITEMS


@pytest.fixture(scope="module")
def lean_results(lean_run):
    """Verdicts for ITEMS from the session's one Lean batch (tests/lean_support.py)."""
    return lean_run.verdicts("verifier")


@pytest.mark.slow
def test_proves_one_plus_one(lean_results):
    assert lean_results[0].status == "proved" and lean_results[0].ok


@pytest.mark.slow
def test_rejects_false_theorem_at_its_tactic(lean_results):
    v = lean_results[1]
    assert v.status == "error" and not v.ok
    assert v.evidence["line"] == 2 and v.evidence["failing_tactic"] == "decide"
    assert "false" in v.evidence["message"]


@pytest.mark.slow
def test_error_position_maps_to_the_failing_step(lean_results):
    v = lean_results[2]
    assert v.status == "error"
    assert v.evidence["tactic_index"] == 1  # constructor ok, first bullet fails
    assert v.evidence["failing_tactic"] == "· exact hp"


@pytest.mark.slow
def test_items_are_isolated_from_each_other(lean_results):
    assert [v.status for v in lean_results[3:5]] == ["proved", "proved"]


@pytest.mark.slow
def test_rejects_sorry_admit_axiom_and_exit(lean_results):
    assert [v.status for v in lean_results[5:9]] == ["sorry", "sorry", "error", "error"]
    assert "axiom" in lean_results[7].evidence["reason"]
    assert "#exit" in lean_results[8].evidence["reason"]


@pytest.mark.slow
def test_rejects_proof_of_a_different_statement(lean_results):
    assert lean_results[9].status == "error" and "reference theorem" in lean_results[9].evidence["reason"]


def test_the_shared_batch_checks_these_items_as_the_lean_verifier_does():
    """The session batch runs through `StatementChecker` (it also holds the formal pipelines'
    items): for these items its prechecks and its Lean file are the plain verifier's."""
    from rsynth.stages.formal import StatementChecker

    plain, shared = LeanVerifier(command="true"), StatementChecker(command="true")
    assert type(get_verifier("lean", command="true")) is LeanVerifier
    assert [plain._precheck(it) for it in ITEMS] == [shared._precheck(it) for it in ITEMS]
    todo = [i for i, it in enumerate(ITEMS) if plain._precheck(it) is None]
    assert plain._build(ITEMS, todo) == shared._build(ITEMS, todo)


def test_lean_stopping_early_is_not_a_proof():
    """A Lean that exits without reaching the end sentinel (here `true`) proves nothing."""
    verdicts = LeanVerifier(command="true").verify_batch([VerifyItem(None, ONE_PLUS_ONE)])
    assert verdicts[0].status == "error" and "stopped before the end" in verdicts[0].evidence["reason"]


def test_comment_stripping_and_steps():
    text = "theorem x : True := by -- a sorry in a comment\n  /- admit /- nested -/ -/ trivial"
    assert "sorry" not in strip_comments(text) and "admit" not in strip_comments(text)
    assert "axiom" in strip_comments('def s := "-- axiom"')  # string literals are kept
    assert [s for _, s in proof_steps(WRONG_STEP)] == ["constructor", "· exact hp", "· exact hp"]


def test_lean_dojo_adapter_names_its_extra_when_missing():
    """LeanDojo cannot run here (no elan, no network): the adapter must say how to get it."""
    try:
        import lean_dojo  # noqa: F401
    except ImportError:
        from rsynth.errors import MissingExtra

        with pytest.raises(MissingExtra, match=r"rsynth\[lean-dojo\]"):
            get_verifier("lean-dojo")
    else:
        pytest.skip("lean-dojo is installed; its replay needs a traced repository and a toolchain")
