"""Right / wrong / no-answer rates of answer-extraction chains on real solution text.

Chooses the default of `--answer-fallback`. The question is what a solution that reaches its answer
without an explicit marker ("The answer is", \\boxed, ####) should count as: no answer (today's rule,
scored wrong by the searches) or the last number of its last step. Measured on:
- GSM8K test worked solutions (1319), as written and with the "#### N" line (and the <<calc>>
  annotations) removed: human text that states the answer only inside its last sentence;
- ProcessBench GSM8K (400 model solutions, references from GSM8K test by problem text), as written and
  with the answer marker of the last step removed; "agrees" = our verdict equals ProcessBench's
  `final_answer_correct`;
- MATH-500 answers (500; the set has no solutions) written as a last step "so the result is $A$."
  without a box: the number fallback can only be right when A is a plain number.
Verdicts come from rsynth's math verifier, as in the pipelines.

    PYTHONPATH=. python bench/answer_extraction.py [--benchmarks /work/shared/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsynth.answers import ANSWER_IS, extract_answer, last_boxed
from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.math import MathVerifier

CHAINS = {
    "explicit (boxed,answer-is,hashes)": "boxed,answer-is,hashes",
    "+ last-number": "boxed,answer-is,hashes,last-number",
}


def gsm8k(root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, str]]:
    rows = [json.loads(line) for line in open(root / "gsm8k_test.jsonl")]
    written, bare, refs = [], [], {}
    for r in rows:
        body, ref = r["answer"].rsplit("####", 1)
        refs[r["question"].strip()] = ref.strip().replace(",", "")
        written.append((r["answer"], ref.strip().replace(",", "")))
        bare.append((re.sub(r"<<[^>]*>>", "", body).strip(), ref.strip().replace(",", "")))
    return written, bare, refs


def strip_marker(step: str) -> str:
    """The last step without its explicit answer: the box unwrapped, the "answer is" clause cut."""
    box = last_boxed(step)
    if box is not None:
        step = re.sub(r"\\(?:boxed|fbox)\{" + re.escape(box) + r"\}", lambda _: box, step)
    heads = list(ANSWER_IS.finditer(step))
    return step[: heads[-1].start()].strip() if heads else step


def processbench(root: Path, refs: dict[str, str]) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str, bool]]]:
    items = json.load(open(root / "processbench_gsm8k.json"))
    written, bare = [], []
    for it in items:
        ref = refs.get(it["problem"].strip())
        if ref is None:
            continue
        steps = list(it["steps"])
        written.append(("\n\n".join(steps), ref, it["final_answer_correct"]))
        bare.append(("\n\n".join(steps[:-1] + [strip_marker(steps[-1])]), ref, it["final_answer_correct"]))
    return written, bare


def math500(root: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in open(root / "math500.jsonl")]
    return [(f"We work it out.\n\nSo the result is ${r['answer']}$.", r["answer"]) for r in rows]


def rates(verifier: MathVerifier, texts: list[str], refs: list[str], chain: str) -> tuple[list[str], dict[str, float]]:
    answers = [extract_answer(t, chain) for t in texts]
    todo = [i for i, a in enumerate(answers) if a is not None]
    verdicts = dict(zip(todo, verifier.verify_batch([VerifyItem(refs[i], answers[i]) for i in todo])))
    outcome = ["no_answer" if a is None else ("right" if verdicts[i].ok else "wrong") for i, a in enumerate(answers)]
    n = len(texts)
    return outcome, {o: outcome.count(o) / n for o in ("right", "wrong", "no_answer")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", type=Path, default=Path("/work/shared/benchmarks"))
    args = ap.parse_args()
    start = time.perf_counter()
    g_written, g_bare, refs = gsm8k(args.benchmarks)
    pb_written, pb_bare = processbench(args.benchmarks, refs)
    sets = [
        ("GSM8K test, as written", g_written, None),
        ("GSM8K test, no #### line", g_bare, None),
        ("ProcessBench GSM8K, as written", pb_written, [f for *_, f in pb_written]),
        ("ProcessBench GSM8K, marker removed", pb_bare, [f for *_, f in pb_bare]),
        ("MATH-500 answers, no box", math500(args.benchmarks), None),
    ]
    table = Table(title="Answer extraction on real solution text: share right / wrong / no answer (math verifier)")
    for col in ("text", "n", "chain", "right", "wrong", "no answer", "agrees with ProcessBench"):
        table.add_column(col, justify="left" if col in ("text", "chain") else "right")
    with MathVerifier(timeout=5.0) as verifier:
        for name, items, flags in sets:
            texts, gold = [it[0] for it in items], [it[1] for it in items]
            for label, chain in CHAINS.items():
                outcome, r = rates(verifier, texts, gold, chain)
                agree = f"{sum((o == 'right') == f for o, f in zip(outcome, flags)) / len(flags):.3f}" if flags else "-"
                table.add_row(
                    name,
                    str(len(items)),
                    label,
                    f"{r['right']:.3f}",
                    f"{r['wrong']:.3f}",
                    f"{r['no_answer']:.3f}",
                    agree,
                )
            table.add_section()
    console = Console(width=140)
    console.print(table)
    console.print(f"elapsed {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
