"""The math verifier on the probe tables of issue 21 (tests/verifiers/math_cases.py): every class in both
directions, the named reasons behind refusals and extra acceptances, and the extraction rule in evidence."""

from __future__ import annotations

import pytest

from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.math import AFTER_BOX, EXACT_DIFFER, HEDGED, MV_READING, PLUS_MINUS, MathVerifier
from tests.verifiers.math_cases import CLASS_TABLE, FREE_TEXT, Case

ROWS = CLASS_TABLE + FREE_TEXT
EXTRA = [
    # refusals math-verify would not make, each with its reason
    Case("refuse-pm", "2021", "\\pm 2021", False),
    Case("refuse-factorial", "\\frac{1}{2006!}", "\\frac{1}{2004!}", False),
    Case("refuse-hedge-prose", "3", "2 or 3", False),
    Case("refuse-after-box", "10", "First \\boxed{10} is x; so the answer is 11.", False),
    # prose is read for its last number only when it is prose, never for a hedge of bare values
    Case("prose-long", "120", "Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct.", True),
    Case(
        "prose-matrix-kept",
        "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}",
        "The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.",
        True,
    ),
    Case("reference-box-list", "\\boxed{1} papers and \\boxed{2} bins", "1, 2", True),
    Case("reference-box-statements", "\\boxed{1} was a guess, the right result is \\boxed{2}", "1, 2", False),
]


@pytest.fixture(scope="module")
def verdicts():
    with MathVerifier(timeout=10.0, workers=2) as v:
        got = v.verify_batch([VerifyItem(c.reference, c.candidate) for c in ROWS + EXTRA])
    return {c.id: v for c, v in zip(ROWS + EXTRA, got)}


@pytest.mark.parametrize("case", ROWS + EXTRA, ids=[c.id for c in ROWS + EXTRA])
def test_probe_table(case: Case, verdicts):
    verdict = verdicts[case.id]
    assert verdict.ok == case.equal, (case, verdict)
    assert verdict.status in ({"correct"} if case.equal else {"incorrect", "unparseable"})


def test_every_class_has_both_directions():
    classes: dict[str, set[bool]] = {}
    for c in ROWS:
        classes.setdefault(c.id.split("-")[0], set()).add(c.equal)
    assert {k for k, v in classes.items() if v != {True, False}} == set(), classes


def test_refusals_and_extra_acceptances_carry_their_reason(verdicts):
    assert verdicts["refuse-pm"].evidence["reason"] == HEDGED  # a ± candidate lists two values
    assert verdicts["pm-vs-one"].evidence["reason"] == PLUS_MINUS
    assert verdicts["refuse-factorial"].evidence["reason"] == EXACT_DIFFER
    assert verdicts["refuse-hedge-prose"].evidence["reason"] == HEDGED
    assert verdicts["refuse-after-box"].evidence["reason"] == AFTER_BOX
    assert verdicts["boxes-hedge"].evidence["reason"] == HEDGED
    assert verdicts["prose-matrix-kept"].evidence["reason"] == MV_READING
    assert "candidate: E-notation" in verdicts["enote"].evidence["readings"]
    assert "candidate: thousands separators" in verdicts["sep-space"].evidence["readings"]
    assert "base subscripts evaluated" in verdicts["base-2"].evidence["readings"]
    assert verdicts["choice-paren-text"].evidence["reason"] == "choice letter"
    assert verdicts["cplx-exp"].evidence["reason"] == "i read as the imaginary unit"
    assert verdicts["abs-lt"].evidence["reason"] == "compared as intervals"


def test_evidence_names_the_extraction_rule(verdicts):
    rules = {
        i: verdicts[i].evidence["candidate_rule"]
        for i in ("minerva", "tail-eot", "prose-gsm8k", "tail-im-end", "boxes-intermediate-prose", "sep-space")
    }
    assert rules == {
        "minerva": "final-answer",
        "tail-eot": "answer-is",
        "prose-gsm8k": "hashes",
        "tail-im-end": "boxed",
        "boxes-intermediate-prose": "answer-is",
        "sep-space": "whole-text",
    }
