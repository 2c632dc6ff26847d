"""Recall and false positives of `decontaminate` on the hand-written probe, per part, benchmark and style.

tests/fixtures/decontam_probe.jsonl (parts "tune" and "heldout") and decontam_probe_heldout2.jsonl
(part "heldout2") hold rephrasings of GSM8K, MATH-500, AIME, AMC, HumanEval and
MBPP+ items (kind "rephrase": should be removed, matched to their item), look-alikes (same setup with
another question, one number changed: must not be removed) and controls (GSM8K-train questions with
their answers, unrelated programs: must not be removed). Its "heldout" part uses styles the tuned
part lacks and was never tuned on; "heldout2" was written later, before the next round of tuning,
in other styles and by other "authors" (worksheets, translated exams, second person, one-liners,
LaTeX restatements, number words, few-shot prompts, code bug reports, renamed functions with
reordered arguments), and was never tuned on either. decontam_probe_heldout3.jsonl (part "heldout3") was
written and measured before the third round of tuning, from items none of the others use (dialogue,
new stories, units converted, terse "compute", number words, an item inside a long few-shot prompt,
code renamed with an I/O table, code as prose only) and is never tuned on. decontam_probe_heldout4.jsonl (part "heldout4") was written and measured
before the fifth round of tuning, from items none of the others use, in the styles an LLM rephraser produces
(sentence-by-sentence paraphrase keeping the numbers, synonym swaps, reordered clauses, passive voice,
"Determine/Find/Calculate" openings, the question moved to the front), with some rephrasings carrying no
answer, plus units, number words, dialogue, terse, an instruction wrapper, a long few-shot prompt and code as
prose, renamed or with a rewritten docstring; and is never tuned on. Three configurations run on the same rows:

* `ngram`: exact and n-gram stages only;
* `semantic`: `--semantic` with the answer, solution and tests columns ignored (rows with neither);
* `semantic+answers`: `--semantic` using the rows' answers (maths) and reference programs (code).

Per cell: candidate recall (the true item among the items the row was compared with), recall
(removed and matched to the right item), false-positive rate (look-alikes and controls removed),
and rows sent to review/. Runs the stage's classifier in this process (same code as the command).

    python bench/decontam_probe.py [--parts tune,heldout,heldout2,heldout3,heldout4] [--misses]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rsynth.decontam.classify import Classifier  # noqa: E402
from rsynth.decontam.keys import row_facts  # noqa: E402
from rsynth.decontam.params import DecontamParams  # noqa: E402
from rsynth.decontam.pipeline import plan  # noqa: E402

PROBES = (
    ROOT / "tests" / "fixtures" / "decontam_probe.jsonl",  # parts "tune" and "heldout"
    ROOT / "tests" / "fixtures" / "decontam_probe_heldout2.jsonl",  # part "heldout2"
    ROOT / "tests" / "fixtures" / "decontam_probe_heldout3.jsonl",  # part "heldout3" (never tuned)
    ROOT / "tests" / "fixtures" / "decontam_probe_heldout4.jsonl",  # part "heldout4" (never tuned)
)
MODES = {
    "ngram": DecontamParams(),
    "semantic": DecontamParams(semantic=True, answer_column="none", solution_column="none", tests_column="none"),
    "semantic+answers": DecontamParams(semantic=True),
}


def classify(rows: list[dict], params: DecontamParams) -> list[dict]:
    """Outcome per row: removed (item), review (item), considered items."""
    p = plan(params)
    clf = Classifier(p.settings)
    texts = [r["problem"] for r in rows]
    data = [{k: v for k, v in r.items() if k in ("problem", "answer", "solution") and v is not None} for r in rows]
    facts = [
        row_facts(d, t, params.answer_column, params.solution_column, params.tests_column).as_tuple()
        for d, t in zip(data, texts)
    ]
    out = []
    for start in range(0, len(rows), 256):
        res = clf(texts[start : start + 256], facts[start : start + 256])
        considered = clf.semantic.considered if clf.semantic is not None else [set() for _ in res.matches]
        for j, (m, rv) in enumerate(zip(res.matches, res.reviews)):
            seen = {clf.index.describe(i)[1] for i in considered[j]} | ({m.item_id} if m is not None else set())
            out.append(
                {
                    "removed": m.item_id if m is not None else None,
                    "rule": (m.evidence or {}).get("rule", m.stage) if m else None,
                    "review": rv.item_id if rv is not None else None,
                    "considered": seen,
                }
            )
    clf.close()
    return out


def table(rows: list[dict], outcomes: dict[str, list[dict]], key) -> list[tuple]:
    """(group, mode, n rephrased, candidate recall, recall, n negatives, FP rate, review) per group and mode."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[key(r)].append(i)
    lines = []
    for g in sorted(groups):
        for mode, res in outcomes.items():
            pos = [i for i in groups[g] if rows[i]["kind"] == "rephrase"]
            neg = [i for i in groups[g] if rows[i]["kind"] != "rephrase"]
            cand = sum(bool(_items(rows[i]) & res[i]["considered"]) for i in pos)
            hit = sum(res[i]["removed"] in _items(rows[i]) for i in pos)
            fp = sum(res[i]["removed"] is not None for i in neg)
            review = sum(res[i]["review"] is not None for i in groups[g])
            lines.append(
                (
                    g,
                    mode,
                    len(pos),
                    cand / len(pos) if pos else None,
                    hit / len(pos) if pos else None,
                    len(neg),
                    fp / len(neg) if neg else None,
                    review,
                )
            )
    return lines


