"""Procedural math problems with sympy-computed answers and gold step-by-step solutions.

Each template draws from `random.Random(f"{seed}:{template}:{index}")`, so problem i of a seed is
the same whatever `--n` is, and the answer is computed with exact sympy arithmetic rather than
floats (a gold answer must never be off by a rounding error).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sympy as sp

from rsynth.synth.knobs import Knobs

NAMES = ["Tom", "Ava", "Liam", "Mia", "Noah", "Zoe", "Omar", "Lena", "Ravi", "Sara", "Ken", "Ines"]
THINGS = ["apples", "marbles", "stickers", "books", "pencils", "coins", "cards", "shells"]


@dataclass(frozen=True)
class GeneratedProblem:
    problem: str
    answer: sp.Expr
    steps: list[str]


def _fmt(x: sp.Expr) -> str:
    x = sp.nsimplify(x)
    return str(x) if isinstance(x, (sp.Integer, sp.Rational)) else sp.sstr(x)


def arithmetic(rng: random.Random, k: Knobs) -> GeneratedProblem:
    """A chain of everyday operations: has a, buys b, gives away c, doubles, shares equally."""
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    total = sp.Integer(rng.randint(2, k.max_number))
    sentences = [f"{name} has {total} {thing}."]
    steps = [f"{name} starts with {total} {thing}."]
    for _ in range(rng.randint(1, max(1, k.max_steps))):
        op = rng.choice(["buy", "give", "double", "share"] if total > 1 else ["buy", "double"])
        if op == "buy":
            b = sp.Integer(rng.randint(1, k.max_number))
            sentences.append(f"Then {name} gets {b} more {thing}.")
            steps.append(f"After getting {b} more, {name} has {total} + {b} = {total + b} {thing}.")
            total += b
        elif op == "give":
            c = sp.Integer(rng.randint(1, int(total) - 1))
            sentences.append(f"Then {name} gives away {c} {thing}.")
            steps.append(f"After giving away {c}, {name} has {total} - {c} = {total - c} {thing}.")
            total -= c
        elif op == "double":
            sentences.append(f"Then the number of {thing} {name} has doubles.")
            steps.append(f"Doubling gives {total} * 2 = {total * 2} {thing}.")
            total *= 2
        else:
            divisors = [d for d in range(2, 6) if total % d == 0]
            if not divisors:
                b = sp.Integer(rng.randint(1, k.max_number))
                sentences.append(f"Then {name} gets {b} more {thing}.")
                steps.append(f"After getting {b} more, {name} has {total} + {b} = {total + b} {thing}.")
                total += b
                continue
            d = rng.choice(divisors)
            sentences.append(f"Then {name} keeps only one of {d} equal groups of the {thing}.")
            steps.append(f"One of {d} equal groups is {total} / {d} = {total / d} {thing}.")
            total /= d
    sentences.append(f"How many {thing} does {name} have now?")
    steps.append(f"The answer is: {total}")
    return GeneratedProblem(" ".join(sentences), total, steps)


def linear(rng: random.Random, k: Knobs) -> GeneratedProblem:
    """Solve a*x + b = c (one or two steps), or a*x + b = d*x + e (three steps) for an integer x."""
    x = sp.Symbol("x")
    sol = sp.Integer(rng.randint(-k.max_number, k.max_number))
    a = sp.Integer(rng.choice([i for i in range(-9, 10) if i not in (0, 1)]))
    b = sp.Integer(rng.randint(-k.max_number, k.max_number))
    if k.max_steps >= 3 and rng.random() < 0.5:
        d = sp.Integer(rng.choice([i for i in range(-9, 10) if i not in (0, int(a))]))
        e = a * sol + b - d * sol
        lhs, rhs = a * x + b, d * x + e
        steps = [
            f"Subtract {d}x from both sides: {sp.sstr(lhs - d * x)} = {e}.",
            f"Subtract {b} from both sides: {sp.sstr((a - d) * x)} = {e - b}.",
            f"Divide both sides by {a - d}: x = {sol}.",
        ]
    else:
        lhs, rhs = a * x + b, a * sol + b
        steps = [
            f"Subtract {b} from both sides: {sp.sstr(a * x)} = {rhs - b}.",
            f"Divide both sides by {a}: x = {sol}.",
        ]
    assert sp.solve(sp.Eq(lhs, rhs), x) == [sol]
    steps.append(f"The answer is: {sol}")
    return GeneratedProblem(f"Solve for x: {sp.sstr(lhs)} = {sp.sstr(rhs)}.", sol, steps)


def fractions(rng: random.Random, k: Knobs) -> GeneratedProblem:
    """Add, subtract or multiply two fractions; the answer is in lowest terms."""
    top = max(3, min(k.max_number, 12))
    p = sp.Rational(rng.randint(1, top), rng.randint(2, top))
    q = sp.Rational(rng.randint(1, top), rng.randint(2, top))
    op = rng.choice(["+", "-", "*"])
    result = {"+": p + q, "-": p - q, "*": p * q}[op]
    if op == "*":
        steps = [f"Multiply numerators and denominators: ({p.p}*{q.p})/({p.q}*{q.q}) = {p.p * q.p}/{p.q * q.q}."]
    else:
        den = sp.ilcm(p.q, q.q)
        a, b = p.p * den // p.q, q.p * den // q.q
        steps = [
            f"Use the common denominator {den}: {p} = {a}/{den} and {q} = {b}/{den}.",
            f"Combine the numerators: ({a} {op} {b})/{den} = {a + b if op == '+' else a - b}/{den}.",
        ]
    steps.append(f"In lowest terms this is {_fmt(result)}.")
    steps.append(f"The answer is: {_fmt(result)}")
    return GeneratedProblem(f"Compute {p} {op} {q}. Give the answer as a fraction in lowest terms.", result, steps)


def percent(rng: random.Random, k: Knobs) -> GeneratedProblem:
    """A percentage of a price, optionally followed by a discount."""
    price = sp.Integer(rng.randrange(10, max(20, k.max_number * 10) + 1, 10))
    pct = sp.Integer(rng.choice([5, 10, 20, 25, 50]))
    off = price * pct / 100
    if k.max_steps >= 2 and rng.random() < 0.5:
        problem = f"A jacket costs ${price}. It is on sale for {pct}% off. What is the sale price in dollars?"
        steps = [
            f"The discount is {pct}% of {price} = {price} * {pct} / 100 = {_fmt(off)} dollars.",
            f"The sale price is {price} - {_fmt(off)} = {_fmt(price - off)} dollars.",
        ]
        answer = price - off
    else:
        problem = f"What is {pct}% of {price}?"
        steps = [f"{pct}% of {price} is {price} * {pct} / 100 = {_fmt(off)}."]
        answer = off
    steps.append(f"The answer is: {_fmt(answer)}")
    return GeneratedProblem(problem, answer, steps)


TEMPLATES: dict[str, Callable[[random.Random, Knobs], GeneratedProblem]] = {
    "arithmetic": arithmetic,
    "linear": linear,
    "fractions": fractions,
    "percent": percent,
}


def generate_problems(template: str, n: int, seed: int, knobs: Knobs) -> Iterator[dict]:
    """Yield `n` problem rows (PROBLEM_SCHEMA) from a template, or from all templates in turn ("mixed")."""
    names = list(TEMPLATES) if template == "mixed" else [template]
    for i in range(n):
        name = names[i % len(names)]
        rng = random.Random(f"{seed}:{name}:{i}")
        gp = TEMPLATES[name](rng, knobs)
        yield {
            "id": f"{name}-s{seed}-{i:06d}",
            "domain": "math",
            "problem": gp.problem,
            "reference_answer": _fmt(gp.answer),
            "gold_steps": gp.steps,
            "source": f"template:{name}",
            "metadata": json.dumps(
                {
                    "template": name,
                    "seed": seed,
                    "index": i,
                    "max_steps": knobs.max_steps,
                    "max_number": knobs.max_number,
                }
            ),
        }
