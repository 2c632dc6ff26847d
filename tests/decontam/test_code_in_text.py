"""Code rows that carry their program in the text, in Python or another language (issue 23).

tests/fixtures/decontam_code_in_text.jsonl: HumanEval items rewritten as a single `text` field, the
form of code instruction data and of published rephrased sets: a renamed Python function with its
body (bare, or fenced in a chat answer), or the task translated into C, C++, Java, JavaScript, Go or
Rust; and look-alikes that share an item's function name but do another thing (a sort comparator
named `compare`, a merge sort named `sort_array`, base64 `encode`, a `fizzbuzz`), plus unrelated code.
"""

from __future__ import annotations

import json

import pytest

from rsynth.decontam.names import defined_functions
from rsynth.decontam.programs import program_in_text
from tests.paths import FIXTURES

ROWS = FIXTURES / "decontam_code_in_text.jsonl"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("def has_close_elements(numbers, threshold):\n    pass", {"hascloseelements"}),
        ("int x_or_y(int n, int x, int y) {\n  return x;\n}", {"xory"}),
        ("char **split_parentheses(char *s, int *n) {", {"splitparentheses"}),
        ("public static List<Integer> rollingMax(List<Integer> xs) {", {"rollingmax"}),
        ("std::vector<int> sort_array(std::vector<int> arr) {", {"sortarray"}),
        ("function evenOddCount(num) {", {"evenoddcount"}),
        ("const isSorted = (lst) => lst.every(Boolean);", {"issorted"}),
        ("let twice = async function (x) { return 2 * x; }", {"twice"}),
        ("fn below_zero(ops: &[i32]) -> bool {", {"belowzero"}),
        ("func (s *S) StrLen(x string) int {", {"strlen"}),
        ("int main() {\n  if (x > 0) {\n    while (y) { return f(x); }\n  } else if (z) {\n  }\n}", set()),
        ("Compute the sum of 3 and 4, then divide (by 7).", set()),
    ],
)
def test_functions_a_row_defines_in_any_language(text, names):
    assert defined_functions(text) == names


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("def f(x):\n    return x + 1\n", True),
        ("Here it is:\n```python\ndef f(x):\n    return x + 1\n```\nDone.", True),
        ("```\ndef f(x):\n    y = x * 2\n    return y\n```", True),
        ("```py\nimport math\n\ndef f(x):\n    return math.sqrt(x)\n```", True),
        ('def f(x):\n    """Return x plus one."""\n', False),  # a task statement, not a solution
        ('def f(x):\n    """Return x plus one."""\n    pass\n', False),
        ("def f(x):\n    ...\n", False),
        ("def f(x):\n    raise NotImplementedError\n", False),
        ("Here is the code:\n\nfrom math import sqrt\n\ndef f(x):\n    return sqrt(x)\n\nIt uses sqrt.", True),
        ("The rewritten function:\ndef f(x):\n    return x * 2\nThis doubles x.\nEnjoy!", True),
        ("```python\ndef f(x):\n    return x + 1\n```\nUse it:\n```python\nprint(f(2))\n```", True),
        ("Q1\n```python\ndef f(x):\n    return x + 1\n```\nQ2\n```python\ndef g(x):\n    return 2 * x\n```", False),
        ("```js\nfunction f(x) { return x + 1; }\n```", False),  # not Python
        ("Write def f(x) that returns x + 1.", False),  # prose that does not parse
        ("What is 3 + 4?", False),
        ("def f():\n    return " + "-" * 15000 + "1", False),  # the parser runs out of memory: not a program
        ("def f():\n    return " + "not " * 4000 + "x", False),  # too deeply nested for the parser
        ("def f():\n    return " + "1+" * 9000 + "1", False),
    ],
)
def test_the_python_program_a_text_carries(text, found):
    assert (program_in_text(text) is not None) is found


@pytest.mark.slow  # loads MiniLM and runs programs in the sandbox
def test_code_in_text_is_matched_by_behaviour_or_name(tmp_path, monkeypatch):
    from rsynth.data.shards import read_split
    from rsynth.decontam.params import DecontamParams
    from rsynth.decontam.pipeline import run

    monkeypatch.setenv("RSYNTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = [json.loads(line) for line in ROWS.open()]
    report = run(str(ROWS), tmp_path / "out", DecontamParams(against="humaneval", semantic=True, text_column="text"))
    removed = {r["id"]: r["contamination"] for r in read_split(tmp_path / "out", "removed").to_pylist()}
    missed = [r["id"] for r in rows if r["item_id"] and removed.get(r["id"], {}).get("item_id") != r["item_id"]]
    wrong = [r["id"] for r in rows if not r["item_id"] and r["id"] in removed]
    assert not missed and not wrong, (missed, wrong)
    rules = {removed[r["id"]]["evidence"]["rule"] for r in rows if r["item_id"]}
    assert {"same-behaviour", "same-name"} <= rules  # a Python program ran; a translation was named
    assert report["kept"] + report["removed"] == len(rows)
