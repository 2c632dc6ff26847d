"""Math verifier on MATH-500 answers: equivalences, near-misses, and inputs built to hang a parser."""

from __future__ import annotations

import json
import time

import pytest

from rsynth.verifiers import get_verifier
from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.math import MathVerifier, answer_text, text_answer
from tests.paths import BENCHMARKS

MATH500 = BENCHMARKS / "math500.jsonl"

# (MATH-500 reference answer, candidate, expected verdict)
TABLE = [
    # integers, thousands separators, currency, bases, answers in a sentence or a box
    ("10,\\!080", "10080", "correct"),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", "correct"),
    ("\\$32,\\!348", "32348", "correct"),
    ("58,500", "58500", "correct"),
    ("52_8", "52", "correct"),
    ("1", "11", "incorrect"),
    ("2", "The answer is $\\boxed{2}$.", "correct"),
    ("2", "so the final answer is 2.", "correct"),
    # decimals, fractions, mixed numbers, percent
    ("1.25", "\\frac{5}{4}", "correct"),
    (".0000672", "6.72 \\times 10^{-5}", "correct"),
    ("\\frac43", "4/3", "correct"),
    ("\\dfrac{17}{50}", "0.34", "correct"),
    ("1\\frac{4}{5}", "\\frac{9}{5}", "correct"),
    ("\\frac{3}{56}", "\\frac{56}{3}", "incorrect"),
    ("50\\%", "50", "correct"),
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}", "incorrect"),
    # radicals, pi, complex numbers
    ("3\\sqrt{13}", "\\sqrt{117}", "correct"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", "correct"),
    ("11 \\sqrt{5} + 11", "11(1+\\sqrt{5})", "correct"),
    ("\\sqrt{51}", "\\sqrt{52}", "incorrect"),
    ("288 \\pi", "288\\pi", "correct"),
    ("\\pi", "3.14159", "incorrect"),
    ("6 - 5i", "-5i + 6", "correct"),
    ("1+274i", "1-274i", "incorrect"),
    # plus-minus, sets, intervals, tuples and points, matrices
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", "correct"),
    ("\\pm 2021", "2021", "incorrect"),
    ("3, 5, 7", "7, 5, 3", "correct"),
    ("(3,4]", "(3,4]", "correct"),
    ("(3,4]", "[3,4]", "incorrect"),
    ("[a,b)", "[a,b]", "incorrect"),
    ("(-\\infty, 0]", "(-\\infty,0]", "correct"),
    ("(0,9) \\cup (9,36)", "(0,36)", "incorrect"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", "correct"),
    ("(15,-29)", "(-29,15)", "incorrect"),
    ("(1,2)", "(2,1)", "incorrect"),
    (
        "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}",
        "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}",
        "correct",
    ),
    (
        "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}",
        "\\begin{pmatrix} -2 \\\\ -14 \\\\ 7 \\end{pmatrix}",
        "incorrect",
    ),
    # equations, expressions, degrees and units
    ("x=5", "5", "correct"),
    ("x \\in [-2,7]", "[-2,7]", "correct"),
    ("x^3+3x-6", "3x + x^3 - 6", "correct"),
    ("(a+5)(b+2)", "ab + 2a + 5b + 10", "correct"),
    ("2k+2", "2k+3", "incorrect"),
    ("90^\\circ", "90", "correct"),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", "correct"),
    ("864 \\mbox{ inches}^2", "864", "correct"),
    # text answers and multiple choice
    ("\\text{Evelyn}", "Evelyn", "correct"),
    ("\\text{Evelyn}", "Leveny", "incorrect"),
    ("\\text{east}", "\\text{East}", "correct"),
    ("\\text{(C)}", "C", "correct"),
    ("\\text{(C)}", "(B)", "incorrect"),
    # repeating decimals against fractions
    ("\\frac{1}{3}", "0.\\overline{3}", "correct"),
    ("\\frac13", "0.(3)", "correct"),
    ("0.\\overline{3}", "\\frac{1}{3}", "correct"),
    ("\\frac{611}{495}", "1.2\\overline{34}", "correct"),
    ("\\frac{1}{7}", "0.\\overline{142857}", "correct"),
    ("\\frac{1}{3}", "0.\\dot{3}", "correct"),
    ("\\frac{1}{3}", "0.333", "incorrect"),
    ("\\frac{2}{3}", "0.\\overline{3}", "incorrect"),
    # complex fractions against their rationalised forms
    ("\\sqrt{2}-1", "\\frac{1}{1+\\sqrt{2}}", "correct"),
    ("\\frac{1}{1+\\sqrt 2}", "\\sqrt2-1", "correct"),
    ("\\frac{\\sqrt{6}+\\sqrt{2}}{4}", "\\frac{1}{\\sqrt6-\\sqrt2}", "correct"),
    ("\\sqrt{2}+1", "\\frac{1}{1+\\sqrt{2}}", "incorrect"),
    # inequalities against intervals, both ways
    ("(2,\\infty)", "x>2", "correct"),
    ("x>2", "(2,\\infty)", "correct"),
    ("[2,\\infty)", "x \\ge 2", "correct"),
    ("(-\\infty,3)", "x<3", "correct"),
    ("(2,5]", "2<x\\le 5", "correct"),
    ("(-\\infty,-1)\\cup(2,\\infty)", "x<-1 \\text{ or } x>2", "correct"),
    ("(2,\\infty)", "x \\ge 2", "incorrect"),
    ("x>2", "(2,5)", "incorrect"),
    ("x>2", "x<2", "incorrect"),
    # math-verify's own known false positives (1/2004! vs 1/2006!, ±2021 vs 2021) and lists against sets
    ("\\frac{1}{2006!}", "\\frac{1}{2004!}", "incorrect"),
    ("2021", "\\pm 2021", "incorrect"),
    ("\\{2, 3\\}", "3, 2", "correct"),
    ("3", "\\boxed{3} so the answer is \\boxed{3}", "correct"),
    ("\\frac12", "\\boxed{0.5}, that is \\boxed{\\frac{1}{2}}", "correct"),
    ("2, 3", "\\boxed{2} and \\boxed{3}", "correct"),  # a set reference: the boxes together are the list
    ("2, 3", "\\boxed{2} and \\boxed{4}", "incorrect"),
]

# several distinct final answers against one reference value: a reward hack, never correct
HEDGES = [
    ("3", "\\boxed{2} or \\boxed{3}"),
    ("3", "The answer is $\\boxed{3}$. Or maybe $\\boxed{4}$."),
    ("3", "2, 3"),
    ("3", "2 \\text{ or } 3"),
    ("x=3", "x = 2, 3"),
    ("\\frac{1}{2}", "\\boxed{\\frac12} \\text{ or } \\boxed{\\frac13}"),
    ("\\text{(C)}", "\\boxed{B} or \\boxed{C}"),
]


@pytest.fixture(scope="module")
def verifier():
    v = get_verifier("math", timeout=5.0, workers=2)
    yield v
    v.close()


def test_table_of_math500_pairs(verifier):
    verdicts = verifier.verify_batch([VerifyItem(ref, cand) for ref, cand, _ in TABLE])
    wrong = [(ref, cand, want, v.status) for (ref, cand, want), v in zip(TABLE, verdicts) if v.status != want]
    assert not wrong, wrong
    assert all(v.ok == (v.status == "correct") for v in verdicts)
    assert verdicts[0].evidence["reference_parsed"] == "10080"  # parsed forms are kept for audit


def test_hedged_answers_are_incorrect(verifier):
    verdicts = verifier.verify_batch([VerifyItem(ref, cand) for ref, cand in HEDGES])
    assert [(v.status, v.evidence.get("reason")) for v in verdicts] == [("incorrect", "hedged")] * len(HEDGES)


def test_every_math500_answer_matches_itself_and_not_a_perturbation(verifier):
    rows = [json.loads(line) for line in MATH500.read_text().splitlines()]
    assert len(rows) == 500
    boxed = verifier.verify_batch(
        [VerifyItem(r["answer"], f"So the answer is $\\boxed{{{r['answer']}}}$.") for r in rows]
    )
    assert [v.status for v in boxed] == ["correct"] * 500
    perturbed = verifier.verify_batch([VerifyItem(r["answer"], r["answer"] + "+1") for r in rows])
    assert not [r["answer"] for r, v in zip(rows, perturbed) if v.status == "correct"]


@pytest.mark.parametrize(
    "candidate, allowed",
    [
        ("2^{2^{2^{2^{2^{2^{2}}}}}}", {"timeout"}),  # exponent tower
        ("10^{10^{10^{10}}}", {"timeout"}),
        ("9" * 10_000, {"unparseable"}),  # 10,000-digit number
        ("\\frac{" * 25 + "1" + "}{2}" * 25, {"timeout", "unparseable"}),  # deeply nested LaTeX
        ("{" * 500 + "1" + "}" * 500, {"unparseable"}),
        ("x" * 1_000_000, {"unparseable"}),  # a megabyte string
        (
            "(" * 40 + "1" + ")" * 40,
            {"timeout", "unparseable", "correct"},
        ),  # it is 1: parsed in time or refused, never wrong
    ],
)
def test_pathological_inputs_end_within_the_limit(candidate, allowed):
    with MathVerifier(timeout=2.0, workers=1) as v:
        start = time.monotonic()
        verdict = v.verify_batch([VerifyItem("1", candidate), VerifyItem("2", "2")])
        elapsed = time.monotonic() - start
    assert verdict[0].status in allowed
    assert verdict[1].status == "correct"  # the pool survived and moved on
    assert elapsed < 2.0 + 15  # the per-item limit plus one worker restart, never a hang


def test_missing_and_empty_answers(verifier):
    verdicts = verifier.verify_batch([VerifyItem(None, "1"), VerifyItem("1", ""), VerifyItem("1", None)])
    assert [v.status for v in verdicts] == ["error", "unparseable", "unparseable"]


def test_model_text_is_never_evaluated(verifier, tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path('{marker}').write_text('x')"
    verdicts = verifier.verify_batch([VerifyItem("1", payload), VerifyItem("1", f"$ {payload} $")])
    assert not marker.exists()
    assert all(v.status != "correct" for v in verdicts)


def test_answer_extraction_and_text_answers():
    assert answer_text("We get $x=3$, so \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert answer_text("#### 42") == "42"
    assert answer_text("The answer is $0.5$.") == "0.5"
    assert text_answer("\\text{Evelyn}") == "evelyn"
    assert text_answer("p - q") is None  # letters that are variables stay math
    assert text_answer("C") is None and text_answer("C", bare_choice=True) == "c"
