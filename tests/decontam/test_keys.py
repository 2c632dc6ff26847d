"""Answer keys and execution: what decides a rephrasing once retrieval has proposed its item."""

from __future__ import annotations

import pytest

from rsynth.decontam.execution import ExecutionChecker, main_function
from rsynth.decontam.keys import AnswerComparer, bundled_keys, canonical, number, row_facts
from rsynth.decontam.rephrase import WINDOW_WORDS, windows
from tests.paths import SEEDS


@pytest.fixture(scope="module")
def keys():
    return bundled_keys()


def test_every_maths_and_code_item_has_a_key(keys):
    by_bench: dict[str, int] = {}
    for (bench, _), key in keys.items():
        by_bench[bench] = by_bench.get(bench, 0) + 1
        assert key.answer or key.is_code
    assert by_bench == {
        "gsm8k": 1319,
        "math500": 500,
        "aime24": 30,
        "aime25": 30,
        "amc2023": 40,
        "humaneval": 164,
        "mbppplus": 378,
    }
    assert keys[("gsm8k", "gsm8k-test-0")].answer == "18"
    assert keys[("humaneval", "HumanEval/0")].entry_point == "has_close_elements"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("$1,430.00", "1430", True),
        ("18 eggs", "18", True),
        ("18", "18.5", False),
        ("\\frac{3}{4}", "3/4", True),
        ("-50", "−50".replace("−", "-"), True),
        ("\\$78", "78", True),
        ("90^\\circ", "90", True),
        ("0.5", "1/2", True),
    ],
)
def test_plain_numbers_are_compared_exactly(a, b, same):
    assert AnswerComparer().compare([(a, b)]) == [same]
    assert (number(a) == number(b)) is same and (canonical(a) == canonical(b)) is same


def test_the_math_verifier_decides_what_is_not_a_plain_number():
    comparer = AnswerComparer()
    try:
        assert comparer.compare([("\\sqrt{117}", "3\\sqrt{13}"), ("6-5i", "6 - 5i"), ("x=5", "7")]) == [
            True,
            True,
            False,
        ]
    finally:
        comparer.close()


@pytest.mark.parametrize(
    ("data", "text", "answer"),
    [
        ({"answer": "42"}, "q", "42"),
        ({"answer": 7}, "q", "7"),
        ({"answer": "She sells 9 eggs.\nShe makes 9 * 2 = 18.\n#### 18"}, "q", "18"),  # a GSM8K worked solution
        ({}, "Solve it. ... so the result is \\boxed{\\frac{3}{56}}", "\\frac{3}{56}"),
        ({}, "Q: How many?\nAnswer: 204", "204"),
        ({}, "How many legs do 4 spiders have? The last number here is 8", None),  # never a guess
    ],
)
def test_row_answers_from_a_column_or_a_marked_line(data, text, answer):
    assert row_facts(data, text).answer == answer


def test_answers_can_be_switched_off_and_columns_named():
    assert row_facts({"answer": "42"}, "#### 3", answer_column="none").answer is None
    assert row_facts({"gold": "5", "answer": "6"}, "q", answer_column="gold").answer == "5"
    facts = row_facts({"solution": "def f(x):\n    return x\n", "tests": ["assert f(1) == 1"]}, "write f")
    assert facts.solution and facts.tests == "assert f(1) == 1"


def test_gsm8k_train_answers_come_from_their_worked_solutions():
    import json

    rows = [json.loads(line) for _, line in zip(range(50), SEEDS.joinpath("gsm8k_train.jsonl").open())]
    assert all(row_facts(r, r["question"]).answer == r["answer"].split("####")[-1].strip() for r in rows)


def test_long_prompts_are_scored_by_window():
    shots = "".join(
        f"Q: question number {k} about apples and pears and the price of things\nA: #### {k}\n\n" for k in range(12)
    )
    text = (
        "Solve the last one.\n\n"
        + shots
        + "Q: Sophia drove 100 miles and refilled 4 gallons of a 12 gallon tank. How far per tank?\nA:"
    )
    assert len(text.split()) > WINDOW_WORDS
    parts = windows(text)
    assert parts[0] == text and parts[1].startswith("Q: Sophia") and len(parts) <= 9
    assert windows("short text") == ["short text"]


def test_entry_point_of_a_solution():
    assert (
        main_function("def helper(x):\n    return x\n\ndef solve(x):\n    return helper(x)\n", "Write solve(x)")
        == "solve"
    )
    assert (
        main_function("def helper(x):\n    return x\n\ndef solve(x):\n    return helper(x)\n", "prose only") == "solve"
    )
    assert main_function("x = 1", "f") is None


def test_execution_decides_for_renamed_code(keys):
    """A renamed program passes its item's tests (entry point bound to it); another task's program
    fails them; the item's canonical solution passes the row's own tests."""
    checker = ExecutionChecker(timeout=10.0)
    renamed = "def composite_check(n):\n    if n < 2:\n        return True\n    return any(n % i == 0 for i in range(2, int(n ** 0.5) + 1))\n"
    other = "def min_element(l):\n    return min(l)\n"
    try:
        verdicts = checker.check(
            [
                ("Write composite_check(n)", renamed, None, keys[("mbppplus", "Mbpp/3")]),
                ("def min_element(l)", other, None, keys[("humaneval", "HumanEval/35")]),
                ("tri_area", None, "assert tri_area(5, 3) == 7.5", keys[("humaneval", "HumanEval/45")]),
                ("no program", None, None, keys[("humaneval", "HumanEval/45")]),
            ]
        )
    finally:
        checker.close()
    if checker.unavailable:
        pytest.fail(f"no sandbox: {checker.unavailable}")
    assert verdicts == [True, False, True, None]


@pytest.mark.parametrize(
    ("row", "item", "expected"),
    [
        # the row asks in another unit than the item: answers differing by 12 may be one answer
        (
            "Mattison is 5 feet tall. How high, in feet, is the roof?",
            "He is 60 inches tall. How high is it in inches?",
            True,
        ),
        ("How many minutes does the walk take?", "How many hours does the walk take?", True),
        ("How many cents does she pay?", "How many dollars does she pay?", True),
        # no unit asked, or the same one: 3 against 36, 10 against 100 is a coincidence of small numbers
        ("How many left-handed players were there?", "What is the total number of games played?", False),
        ("How many hours does the walk take?", "How many hrs does the walk take?", False),
        ("How many pies did she bake?", "How many pies, in dozens, did she bake?", False),
    ],
)
def test_answers_differing_by_a_unit_factor_need_a_question_in_other_units(row, item, expected):
    from rsynth.decontam.keys import in_other_units

    assert in_other_units(row, item) is expected


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Tom has 2 apples and buys 2 more. 2 + 2 = 4.\n#### 4", "4"),
        ("Compute 2 + 3. The answer is 5. \\boxed{5}", "5"),  # two marks of one answer
        # a few-shot prompt: the worked examples' answers are not the asked question's
        ("Q: 1 + 1?\nA: 2.\n#### 2\n\nQ: 2 + 2?\nA: 4.\n#### 4\n\nQ: Tom has 3 apples and buys 4. How many?\nA:", None),
        ("Q: a?\nAnswer: 3\n\nQ: b?\nAnswer: 4\n\nQ: c?\nAnswer:", None),
    ],
)
def test_a_marked_answer_in_the_text_is_the_rows_only_when_it_is_the_only_one(text, answer):
    assert row_facts({"problem": text}, text).answer == answer
