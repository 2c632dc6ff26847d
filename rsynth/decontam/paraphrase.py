"""The `--semantic` decision: embedding neighbours and quantity signatures, together.

An embedding alone cannot tell a paraphrase of a benchmark item (same problem, new words) from a
template sibling (same words, other numbers): both score high. The quantity signature can
(`signature.py`). For each row the stage looks at its top-k reference neighbours by cosine plus
the items whose signatures agree most, and decides per (row, item) pair:

* both signatures informative (IDF mass >= `min_mass`): the quantities decide. Overlap >= `agree`,
  questions not contradicting each other, cosine >= `cosine_floor` (same story, not a coincidence
  of numbers): `paraphrase`, removed. Overlap in [`band`, `agree`), or another question: `uncertain`;
* both have quantities but at least one is weak (a lone common number): the same, but the story
  must be close (cosine >= `review`);
* the row has no quantities: the embedding is all the evidence there is: cosine >= `threshold` is
  a `near-copy`, removed; >= `review` is `uncertain`;
* anything else with cosine >= `review` is a `near-miss` (e.g. a template sibling): kept, listed.

`uncertain` pairs go to the judge when one is configured, else they are kept and listed in review/.
An n-gram match whose quantities disagree with its item's (`template_sibling`) is, under
`--semantic`, kept and listed too: same words, other numbers.

Rows with quantities are embedded only when the embedding can change their outcome. The
signature gate drops rows whose quantities agree with no reference item (overlap < `band`
everywhere): no rule can fire for them. The lexical screen (`lexical.py`) then drops rows that share
almost no content word with every item whose quantities agree with theirs: a rewrite keeps the
story's names and objects, so such a row is not one. A pair with overlap >= `agree` (a possible
removal) passes with word cosine >= `lexical`, or half that when every informative quantity agrees
(overlap >= `FULL`); one in the uncertain band with >= `lexical_band`; a pair where both texts are
too short to screen always passes. Rows screened out are kept without an
embedding, so near misses among them are not listed (`embed_all` embeds every row). Measured on
the bench's 10,000 rows (GSM8K-train plus 1% paraphrases): 85% pass the signature gate, 3.6% the screen too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsynth.config import param, params_of, validate_choices
from rsynth.decontam.lexical import MIN_WORDS, LexicalIndex
from rsynth.decontam.sigcache import reference_signatures
from rsynth.decontam.signature import Signature, SignatureIndex, asks_agree, asks_another
from rsynth.errors import UserError


@dataclass(frozen=True)
class SemanticConfig:
    """Settings of the `--semantic` stage (defaults measured on tests/fixtures/paraphrase_probe.jsonl).
    Declared once: the `rsynth decontaminate` options and the recipe stage's keys come from here."""

    threshold: float = param(
        0.92, "--semantic-threshold", "Cosine at which a row without quantities (nothing to compare) is removed."
    )
    review: float = param(0.8, "--semantic-review", "Cosine at which a kept row is listed in review/ as a near miss.")
    top_k: int = param(5, "--semantic-top-k", "Reference neighbours by embedding considered per row.")
    agree: float = param(
        0.8,
        "--semantic-agree",
        "Signature overlap at which quantities agree (paraphrase, when cosine >= cosine-floor).",
    )
    band: float = param(0.5, "--semantic-band", "Signature overlap from which a pair is uncertain (judge or review).")
    cosine_floor: float = param(
        0.75, "--semantic-cosine-floor", "Cosine a same-quantity neighbour needs to count as the same story."
    )
    min_mass: float = param(
        0.8,
        "--semantic-min-mass",
        "IDF mass a signature needs to be compared (1.0: one number unique to one item; a common 2 weighs ~0.2).",
    )
    lexical: float = param(
        0.2,
        "--semantic-lexical",
        "Word cosine a row needs with an item whose quantities agree (overlap >= agree) to be embedded; "
        "0 (with --semantic-lexical-band 0) turns the lexical screen off.",
    )
    lexical_band: float = param(
        0.4,
        "--semantic-lexical-band",
        "Word cosine a row needs with an item in the uncertain band of overlap to be embedded.",
    )
    answer_floor: float = param(
        0.5,
        "--semantic-answer-floor",
        "Cosine a neighbour with an equal answer and agreeing quantities "
        "(overlap >= agree) needs to be the same problem.",
    )
    answer_overlap: float = param(
        0.9,
        "--semantic-answer-overlap",
        "Signature overlap from which an item with the row's answer is the same problem whatever the cosine "
        "(both signatures strong, see --semantic-answer-mass, and the same asked clause).",
    )
    answer_mass: float = param(
        1.2,
        "--semantic-answer-mass",
        "IDF mass both signatures need for --semantic-answer-overlap (a few common numbers such as 40 and "
        "one half recur across unrelated problems with equal answers).",
    )
    code_floor: float = param(
        0.5, "--semantic-code-floor", "Cosine a code item needs to be run against the row's program."
    )
    code_runs: int = param(
        5,
        "--semantic-code-runs",
        "Nearest code items a row's reference program is also run against, whatever their cosine "
        "(a program that passes an item's tests solves that task; 0: only items from --semantic-code-floor).",
    )
    answer_lexical: float = param(
        0.15,
        "--semantic-answer-lexical",
        "Word cosine an item with the row's answer needs to be a candidate (and the row embedded).",
    )
    nearest_floor: float = param(
        0.6,
        "--semantic-nearest-floor",
        "Cosine enough for a row whose quantities agree with an item (both informative, same question) "
        "when that item is the row's nearest reference by --semantic-nearest-margin.",
    )
    nearest_margin: float = param(
        0.05,
        "--semantic-nearest-margin",
        "How much nearer than any other reference item that item must be.",
    )
    code_near: float = param(
        0.75,
        "--semantic-code-near",
        "Cosine at which a code row without a program of its own is its nearest "
        "code item (with --semantic-code-margin over the next one).",
    )
    code_margin: float = param(
        0.08, "--semantic-code-margin", "How much nearer that code item must be than the next nearest."
    )
    embed_all: bool = param(
        False,
        "--semantic-embed-all",
        "Embed every row, also those the signature gate and lexical screen rule out "
        "(slower; completes the near-miss listing in review/).",
    )

    def __post_init__(self) -> None:
        validate_choices(self)
        for name in (
            "threshold",
            "review",
            "agree",
            "band",
            "cosine_floor",
            "answer_floor",
            "answer_overlap",
            "code_floor",
            "code_near",
            "nearest_floor",
        ):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise UserError(f"{_flag(name)} {value}: expected a number in (0, 1]")
        for name in ("lexical", "lexical_band", "answer_lexical", "code_margin", "nearest_margin"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"{_flag(name)} {getattr(self, name)}: expected a number in [0, 1]")
        if self.code_runs < 0:
            raise UserError(f"--semantic-code-runs {self.code_runs}: expected a whole number >= 0")
        if self.answer_mass < 0:
            raise UserError(f"--semantic-answer-mass {self.answer_mass}: expected a number >= 0")
        if self.top_k < 1 or self.min_mass < 0:
            raise UserError("--semantic-top-k must be >= 1" if self.top_k < 1 else "--semantic-min-mass must be >= 0")

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: meta["help"] for f, meta, _ in params_of(cls)}


