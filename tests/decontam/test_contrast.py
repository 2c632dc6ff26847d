"""Minimal-edit look-alikes (`contrast.flipped`): a near copy of an item that swaps one word or
operator for its opposite asks another question; a rewrite, or a synonym swap, does not."""

from __future__ import annotations

import pytest

from rsynth.decontam.contrast import flipped

ITEM = (
    "The expenditure of Joseph in May was $500. In June, his expenditure was $60 less. "
    "How much was his total expenditure for those two months?"
)


@pytest.mark.parametrize(
    ("row", "item", "expected"),
    [
        (ITEM.replace("less", "more"), ITEM, True),
        (ITEM.replace("less", "fewer"), ITEM, False),  # a synonym keeps the polarity
        (ITEM, ITEM, False),
        (
            "Find the smallest possible real part of (75+117i)z+(96+144i)/z with |z|=4.",
            "Find the largest possible real part of (75+117i)z+(96+144i)/z with |z|=4.",
            True,
        ),
        (
            "Compute $58_9 + 18_9.$ Express your answer in base $9.$",
            "Compute $58_9 - 18_9.$ Express your answer in base $9.$",
            True,
        ),
        (
            "Compute $58_9 \\times 18_9.$ Express your answer in base $9.$",
            "Compute $58_9 - 18_9.$ Express your answer in base $9.$",
            True,
        ),
        (
            "Is the number of odd divisors of 196 larger than 5?",
            "Is the number of even divisors of 196 larger than 5?",
            True,
        ),
        # a real rewrite is not a near copy: opposite words far apart say nothing
        (
            "Joseph spent $500 in May and $60 more than that in June... no: June was cheaper by $60. "
            "What did he spend in total over both months?",
            ITEM,
            False,
        ),
        # a changed number is a template sibling, not a flip
        (ITEM.replace("$60", "$70"), ITEM, False),
        ("", ITEM, False),
    ],
)
def test_a_flipped_word_or_operator_in_a_near_copy(row, item, expected):
    assert flipped(row, item) is expected
