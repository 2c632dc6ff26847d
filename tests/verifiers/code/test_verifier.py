"""Code verifier on real benchmarks (HumanEval, MBPP+) and real attacks, in the real sandbox."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import pytest

from rsynth.verifiers import get_verifier
from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.code import evalplus_tests
from rsynth.verifiers.code.mbpp_types import restore_inputs
from rsynth.verifiers.linelabels import first_breaking_line
from tests.paths import BENCHMARKS as BENCH

# Wraps the entry point so every return value changes (bool flips, numbers move by 1 + |x|, so
# even tests with a relative tolerance notice): a broken variant of any canonical solution.
BREAK = """
_rsynth_original = {ep}
def {ep}(*args, **kwargs):
    out = _rsynth_original(*args, **kwargs)
    if isinstance(out, bool):
        return not out
    if isinstance(out, (int, float)):
        return out + 1 + abs(out)
    if isinstance(out, str):
        return out + "x"
    if isinstance(out, (list, tuple)):
        return type(out)(list(out) + [None])
    return 0 if out is None else None
"""


@pytest.fixture(scope="module")
def verifier():
    return get_verifier("code", timeout=20.0, workers=2)


def _humaneval():
    with gzip.open(BENCH / "humaneval.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


def _mbppplus():
    return [json.loads(line) for line in (BENCH / "mbppplus.jsonl").read_text().splitlines()]


@pytest.mark.slow  # a benchmark sweep: hundreds of sandboxed programs (make test runs it)
def test_humaneval_canonical_pass_and_broken_fail(verifier):
    rows = _humaneval()
    assert len(rows) == 164
    good = [
        VerifyItem(r["test"], r["prompt"] + r["canonical_solution"], {"entry_point": r["entry_point"]}) for r in rows
    ]
    bad = [
        VerifyItem(g.reference, g.candidate + BREAK.format(ep=r["entry_point"]), g.extra) for g, r in zip(good, rows)
    ]
    verdicts = verifier.verify_batch(good + bad)
    assert [r["task_id"] for r, v in zip(rows, verdicts[:164]) if v.status != "pass"] == []
    assert [r["task_id"] for r, v in zip(rows, verdicts[164:]) if v.status != "fail"] == []
    assert "AssertionError" in verdicts[164].evidence["stderr_tail"]


@pytest.mark.slow  # a benchmark sweep: hundreds of sandboxed programs (make test runs it)
def test_mbppplus_canonical_pass_and_broken_fail(verifier):
    rows = _mbppplus()
    assert len(rows) == 378
    good = [VerifyItem(r["assertion"], r["canonical_solution"], {"entry_point": r["entry_point"]}) for r in rows]
    bad = [
        VerifyItem(g.reference, g.candidate + BREAK.format(ep=r["entry_point"]), g.extra) for g, r in zip(good, rows)
    ]
    verdicts = verifier.verify_batch(good + bad)
    assert [r["task_id"] for r, v in zip(rows, verdicts[:378]) if v.status != "pass"] == []
    assert [r["task_id"] for r, v in zip(rows, verdicts[378:]) if v.status != "fail"] == []


# MBPP+ tasks whose base asserts pass a wrong program that the plus inputs reject (with the wrong
# program), tasks needing evalplus's input types (tuples, sets, complex) and its special oracles.
BASE_ONLY_PASSES = {
    "Mbpp/3": "def is_not_prime(n):\n    return n in (1, 10, 35)\n",
    "Mbpp/4": "def heap_queue_largest(nums, n):\n    return sorted(set(nums), reverse=True)[:n]\n",
}
TYPED = [  # Mbpp/737 compares only "is not None" (its reference returns a re.Match)
    "Mbpp/2",
    "Mbpp/63",
    "Mbpp/75",
    "Mbpp/106",
    "Mbpp/722",
    "Mbpp/124",
    "Mbpp/252",
    "Mbpp/259",
    "Mbpp/278",
    "Mbpp/580",
    "Mbpp/737",
]


def _evalplus_item(row: dict, program: str) -> VerifyItem:
    return VerifyItem(evalplus_tests(row), program, {"style": "evalplus", "entry_point": row["entry_point"]})


def test_mbppplus_input_types_are_restored():
    assert restore_inputs("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert restore_inputs("Mbpp/124", [[1, "(1+2j)"]]) == [(1.0, 1 + 2j)]
    assert restore_inputs("Mbpp/580", [[[1, [2, 3]], 4]]) == [((1, (2, 3)), 4)]
    assert restore_inputs("HumanEval/2", [[[1, 2]]]) == [[[1, 2]]]


def test_mbppplus_plus_inputs_reject_what_the_base_asserts_pass(verifier):
    """The evalplus style: outputs recorded from the canonical solution (in the sandbox) on base +
    plus inputs with evalplus's input types, compared with the task's atol and special oracles."""
    rows = {r["task_id"]: r for r in _mbppplus()}
    picked = [rows[t] for t in [*BASE_ONLY_PASSES, *TYPED]] + [r for r in rows.values() if float(r["atol"]) > 0][:3]
    base_only = [
        VerifyItem(rows[t]["assertion"], p, {"entry_point": rows[t]["entry_point"]})
        for t, p in BASE_ONLY_PASSES.items()
    ]
    assert [v.status for v in verifier.verify_batch(base_only)] == ["pass"] * len(base_only)
    items = [_evalplus_item(rows[t], p) for t, p in BASE_ONLY_PASSES.items()]
    items += [_evalplus_item(r, r["canonical_solution"]) for r in picked]
    items += [_evalplus_item(r, r["canonical_solution"] + BREAK.format(ep=r["entry_point"])) for r in picked]
    verdicts = [
        (v.status, v.evidence.get("reason"), v.evidence.get("stderr_tail", "")[-200:])
        for v in verifier.verify_batch(items)
    ]
    n = len(BASE_ONLY_PASSES)
    assert [v[0] for v in verdicts[:n]] == ["fail"] * n, verdicts[:n]
    assert [v[0] for v in verdicts[n : n + len(picked)]] == ["pass"] * len(picked), verdicts[n : n + len(picked)]
    broken = dict(zip([r["task_id"] for r in picked], verdicts[n + len(picked) :]))
    assert {t for t, v in broken.items() if v[0] != "fail"} == set()


@pytest.mark.conformance  # minutes of sandboxed runs: `make conformance`, which CI runs after `make test`
def test_all_mbppplus_canonical_solutions_pass_with_plus_inputs():
    """Under evalplus's limits (4 GB; Mbpp/599 sums ranges of 10^8, Mbpp/630 returns 11 MB).
    Mbpp/255's expected outputs are about a gigabyte of tuples: recording them runs out of memory,
    so that task is an `error` naming its reference, never a pass or a fail."""
    rows = _mbppplus()
    verifier = get_verifier("code", timeout=300.0, workers=2, memory_mb=4096)
    verdicts = verifier.verify_batch([_evalplus_item(r, r["canonical_solution"]) for r in rows])
    bad = {r["task_id"]: (v.status, v.evidence.get("reason")) for r, v in zip(rows, verdicts) if v.status != "pass"}
    assert bad == {"Mbpp/255": ("error", "the reference solution of Mbpp/255 failed on its own tests")}


def test_stdio_style(verifier):
    program = "n = int(input())\nprint(sum(range(n + 1)))\n"
    tests = json.dumps({"inputs": ["3\n", "10\n"], "outputs": ["6\n", "55"]})
    wrong = program.replace("n + 1", "n")
    verdicts = verifier.verify_batch(
        [VerifyItem(tests, program, {"style": "stdio"}), VerifyItem(tests, wrong, {"style": "stdio"})]
    )
    assert [v.status for v in verdicts] == ["pass", "fail"]
    assert verdicts[1].evidence["case"] == 0


def test_programs_cannot_fake_a_pass(verifier):
    tests = "assert f() == 2"
    items = [
        VerifyItem(tests, "import os\ndef f():\n    os._exit(0)\n"),  # exit 0 halfway through the tests
        VerifyItem(tests, "print('OK')\ndef f():\n    return 1\n"),
        VerifyItem(tests, "def f(:\n    return 2\n"),  # does not load
        VerifyItem(tests, "import os\ndef f():\n    return open('spec.json').read()\n"),  # tests are gone
        VerifyItem(tests, "def f():\n    return 2\n"),
    ]
    assert [v.status for v in verifier.verify_batch(items)] == ["fail", "fail", "error", "fail", "pass"]


def test_scratch_directories_are_removed(verifier, tmp_path):
    """Even one the program made read-only; found by a marker file (other runs may be in flight)."""
    marker = f"marker-{uuid.uuid4().hex}"
    program = f"import os\nopen({marker!r}, 'w').close()\nos.chmod('.', 0o500)\ndef f():\n    return 1\n"
    assert verifier.verify_batch([VerifyItem("assert f() == 1", program)])[0].status == "pass"
    assert not list(Path("/tmp").glob(f"rsynth-sbx-*/work/{marker}"))


def test_line_labels_find_the_first_breaking_line(verifier):
    solution = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total"
    tests = "assert f([1, 2, 3]) == 6\nassert f([]) == 0"
    harmless_then_bad = solution.replace("total = 0", "total = 0  # start").replace("total += x", "total -= x")
    labels = first_breaking_line(verifier, solution, harmless_then_bad, tests)
    assert labels.changed_lines == [1, 3]
    assert labels.hybrid_status == ["pass", "fail"]
    assert labels.first_error_line == 3 and labels.labels == [1, 1, 1, 0, None]
    harmless = solution.replace("return total", "return total + 0")
    assert first_breaking_line(verifier, solution, harmless, tests).first_error_line == -1
    with pytest.raises(ValueError):
        first_breaking_line(verifier, solution, solution + "\n", tests)