def _flag(name: str) -> str:
    return next(meta["flag"] for f, meta, _ in params_of(SemanticConfig) if f.name == name)


@dataclass(frozen=True)
class Evidence:
    """Why a row was removed, judged, or listed for review: the deciding neighbour and both signals."""

    item: int  # reference item index
    cosine: float | None  # None for a template sibling found by the n-gram stage (not embedded)
    overlap: float
    rule: str  # paraphrase | near-copy | uncertain | near-miss
    row_signature: str
    item_signature: str
    judge: str | None = None
    row_answer: str | None = None
    item_answer: str | None = None
    execution: str | None = None

    def as_struct(self) -> dict[str, object]:
        return {
            "cosine": None if self.cosine is None else round(self.cosine, 4),
            "signature_overlap": round(self.overlap, 4),
            "rule": self.rule,
            "row_signature": self.row_signature,
            "item_signature": self.item_signature,
            "judge": self.judge,
            "row_answer": self.row_answer,
            "item_answer": self.item_answer,
            "execution": self.execution,
        }


# overlap at which every informative quantity agrees (rounding aside): the lexical screen asks for
# half the word cosine (3,000 GSM8K-train questions: one more row embedded, none more removed)
FULL = 0.95

# a row that keeps a single number of the item's needs its item to be this much nearer than any other
# (the nearest-item margin is 0.05; a lone shared number is weaker evidence than nested pairs)
CLEAR_MARGIN = 0.2

