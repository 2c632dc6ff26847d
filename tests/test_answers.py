"""Answer extraction from real model output (rsynth/answers.py): which rule fires and what it reads."""

from __future__ import annotations

import pytest

from rsynth.answers import DEFAULT_ANSWER_FALLBACK, extract, last_math, parse_answer_fallback

MINERVA = "Final Answer: The final answer is ${}$. I hope it is correct."


@pytest.mark.parametrize(
    "text, answer, rule",
    [
        ("We add.\n" + MINERVA.format("\\frac{1}{2}"), "\\frac{1}{2}", "final-answer"),
        ("Final Answer: The final answer is 18. I hope it is correct.", "18", "final-answer"),
        ("Final Answer: The final answer is $7$. I hope it is correct.<|eot_id|>", "7", "final-answer"),
        ("so 6*7 = 42.\n\nFinal answer: 42", "42", "final-answer"),
        ("**Final Answer:** $\\boxed{5}$", "5", "boxed"),
        ("The answer is 12.<|im_end|>\n<|im_start|>user\nThe answer is 3", "12", "answer-is"),
        ("The answer is $3$. I hope this helps!", "3", "answer-is"),
        ("Thus the answer is 5 apples, which is what we wanted.", "5 apples", "answer-is"),
        ("The answer is 3.5 meters.", "3.5 meters", "answer-is"),
        ("First $x=\\boxed{4}$, then $y=\\boxed{6}$, so the answer is 10.", "10", "answer-is"),
        ("The answer is $\\boxed{3}$. Or maybe $\\boxed{4}$.", "4", "boxed"),
        ("Hence \\boxed{\\frac{1}{2}}. Thank you!</s>", "\\frac{1}{2}", "boxed"),
        ("48+24 = 72 clips.\n#### 72", "72", "hashes"),
        ("She has 7 + 6 = 13 pencils.", "13", "last-number"),
        ("Nothing to see here.", None, None),
    ],
    ids=[
        "minerva-latex",
        "minerva-plain",
        "minerva-chat-token",
        "final-answer-colon",
        "final-answer-box",
        "chat-next-turn-dropped",
        "politeness",
        "prose-tail",
        "decimal-kept",
        "prose-after-boxes",
        "box-after-statement",
        "box-eos",
        "hashes",
        "last-number",
        "nothing",
    ],
)
def test_extraction_rules(text, answer, rule):
    got = extract(text)
    assert (got.answer, got.rule) == (answer, rule)
    assert got.explicit == (rule in {"boxed", "final-answer", "answer-is", "hashes"})


def test_default_chain_and_last_math():
    assert parse_answer_fallback(DEFAULT_ANSWER_FALLBACK)[:2] == ("boxed", "final-answer")
    assert last_math("so $x=2$ and then \\[ y = 3 \\] costs \\$5") == "y = 3"
    assert extract("we get $x = 4$ in the end", "last-math").answer == "x = 4"
    assert extract("nothing", "last-math").answer is None
