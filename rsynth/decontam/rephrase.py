"""The `--semantic` stage of a batch: catch rephrased benchmark items by what they ask and answer.

Order of evidence, strongest first:

1. **Verbatim is final.** An exact copy, or an n-gram match covering an item's whole question
   (item coverage >= `VERBATIM`), stays removed whatever else the row holds (a few-shot prompt's
   worked examples cannot dilute it).
2. **Other n-gram matches are checked**: a row that copies an item's words but whose answer differs,
   whose program fails the item's tests, whose question keeps under half of the item's question
   words, or that flips one word or operator of the item's (`contrast.flipped`: "$60 more" for
   "$60 less"; also checked on the semantic removals) is the same setup asking another question (`another-question`: review/, or removed with
   `--strict`); one whose quantities differ is a template sibling (review/).
3. **Retrieval** proposes candidates for the other rows: embedding top-k, the best quantity
   signatures, items with the row's answer whose words are close (`answer_lexical`) or whose
   quantities all but agree with strong signatures on both sides (answer-led: `answer_overlap`,
   `answer_mass`, decided whatever the cosine when the row asks what the item asks), and for code
   rows the nearest code items. Long prompts are cut into windows (paragraphs, few-shot blocks) and
   each window is a candidate source of its own, so a pasted item is not diluted by its neighbours.
4. **Decision** per (row, item) pair (`ParaphraseDecider.judge_pair`): execution first for code,
   then the answer under the math verifier, then the quantities and the question, then the cosine.

Rows the gate, the screen and the answer lookup all rule out are never embedded (speed: see
docs/decontaminate.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from rsynth.decontam.codeview import CodeView
from rsynth.decontam.contrast import flipped
from rsynth.decontam.examples import stated_tests
from rsynth.decontam.execution import ExecutionChecker
from rsynth.decontam.index import Index
from rsynth.decontam.keys import AnswerComparer, Key, bundled_keys, canonical, in_other_units, unit_ratio
from rsynth.decontam.matcher import Match
from rsynth.decontam.names import defined_functions, normalise
from rsynth.decontam.paraphrase import REMOVED, Evidence, ParaphraseDecider
from rsynth.decontam.settings import VERBATIM, Facts, SemanticSettings
from rsynth.decontam.signature import Signature, asks_another, functions, numbers_changed, question_reworded

WINDOW_WORDS = 120  # prompts longer than this are also scored window by window
MAX_WINDOWS = 8
_CODEISH = re.compile(r"\b(?:def|function|return|returns|python|program|list|string)\b", re.IGNORECASE)
_BLOCK = re.compile(
    r"\n\s*\n|\n(?=\s*(?:Q(?:uestion)?\s*\d*\s*[:.)]|Problem\s*\d*\s*[:.)]|User\s*:|Example\s*\d*\s*[:.)]))"
)


def windows(text: str) -> list[str]:
    """The whole text, plus, for a long one, its blocks (paragraphs, few-shot Q/A pairs), last first."""
    if len(text.split()) <= WINDOW_WORDS:
        return [text]
    blocks = [b.strip() for b in _BLOCK.split(text) if b and len(b.split()) >= 8]
    return [text, *blocks[::-1][:MAX_WINDOWS]]


class RephraseStage:
    """Per-batch semantic decisions (module docstring), filled into `matches` and `reviews` in place."""

    def __init__(self, settings: SemanticSettings, index: Index, strict: bool) -> None:
        from rsynth.decontam.semantic import Embedder

        self.settings = settings
        self.strict = strict
        self.index = index
        self.item_of = {index.describe(i): i for i in range(len(index.item_ids))}
        self.embedder = Embedder(settings.texts, settings.cache_path, quiet=settings.quiet)
        self.decider = ParaphraseDecider(settings.texts, settings.config, settings.cache_path.parent)
        keys = bundled_keys()
        self.keys: list[Key | None] = [keys.get(index.describe(i)) for i in range(len(index.item_ids))]
        by_answer: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys):
            if key is not None and key.answer:
                by_answer.setdefault(canonical(key.answer), []).append(i)
        self.by_answer = {a: np.array(v, dtype=np.int64) for a, v in by_answer.items()}
        self.decider.rare_answers = {int(v[0]) for a, v in self.by_answer.items() if len(v) == 1 and _distinctive(a)}
        self.code_items = np.array([i for i, k in enumerate(self.keys) if k is not None and k.is_code], dtype=np.int64)
        self.codeview = CodeView(settings.texts, self.code_items, self.embedder.embed)
        self.code_by_name: dict[str, list[int]] = {}  # normalised entry point -> code items
        for i in self.code_items.tolist():
            key = self.keys[i]
            if key is not None and key.entry_point:
                self.code_by_name.setdefault(normalise(key.entry_point), []).append(i)
        self.answers = AnswerComparer()
        self.execution = ExecutionChecker()
        # per unit of the last batch: its answer-led items (same answer, strong overlap)
        self.led: dict[int, set[int]] = {}
        self.considered: list[
            set[int]
        ] = []  # per row of the last batch: the items it was compared with (candidate recall)

    def close(self) -> None:
        self.answers.close()
        self.execution.close()

    # -- outcome of one piece of evidence -------------------------------------------------------------
    def _place(self, i: int, m: Match, rule: str, matches: list[Match | None], reviews: list[Match | None]) -> None:
        if rule in REMOVED or (rule == "another-question" and self.strict):
            matches[i], reviews[i] = m, None
        else:
            matches[i], reviews[i] = None, m

    def _evidence(self, ev: Evidence, facts: Facts, execution: bool | None) -> dict[str, object]:
        key = self.keys[ev.item]
        struct = ev.as_struct()
        struct.update(
            row_answer=facts[0],
            item_answer=key.answer if key is not None else None,
            execution=None
            if execution is None
            else ("passes the item's tests" if execution else "fails the item's tests"),
        )
        return struct

    # -- n-gram matches -----------------------------------------------------------------------------
    def _check_ngram(
        self, texts: Sequence[str], facts: Sequence[Facts], matches: list[Match | None], reviews: list[Match | None]
    ) -> None:
        """Step 2 of the module docstring for every non-verbatim n-gram match of the batch."""
        todo = [
            (i, self.item_of[(m.benchmark, m.item_id)])
            for i, m in enumerate(matches)
            if m is not None and m.stage == "ngram" and m.item_coverage < VERBATIM
        ]
        if not todo:
            return
        answers = self._answers([(facts[i], item) for i, item in todo])
        runs = self._runs([(texts[i], facts[i], item) for i, item in todo])
        for (i, item), same_answer, runs_ok in zip(todo, answers, runs):
            m = matches[i]
            assert m is not None
            sig, ref = Signature.of(texts[i]), self.decider.refs[item]
            overlap = self.decider.weights.overlap(sig, ref)
            changed = numbers_changed(sig, ref) or self.decider.template_sibling(sig, item) is not None
            same_answer = False if same_answer == "unit" else same_answer
            if runs_ok is True or (same_answer is True and not changed):
                continue  # the same problem: the removal stands
            if (
                runs_ok is False
                or same_answer is False
                or asks_another(sig, ref)
                or question_reworded(texts[i], self.settings.texts[item])
                or flipped(texts[i], self.settings.texts[item])
            ):
                rule = (
                    "another-question"
                    if (overlap >= self.decider.config.band and not changed) or runs_ok is False
                    else "template-sibling"
                )
            elif changed:
                rule = "template-sibling"
            else:
                continue
            ev = Evidence(item, None, overlap, rule, sig.describe(), ref.describe())
            self._place(
                i,
                Match(m.benchmark, m.item_id, m.stage, m.score, m.span, self._evidence(ev, facts[i], runs_ok)),
                rule,
                matches,
                reviews,
            )

    def _answers(self, pairs: Sequence[tuple[Facts, int]], texts: Sequence[str] | None = None) -> list[bool | None]:
        """Per (row facts, item): whether the answers are equal; "unit" when they differ by a factor
        between units and the row (its text in `texts`) asks in a unit the item's question does not name."""
        keyed = [(k, f[0], self.keys[item]) for k, (f, item) in enumerate(pairs)]
        asked = [(k, a, key.answer) for k, a, key in keyed if a and key is not None and key.answer]
        out: list[bool | None] = [None] * len(pairs)
        for (k, a, b), verdict in zip(asked, self.answers.compare([(a, b) for _, a, b in asked])):
            other_units = texts is not None and in_other_units(texts[k], self.settings.texts[pairs[k][1]])
            out[k] = "unit" if verdict is False and unit_ratio(a, b) and other_units else verdict
        return out

    def _runs(self, triples: Sequence[tuple[str, Facts, int]]) -> list[bool | None]:
        asked = [
            (k, text, f, self.keys[item])
            for k, (text, f, item) in enumerate(triples)
            if (f[1] or f[2]) and self.keys[item] is not None and self.keys[item].is_code
        ]
        out: list[bool | None] = [None] * len(triples)
        for (k, *_), verdict in zip(asked, self.execution.check([(t, f[1], f[2], key) for _, t, f, key in asked])):
            out[k] = verdict
        return out

    # -- the rest -----------------------------------------------------------------------------------
    def __call__(
        self, texts: Sequence[str], facts: Sequence[Facts], matches: list[Match | None], reviews: list[Match | None]
    ) -> int:
        """Decide the batch's rows in place; returns the number of rows embedded."""
        self.considered = [{self.item_of[(m.benchmark, m.item_id)]} if m is not None else set() for m in matches]
        facts, stated = self._stated_examples(texts, facts)
        self._check_ngram(texts, facts, matches, reviews)
        todo = [i for i, m in enumerate(matches) if m is None and reviews[i] is None]
        units = [(i, w) for i in todo for w in windows(texts[i])]
        if not units:
            return 0
        unit_texts = [w for _, w in units]
        sigs = [Signature.of(w) for w in unit_texts]
        need, by_signature = self.decider.gate(sigs, unit_texts)
        extra, code_units = self._extra_candidates(units, facts, need, sigs)
        picked = np.flatnonzero(need)
        if picked.size == 0:
            return 0
        unique = list(dict.fromkeys(unit_texts[p] for p in picked))  # a repeated text is embedded once
        at = {t: n for n, t in enumerate(unique)}
        sims = self.embedder.embed(unique) @ self.embedder.ref.T
        code_texts = list(dict.fromkeys(unit_texts[p] for p in code_units))
        if code_texts:  # code items by the larger of two cosines: whole prompt, or description alone
            rows = [at[t] for t in code_texts]
            sims[np.ix_(rows, self.code_items)] = np.maximum(
                sims[np.ix_(rows, self.code_items)], self.codeview.similarity(code_texts)
            )
        k = self.decider.config.top_k
        code_near: dict[
            int, tuple[int, float, float, bool]
        ] = {}  # unit -> (nearest code item, its cosine, the margin over the next, whether the row defines its name)
        wide: dict[int, set[int]] = {}  # unit -> the nearest code items its reference program is run against
        for p in code_units:  # a code row is compared with the nearest code items, whatever else is near
            row = sims[at[unit_texts[p]]]
            program = bool(facts[units[p][0]][1])
            n = max(k, self.decider.config.code_runs) if program else k
            order = self.code_items[np.argsort(-row[self.code_items], kind="stable")[:n]]
            extra.setdefault(p, []).extend(order.tolist())
            if program:
                wide[p] = set(order[: self.decider.config.code_runs].tolist())
            if order.size >= 2:
                code_near[p] = (int(order[0]), float(row[order[0]]), float(row[order[0]] - row[order[1]]), False)
            named = [it for n in defined_functions(unit_texts[p]) for it in self.code_by_name.get(n, ())]
            if named:  # a function with an item's name (any language): that item, at its own cosine
                item = max(named, key=lambda it: row[it])
                extra[p].append(item)
                code_near[p] = (item, float(row[item]), 0.0, True)
        cands = {
            int(p): self.decider.candidates(sims[at[unit_texts[p]]], by_signature[p], extra.get(int(p), ()))
            for p in picked
        }
        # answers and executions for the pairs that can use them, in two batched calls
        ans_pairs = [
            (p, item)
            for p, items in cands.items()
            for item in items
            if facts[units[p][0]][0]
            and (sims[at[unit_texts[p]], item] >= self.decider.config.answer_floor or item in self.led.get(p, ()))
        ]
        answers = dict(
            zip(
                ans_pairs,
                self._answers(
                    [(facts[units[p][0]], item) for p, item in ans_pairs], [unit_texts[p] for p, _ in ans_pairs]
                ),
            )
        )
        runs = self._executions(cands, sims, at, unit_texts, units, facts, wide)
        best: dict[int, tuple[Evidence, bool | None]] = {}
        for p, items in cands.items():
            self.considered[units[p][0]].update(items)
            ev = self.decider.decide(
                sigs[p],
                sims[at[unit_texts[p]]],
                items,
                {it: answers.get((p, it)) for it in items},
                {it: runs.get((p, it)) for it in items},
                self._asked(p, unit_texts[p], answers),
            )
            f = facts[units[p][0]]
            if (
                p in code_near
                and (units[p][0] in stated or not (f[1] or f[2]))
                and runs.get((p, code_near[p][0])) is not False
                and (ev is None or ev.rule not in REMOVED)
            ):
                ev = self.decider.code_neighbour(sigs[p], *code_near[p]) or ev
            if ev is None:
                continue
            i = units[p][0]
            if i not in best or _stronger(ev, best[i][0]):
                best[i] = (ev, runs.get((p, ev.item)))
        for i, (ev, ran) in best.items():
            if ev.rule in ("paraphrase", "near-copy") and flipped(texts[i], self.settings.texts[ev.item]):
                ev = dataclasses.replace(ev, rule="another-question")  # one word or operator flipped: no rewrite
            bench, item_id = self.index.describe(ev.item)
            evidence = self._evidence(ev, facts[i], ran)
            if i in stated and ran is not None:
                evidence["execution"] = (
                    "the item's solution gives the examples stated in the row"
                    if ran
                    else "the item's solution contradicts the examples stated in the row"
                )
            m = Match(bench, item_id, "semantic", round(ev.cosine or 0.0, 4), "", evidence)
            self._place(i, m, ev.rule, matches, reviews)
        return len({units[p][0] for p in picked})

    def _asked(self, p: int, text: str, answers: dict[tuple[int, int], bool | str | None]) -> dict[int, bool]:
        """For the unit's answer-led items with an equal answer: whether the row asks what the item
        asks (its asked clause is not reworded away from the item's: `question_reworded`)."""
        led = [it for it in self.led.get(p, ()) if answers.get((p, it)) is True]
        return {it: not question_reworded(text, self.settings.texts[it]) for it in led}

    @staticmethod
    def _stated_examples(texts: Sequence[str], facts: Sequence[Facts]) -> tuple[list[Facts], set[int]]:
        """Facts with, for a code row with neither program nor tests, the I/O examples its text
        states as its tests (`examples.py`), and the rows that got them."""
        out, stated = list(facts), set()
        for i, (text, f) in enumerate(zip(texts, facts)):
            if f[1] or f[2] or not (functions(text) or _CODEISH.search(text)):
                continue
            tests = stated_tests(text)
            if tests:
                out[i] = (f[0], None, tests)
                stated.add(i)
        return out, stated

    def _executions(self, cands, sims, at, unit_texts, units, facts, wide) -> dict[tuple[int, int], bool | None]:
        """Sandbox verdicts for (unit, code item) pairs with cosine >= `code_floor`, or among the
        `code_runs` nearest code items when the row has a reference program (`wide`: a renamed or
        reworded task can sit under the floor, or behind siblings, while its program passes the
        item's tests), nearest first: a round runs each unit's next candidate, and a unit stops at its
        first pass (most rephrasings pass their nearest item), so a rephrasing costs about one run; a
        program that solves none of them costs up to `code_runs`."""
        queue: dict[int, list[int]] = {}
        for p, items in cands.items():
            f = facts[units[p][0]]
            if not (f[1] or f[2]):
                continue
            row = sims[at[unit_texts[p]]]
            floor, ranked = self.decider.config.code_floor, wide.get(p, ())
            near = [it for it in items if (row[it] >= floor or it in ranked) and _runnable(self.keys[it])]
            if near:
                queue[p] = sorted(near, key=lambda it: -row[it])
        runs: dict[tuple[int, int], bool | None] = {}
        while queue:
            step = [(p, items.pop(0)) for p, items in queue.items()]
            verdicts = self._runs([(unit_texts[p], facts[units[p][0]], item) for p, item in step])
            runs.update(zip(step, verdicts))
            passed = {p for p, it in step if runs[(p, it)] is True}
            queue = {p: items for p, items in queue.items() if items and p not in passed}
        return runs

    def _extra_candidates(
        self, units: Sequence[tuple[int, str]], facts: Sequence[Facts], need: np.ndarray, sigs: Sequence[Signature]
    ) -> tuple[dict[int, list[int]], list[int]]:
        """Items with the row's answer and close words, and the code units (compared with the
        nearest code items once embedded); marks their units as needing an embedding (in place)."""
        c = self.decider.config
        extra: dict[int, list[int]] = {}
        self.led = {}
        with_answer = [p for p, (i, _) in enumerate(units) if facts[i][0] and canonical(facts[i][0]) in self.by_answer]
        if with_answer:
            lex, _ = self.decider.lexical.similarity([units[p][1] for p in with_answer])
            dice, rare = self.decider.last_dice, self.decider.rare_answers
            for row, p in enumerate(with_answer):
                items = self.by_answer[canonical(facts[units[p][0]][0])]
                # close words, and quantities that agree (or an answer no other item has, or a row with
                # no informative quantities): a shared small answer alone is no reason to embed a row
                weak = self.decider.weights.mass(sigs[p]) < c.min_mass
                is_rare = np.array([it in rare for it in items.tolist()], dtype=bool)
                agree = (dice[p, items] >= c.band) | is_rare | weak
                # without close words (LaTeX against prose, number words): an answer no other item has
                # and agreeing quantities (a round answer such as 500 with agreeing quantities is not
                # enough: a GSM8K-train control with $200 and $50 and answer 500 met one at cosine 0.61)
                strong = is_rare & (dice[p, items] >= c.band)
                # answer-led: quantities that all but agree, both signatures strong, whatever the words
                led = (
                    (dice[p, items] >= c.answer_overlap) & (self.decider.ref_mass[items] >= c.answer_mass)
                    if self.decider.weights.mass(sigs[p]) >= c.answer_mass
                    else np.zeros(items.size, dtype=bool)
                )
                if led.any():
                    self.led[p] = set(items[led].tolist())
                close = items[((lex[row, items] >= c.answer_lexical) & agree) | strong | led]
                if close.size:
                    extra[p] = close.tolist()
                    need[p] = True
        code_units = []
        for p, (i, text) in enumerate(units):
            if self.code_items.size and (facts[i][1] or facts[i][2] or functions(text) or _CODEISH.search(text)):
                need[p] = True
                code_units.append(p)
        return extra, code_units


def _runnable(key: Key | None) -> bool:
    return key is not None and key.is_code


def _distinctive(answer: str) -> bool:
    """Not a small whole number (the answer of many unrelated problems)."""
    from fractions import Fraction

    try:
        value = Fraction(answer)
    except (ValueError, ZeroDivisionError):
        return True
    return value.denominator != 1 or abs(value) >= 100


def _stronger(a: Evidence, b: Evidence) -> bool:
    from rsynth.decontam.paraphrase import _RANK

    return (_RANK[a.rule], a.cosine or 0.0) > (_RANK[b.rule], b.cosine or 0.0)