# removal rules, then the policy case (review, or removed with --strict), the judge's case, near misses
REMOVED = ("paraphrase", "near-copy", "same-name", "same-answer", "same-behaviour")
_RANK = {
    "paraphrase": 3,
    "near-copy": 3,
    "same-name": 3,
    "same-answer": 3,
    "same-behaviour": 3,
    "another-question": 2.5,
    "uncertain": 2,
    "near-miss": 1,
    "template-sibling": 1,
}


class ParaphraseDecider:
    """Reference signatures, the cheap signature gate, and the per-pair rules above."""

    def __init__(self, reference_texts: Sequence[str], config: SemanticConfig, cache_dir: Path | None = None) -> None:
        from scipy import sparse

        self.config = config
        self.refs = reference_signatures(reference_texts, cache_dir)  # cached per process and on disk
        self.weights = SignatureIndex(self.refs)
        self.ref_mass = np.array([self.weights.mass(s) for s in self.refs])
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, sig in enumerate(self.refs):
            for e in set(sig.quantities):
                rows.append(i)
                cols.append(vocab.setdefault(e, len(vocab)))
                vals.append(self.weights.weight(e))
        self.vocab = vocab
        # dense (elements x items): a batch's sparse signatures times it is one cheap product with a
        # dense result (a sparse x sparse product spends its time assembling millions of entries)
        shape = (max(len(vocab), 1), len(self.refs))
        self.ref_matrix = sparse.csr_matrix((vals, (cols, rows)), shape=shape, dtype=np.float32).toarray()
        self._sparse = sparse
        self.lexical = LexicalIndex(reference_texts)
        # items whose answer no other item has and which is no small integer (3159, 3\sqrt{13}): such an
        # answer is evidence on its own, like a rare number in the signature (set by the caller)
        self.rare_answers: set[int] = set()
        self.last_dice = np.zeros((0, len(self.refs)), dtype=np.float32)

    def gate(self, sigs: Sequence[Signature], texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(needs embedding, candidate items by signature) per row: set-weighted Dice over all
        reference items in one sparse product, then the lexical screen (module docstring) on the
        rows some item agrees with."""
        rows, cols = [], []
        for r, sig in enumerate(sigs):
            for e in set(sig.quantities):
                j = self.vocab.get(e)
                if j is not None:
                    rows.append(r)
                    cols.append(j)
        mass = np.array([self.weights.mass(s) for s in sigs])
        shape = (len(sigs), self.ref_matrix.shape[0])
        present = self._sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        shared = present @ self.ref_matrix  # weight of the elements each (row, item) pair shares
        dice_all = 2 * shared / np.maximum(mass[:, None] + self.ref_mass[None, :], 1e-9)
        self.last_dice = dice_all  # (rows x items) overlaps of this batch, reused by the answer lookup
        row, item = np.nonzero(dice_all >= self.config.band)
        dice = dice_all[row, item]
        order = np.lexsort((item, -dice, row))  # per row, best agreement first (ties: lower item)
        row, item = row[order], item[order]
        starts = np.searchsorted(row, np.arange(len(sigs) + 1))
        rank = np.arange(row.size) - starts[row]
        keep = rank < 3
        candidates = np.split(item[keep].astype(np.int64), np.searchsorted(row[keep], np.arange(1, len(sigs))))
        empty = np.array([not s.quantities for s in sigs], dtype=bool)
        need = empty | self.config.embed_all | self._screen(dice_all, texts, starts[1:] > starts[:-1], mass)
        return need, candidates

    def _screen(self, dice: np.ndarray, texts: Sequence[str], agreeing: np.ndarray, mass: np.ndarray) -> np.ndarray:
        """Rows (among `agreeing`) with a candidate item whose words are close enough to theirs. A row
        whose informative quantities all agree with an informative item's (overlap >= `FULL`) needs
        only half the word cosine: a new story around the same numbers keeps few words ("Carla ... her
        cousin Dev" for "Bobby ... Brian": 0.19)."""
        c = self.config
        picked = np.flatnonzero(agreeing)
        out = np.zeros(len(texts), dtype=bool)
        if picked.size == 0 or (c.lexical <= 0 and c.lexical_band <= 0):
            out[picked] = True
            return out
        lex, words = self.lexical.similarity([texts[i] for i in picked])
        d = dice[picked]
        short = (words[:, None] < MIN_WORDS) & (self.lexical.ref_words[None, :] < MIN_WORDS)
        close = ((d >= c.agree) & ((lex >= c.lexical) | short)) | ((d >= c.band) & ((lex >= c.lexical_band) | short))
        informative = (mass[picked] >= c.min_mass)[:, None] & (self.ref_mass >= c.min_mass)[None, :]
        close |= (d >= FULL) & informative & (lex >= c.lexical / 2)
        out[picked] = close.any(axis=1)
        return out

    def judge_pair(
        self,
        sig: Signature,
        item: int,
        cosine: float,
        answer: bool | str | None = None,
        execution: bool | None = None,
        margin: float = 0.0,
        asked: bool | None = None,
    ) -> Evidence | None:
        """The rule for one (row, item) pair (module docstring), or None when the pair says nothing.
        `answer`: whether the row's answer equals the item's (None: one has none); `execution`:
        whether the row's program passes the item's tests (None: not run). `answer` "unit": the
        answers differ by a factor between units. `margin`: how much nearer than every other
        reference item this one is (0 when it is not the row's nearest). `asked`: whether the row's
        asked clause is the item's (`signature.question_reworded` is False; None: not compared)."""
        c = self.config
        ref = self.refs[item]
        overlap = self.weights.overlap(sig, ref)
        row_mass, item_mass = self.weights.mass(sig), float(self.ref_mass[item])
        rule = None
        if execution is True:  # the row's program solves the item's task (run only on retrieved items)
            rule = "same-behaviour"
        elif execution is False:  # it does not: another task, however close the words
            rule = "another-question" if cosine >= c.review else None
        elif (
            answer == "unit"
        ):  # the same answer asked in another unit (5 hours, 300 minutes): the quantities must all agree
            if overlap >= c.agree and cosine >= c.cosine_floor and asks_agree(sig, ref):
                rule = "same-answer"
            elif cosine >= c.review:
                rule = "uncertain"
        elif answer is True:  # same answer: the same problem when the quantities agree and the story is close
            close = asks_agree(sig, ref) or cosine >= c.review  # questions reworded past word overlap, same story
            agree = (
                (overlap >= c.agree and cosine >= c.answer_floor)
                or (overlap >= c.band and cosine >= c.cosine_floor)
                or (row_mass < c.min_mass and cosine >= c.review)
                or (item in self.rare_answers and cosine >= c.answer_floor)
            )
            if (close and agree) or self.answer_led(sig, item, overlap, asked):
                rule = "same-answer"
            elif cosine >= c.review:
                rule = "uncertain"
        elif answer is False:  # another answer: a sibling, or the same setup asking another question
            if overlap >= c.agree and cosine >= c.cosine_floor:
                rule = "another-question"
        elif min(row_mass, item_mass) >= c.min_mass:  # informative on both sides: the quantities decide
            if overlap >= c.band and cosine >= c.cosine_floor:
                rule = self._by_quantities(sig, ref, overlap, margin, cosine)
            elif (  # a new story or terse restatement: same quantities, and this item is clearly the nearest
                overlap >= c.agree and cosine >= c.nearest_floor and margin >= c.nearest_margin and asks_agree(sig, ref)
            ):
                rule = "paraphrase"
        elif sig.quantities and ref.quantities:  # weak evidence: agreeing quantities need a close story
            if overlap >= c.band and cosine >= c.review:
                rule = self._by_quantities(sig, ref, overlap, margin, cosine)
        elif not sig.quantities and cosine >= c.review:  # the row has nothing to compare: the embedding alone
            rule = "near-copy" if cosine >= c.threshold else "uncertain"
        if rule is None and cosine >= c.review:
            rule = "near-miss"
        if rule is None:
            return None
        return Evidence(int(item), float(cosine), overlap, rule, sig.describe(), ref.describe())

    def answer_led(self, sig: Signature, item: int, overlap: float, asked: bool | None) -> bool:
        """An equal answer decides whatever the cosine when the quantities all but agree, both
        signatures are strong and the row asks what the item asks: "two point five squared minus zero
        point seven squared" for math500-52 (cosine 0.46). Of the 7,473 GSM8K-train questions, 35
        share their answer with an item at overlap >= 0.8 (both >= min_mass): all different problems,
        and none meets all of these (docs/decontaminate.md)."""
        c = self.config
        return (
            asked is True
            and overlap >= c.answer_overlap
            and min(self.weights.mass(sig), float(self.ref_mass[item])) >= c.answer_mass
            and asks_agree(sig, self.refs[item])
        )

    def code_neighbour(
        self, sig: Signature, item: int, cosine: float, margin: float, named: bool = False
    ) -> Evidence | None:
        """A code row with no program to run: its nearest code item, when clearly nearer than any other
        (a renamed task keeps its docstring's meaning; a sibling task sits about as close to two items);
        or, `named`, the item whose entry point the row defines (any language: `names.py`), when the
        row is still near it (`code_floor`): a translated task keeps its name, not its words."""
        c = self.config
        if named:
            if cosine < c.code_floor:
                return None
            rule = "same-name"
        elif cosine < c.code_near or margin < c.code_margin:
            return None
        else:
            rule = "near-copy"
        ref = self.refs[item]
        return Evidence(int(item), cosine, self.weights.overlap(sig, ref), rule, sig.describe(), ref.describe())

    def _by_quantities(
        self, sig: Signature, ref: Signature, overlap: float, margin: float = 0.0, cosine: float = 0.0
    ) -> str:
        """Quantities that agree decide by the question. Partly agreeing ones (overlap in [band,
        agree)) are the same problem only when nested and the item is clearly the row's nearest: a
        rewrite drops a worked example's numbers or adds a conversion (one side's quantities all in
        the other's), while a template sibling changes a number (each side has one the other lacks).
        Weaker quantity evidence needs a closer question: the asked clauses must not be another
        question (`asks_another`), not merely share a word. A rewrite that keeps only the asked
        instance ("the sum of the proper divisors of 284" without the worked example of 12) may
        keep a single number: then that number must be informative on its own (`_inside`), the
        story close (cosine >= `review`) and no other item near (margin >= `CLEAR_MARGIN`)."""
        c = self.config
        if overlap < c.agree:
            nested = _nested(sig, ref) and margin >= c.nearest_margin
            inside = _inside(sig, ref, self.weights, c.min_mass) and margin >= CLEAR_MARGIN and cosine >= c.review
            if (nested or inside) and asks_agree(sig, ref) and not asks_another(sig, ref):
                return "paraphrase"
            return "uncertain"
        return "paraphrase" if asks_agree(sig, ref) else "another-question"

    def template_sibling(self, sig: Signature, item: int) -> Evidence | None:
        """Evidence that an n-gram match is the item's template with other quantities: both sides have
        quantities and they agree less than `band`. (An exact or truncated copy keeps its numbers.)"""
        ref = self.refs[item]
        overlap = self.weights.overlap(sig, ref)
        if not (sig.quantities and ref.quantities) or overlap >= self.config.band:
            return None
        return Evidence(int(item), None, overlap, "template-sibling", sig.describe(), ref.describe())

    def candidates(self, sims: np.ndarray, by_signature: np.ndarray, extra: Sequence[int] = ()) -> list[int]:
        """The items a row is compared with: its top-k by cosine, its best signature matches, and
        `extra` (items with its answer, code items for a program)."""
        k = min(self.config.top_k, sims.size)
        top = np.argpartition(-sims, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        return list(dict.fromkeys([*top.tolist(), *by_signature.tolist(), *extra]))

    def decide(
        self,
        sig: Signature,
        sims: np.ndarray,
        items: Sequence[int],
        answers: dict[int, bool | None] | None = None,
        executions: dict[int, bool | None] | None = None,
        asked: dict[int, bool] | None = None,
    ) -> Evidence | None:
        """Strongest evidence over the candidate items (`asked`: per item, whether the row asks what
        it asks, for the answer-led rule)."""
        best: Evidence | None = None
        nearest, margin = _nearest(sims)
        for item in items:
            ev = self.judge_pair(
                sig,
                item,
                float(sims[item]),
                (answers or {}).get(item),
                (executions or {}).get(item),
                margin if item == nearest else 0.0,
                (asked or {}).get(item),
            )
            if ev is not None and (
                best is None or (_RANK[ev.rule], ev.cosine or 0.0) > (_RANK[best.rule], best.cosine or 0.0)
            ):
                best = ev
        return best


def _nested(a: Signature, b: Signature) -> bool:
    """One side's numbers, counted with repeats, are all among the other's (a number changed into
    another one the item also has, 3 -> 8 in {3, 8, 25}, is not nested: the count of 8 grows). The
    smaller side needs two numbers: one number inside another problem's says nothing (the fifth
    integer with three divisors against the second with five: {5} in {3, 5})."""
    x = Counter(q for q in a.quantities if not q.startswith("fn:"))
    y = Counter(q for q in b.quantities if not q.startswith("fn:"))
    return min(x.total(), y.total()) >= 2 and (x <= y or y <= x)


def _inside(a: Signature, b: Signature, weights: SignatureIndex, floor: float) -> bool:
    """One side's numbers, counted with repeats, all among the other's (as `_nested`, but one number
    is enough), and what they share is informative (IDF mass >= `floor`, `min_mass`: about one
    number found in one item): "284" inside {12, 1, 2, 3, 4, 6, 284}, not a common "5" inside
    {3, 5}, nor "17 cows, sells 17" inside {17, 23, 9} (the 17 counted twice)."""
    x = Counter(q for q in a.quantities if not q.startswith("fn:"))
    y = Counter(q for q in b.quantities if not q.startswith("fn:"))
    shared = set(x) & set(y)
    return bool(shared) and (x <= y or y <= x) and sum(weights.weight(q) for q in shared) >= floor


def _nearest(sims: np.ndarray) -> tuple[int, float]:
    """The nearest reference item and how much nearer it is than the next one."""
    if sims.size < 2:
        return (int(np.argmax(sims)), float(sims.max())) if sims.size else (-1, 0.0)
    two = np.argpartition(-sims, 1)[:2]
    first, second = (two[0], two[1]) if sims[two[0]] >= sims[two[1]] else (two[1], two[0])
    return int(first), float(sims[first] - sims[second])