def _items(row: dict) -> set[str]:
    """The row's item, and `also`: other items it equally restates (MBPP+ holds some tasks twice:
    Mbpp/4 and Mbpp/232 are both "the n largest, largest first", with one canonical solution)."""
    return {row["item_id"], *row.get("also", ())}


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument(
        "--parts", default="tune,heldout,heldout2,heldout3,heldout4", help="probe parts to run (comma-separated)"
    )
    ap.add_argument(
        "--misses",
        action="store_true",
        help="list the rephrasings missed and the negatives removed (of the tuned part only, unless --misses-all)",
    )
    ap.add_argument("--misses-all", action="store_true", help="with --misses: list them for every part run")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    rows = [r for path in PROBES for line in path.open() if (r := json.loads(line))["split"] in parts]
    outcomes = {}
    for mode in args.modes.split(","):
        t0 = time.perf_counter()
        outcomes[mode] = classify(rows, MODES[mode])
        print(
            f"{mode}: {len(rows)} rows in {time.perf_counter() - t0:.1f} s (load average {os.getloadavg()[0]:.1f})",
            file=sys.stderr,
        )
    header = "| {} | mode | rephrased | candidate recall | recall | negatives | FP rate | review |\n|---|---|---|---|---|---|---|---|"
    domain = {"humaneval": "code", "mbppplus": "code", None: "control"}
    for title, key in (
        ("part", lambda r: r["split"]),
        ("part / domain", lambda r: f"{r['split']} / {domain.get(r['bench'], 'maths')}"),
        ("part / benchmark", lambda r: f"{r['split']} / {r['bench'] or 'control'}"),
        ("part / kind / style", lambda r: f"{r['split']} / {r['kind']} / {r['style']}"),
    ):
        print(header.format(title))
        for line in table(rows, outcomes, key):
            print("| " + " | ".join(_fmt(x) for x in line) + " |")
        print()
    if args.misses:
        for mode, res in outcomes.items():
            for r, o in zip(rows, res):
                if r["split"] != "tune" and not args.misses_all:
                    continue
                if (r["kind"] == "rephrase" and o["removed"] not in _items(r)) or (
                    r["kind"] != "rephrase" and o["removed"]
                ):
                    print(
                        f"{mode}\t{r['split']}\t{r['kind']}/{r['style']}\t{r['item_id']}\tremoved={o['removed']} ({o['rule']})"
                        f"\treview={o['review']}\tcand={'Y' if r['item_id'] in o['considered'] else 'n'}\t{r['problem'][:70]!r}"
                    )


if __name__ == "__main__":
    main()
