"""Execution decides code rows: parameter orders, and the I/O examples a row's text states (real sandbox)."""

from __future__ import annotations

import pytest

from rsynth.decontam.examples import stated_examples, stated_tests
from rsynth.decontam.execution import ExecutionChecker, arity, orders
from rsynth.decontam.keys import bundled_keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hcf(25, 15) should be 5 and hcf(3, 5) should be 1", [("hcf", "(25, 15)", "5"), ("hcf", "(3, 5)", "1")]),
        ("Example: uniq([5, 3, 5, 2]) returns [2, 3, 5].", [("uniq", "([5, 3, 5, 2],)", "[2, 3, 5]")]),
        ('count("xyzXYZ") -> 3', [("count", "('xyzXYZ',)", "3")]),
        ("total(['4'], ['1']) ➞ ['4']", [("total", "(['4'], ['1'])", "['4']")]),
        ('def f(x):\n    """\n    >>> f(3)\n    9\n    """\n', [("f", "(3,)", "9")]),
        # a bug report: the wrong output is not the expected one, whichever comes first
        ("Bug: up('abAB') returns 326 but should return 131.", [("up", "('abAB',)", "131")]),
        ("up('abAB') should return 131, but it returns 326.", [("up", "('abAB',)", "131")]),
        # a markdown I/O table: the last column is the result; the header (when it calls one) names
        # the function, else the text's own, else "f"; a rule line is optional
        (
            "Keep the strings with the substring.\n| input | output |\n| [], 'a' | [] |\n| ['abc', 'x'], 'a' | ['abc'] |",
            [("f", "([], 'a')", "[]"), ("f", "(['abc', 'x'], 'a')", "['abc']")],
        ),
        ("| n | tri(n) |\n|---|---|\n| 1 | 1 |\n| 5 | 15 |", [("tri", "(1,)", "1"), ("tri", "(5,)", "15")]),
        ("Write sum_all(xs).\n| xs | result |\n| [1, 2] | 3 |", [("sum_all", "([1, 2],)", "3")]),
        ("A complex z with |z| = 4 and |w| = 2.", []),
        # not literals, or nothing stated
        ("cyl(radius, height) gives 157 for radius 10", []),
        ("Write pick_longest(words) returning the longest word.", []),
    ],
)
def test_examples_stated_in_text(text, expected):
    assert stated_examples(text) == expected


def test_one_boolean_example_says_too_little():
    assert stated_tests("composite_check(2) is False.") is None
    assert stated_tests("f(2) is False and f(9) is True.") == "assert f(2) == False\nassert f(9) == True\n"
    assert stated_tests("area(5, 3) == 7.5") == "assert abs(area(5, 3) - 7.5) <= 1e-6 * max(1.0, abs(7.5))\n"


def test_parameter_orders_are_read_without_running_anything():
    assert arity("def f(b, a):\n    return a\n", "f") == 2
    assert arity("def f(*xs):\n    pass\n", "f") == 0
    assert arity("this is not python(", "f") == 0
    assert orders(2) == [(0, 1), (1, 0)] and len(orders(3)) == 6 and orders(4) == [(0, 1, 2, 3)]


@pytest.fixture(scope="module")
def checker():
    c = ExecutionChecker()
    yield c
    c.close()


def test_a_renamed_task_with_reordered_parameters_passes_and_another_task_fails(checker):
    keys = bundled_keys()
    total_match, gcd = keys[("humaneval", "HumanEval/74")], keys[("humaneval", "HumanEval/13")]
    reordered = "def fewer_chars(b, a):\n    return a if sum(map(len, a)) <= sum(map(len, b)) else b\n"
    longer = "def more_chars(b, a):\n    return a if sum(map(len, a)) >= sum(map(len, b)) else b\n"
    # swapped arguments make the program raise rather than fail: the other order is still tried
    fragment = "def contains_fragment(fragment, words):\n    return any(fragment in w for w in words)\n"
    lcm = "def lcm(a, b):\n    x, y = a, b\n    while y:\n        x, y = y, x % y\n    return a * b // x\n"
    got = checker.check(
        [
            ("Write fewer_chars(b, a) ...", reordered, None, total_match),
            ("Write more_chars(b, a) ...", longer, None, total_match),
            ("Least common multiple", lcm, None, gcd),
            ("contains_fragment(fragment, words)", fragment, None, keys[("mbppplus", "Mbpp/91")]),
            # no program: the row's stated examples against the item's canonical solution
            ("", None, stated_tests("hcf(25, 15) should be 5 and hcf(3, 7) should be 1"), gcd),
            ("", None, stated_tests("lcm(4, 6) should be 12 and lcm(3, 5) should be 15"), gcd),
            # an unnamed I/O table ("f" bound to the entry point): substring filter, not prefix filter
            ("", None, stated_tests(TABLE), keys[("humaneval", "HumanEval/7")]),
            ("", None, stated_tests(TABLE), keys[("humaneval", "HumanEval/29")]),
        ]
    )
    if checker.unavailable:
        pytest.fail(f"no sandbox on this machine: {checker.unavailable}")
    assert got == [True, False, False, True, True, False, True, False]


TABLE = "Keep the strings containing the substring.\n| input | output |\n| [], 'a' | [] |\n| ['abc', 'bacd', 'cde'], 'a' | ['abc', 'bacd'] |"
