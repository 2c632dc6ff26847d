"""`generate problems` from templates: deterministic per seed, and every answer re-derived with sympy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sympy as sp

from rsynth.data.shards import read_split
from rsynth.stages.problems import write_template_problems
from rsynth.synth.knobs import TEMPLATE_NAMES
from rsynth.synth.templates import TEMPLATES, Knobs, generate_problems

ALL = [*TEMPLATES, "mixed"]
KNOBS = Knobs(max_steps=3, max_number=20)


def test_the_light_template_names_are_the_templates() -> None:
    """The CLI offers `synth/knobs.py`'s names without importing sympy: they must be the real templates."""
    assert tuple(TEMPLATES) == TEMPLATE_NAMES


@pytest.mark.parametrize("template", ALL)
def test_same_seed_same_problems_and_prefix_stable(template: str) -> None:
    """Seed fixes the set; problem i does not depend on --n; another seed gives other problems."""
    a = list(generate_problems(template, 40, 7, KNOBS))
    assert a == list(generate_problems(template, 40, 7, KNOBS))
    assert list(generate_problems(template, 10, 7, KNOBS)) == a[:10]
    b = list(generate_problems(template, 40, 8, KNOBS))
    assert [r["problem"] for r in a] != [r["problem"] for r in b]
    assert len({r["id"] for r in a}) == 40


def _last_line_answer(row: dict) -> sp.Expr:
    last = row["gold_steps"][-1]
    assert last.startswith("The answer is: ")
    return sp.sympify(last.removeprefix("The answer is: "), rational=True)


def _check_equations(steps: list[str]) -> int:
    """Every 'a op b = c' chain written in a gold step must hold in exact arithmetic."""
    checked = 0
    for step in steps:
        for lhs, rhs in re.findall(
            r"(-?\d+(?:/\d+)?(?:\s*[-+*/]\s*-?\d+(?:/\d+)?)+)\s*=\s*(-?\d+(?:/\d+)?)(?![\d/])", step
        ):
            assert sp.sympify(lhs, rational=True) == sp.sympify(rhs, rational=True), step
            checked += 1
    return checked


def _independent_answer(row: dict) -> sp.Expr | None:
    """Solve the problem text itself with sympy where the template's wording allows it."""
    text = row["problem"]
    template = json.loads(row["metadata"])["template"]
    if template == "linear":
        lhs, rhs = text.removeprefix("Solve for x: ").rstrip(".").split(" = ")
        x = sp.Symbol("x")
        (sol,) = sp.solve(sp.Eq(sp.sympify(lhs), sp.sympify(rhs)), x)
        return sol
    if template == "fractions":
        expr = text.removeprefix("Compute ").split(". Give")[0]
        return sp.sympify(expr, rational=True)
    if template == "percent":
        nums = [sp.Integer(n) for n in re.findall(r"\d+", text)]
        if "sale" in text:
            price, pct = nums
            return price - price * pct / 100
        pct, price = nums
        return price * pct / 100
    return None


@pytest.mark.parametrize("template", ALL)
def test_answers_match_gold_steps_and_problem_text(template: str) -> None:
    equations = independent = 0
    for row in generate_problems(template, 60, 3, KNOBS):
        ref = sp.sympify(row["reference_answer"], rational=True)
        assert _last_line_answer(row) == ref, row
        equations += _check_equations(row["gold_steps"])
        solved = _independent_answer(row)
        if solved is not None:
            assert sp.simplify(solved - ref) == 0, row
            independent += 1
        assert row["domain"] == "math" and row["source"].startswith("template:")
    if template in ("arithmetic", "fractions", "percent", "mixed"):
        assert equations > 0
    if template != "arithmetic":
        assert independent > 0


def test_knobs_bound_the_difficulty() -> None:
    """max_steps bounds the chained operations of arithmetic problems (start + ops + answer lines)."""
    for row in generate_problems("arithmetic", 50, 0, Knobs(max_steps=1, max_number=9)):
        assert len(row["gold_steps"]) == 3
    assert max(len(r["gold_steps"]) for r in generate_problems("arithmetic", 50, 0, Knobs(max_steps=4))) > 3


@pytest.mark.parametrize("template", ALL)
def test_written_problem_sets_are_identical_per_seed(tmp_path: Path, template: str) -> None:
    """The written shards, not just the generator, are the same for the same seed (and resume is a no-op)."""
    a = write_template_problems(tmp_path / "a", template, 25, 5, KNOBS, shard_size=10, overwrite=False)
    write_template_problems(tmp_path / "b", template, 25, 5, KNOBS, shard_size=10, overwrite=False)
    assert a["problems"] == 25
    ta, tb = read_split(tmp_path / "a"), read_split(tmp_path / "b")
    assert ta.equals(tb)
    assert sorted(p.name for p in (tmp_path / "a" / "data").glob("*.arrow")) == [
        f"shard-0000{i}.arrow" for i in range(3)
    ]
    import datasets

    ds = datasets.load_dataset(
        "arrow", data_files=str(tmp_path / "a" / "data" / "*.arrow"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.to_list() == ta.to_pylist()
    again = write_template_problems(tmp_path / "a", template, 25, 5, KNOBS, shard_size=10, overwrite=False)
    assert (
        again["stored: problems"] == 25
        and "already complete" in again["note"]
        and read_split(tmp_path / "a").equals(ta)
    )
