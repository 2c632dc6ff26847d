"""Probe tables for the math verifier, written before the verifier was tuned on them (issue 21).

Each row: (id, reference, candidate, expected verdict is "correct", held out). Rows marked held out
were never looked at while the verifier was changed; `bench/verify_agreement.py` reports them apart.
Every class has both directions: pairs that mathematics calls equal, and close pairs that it does not.
`CLASS_TABLE` holds extracted answers (what a reference column or a box holds); `FREE_TEXT` holds
whole model outputs (boxed, Minerva closing line, chat tails, prose).
"""

from __future__ import annotations

from typing import NamedTuple


class Case(NamedTuple):
    id: str
    reference: str
    candidate: str
    equal: bool
    held: bool = False


T, F = True, False

CLASS_TABLE: list[Case] = [
    # plain-text numbers: thousands separators (space, comma, thin space), decimal comma, currency, units
    Case("sep-space", "1000", "1 000", T),
    Case("sep-space-big", "1234567", "1 234 567", T),
    Case("sep-comma", "1000000", "1,000,000", T),
    Case("sep-comma-latex", "10,\\!080", "10 080", T),
    Case("sep-thin", "25000", "25\\,000", T),
    Case("sep-wrong", "1000", "1 001", F),
    Case("sep-comma-wrong", "1000000", "1,000,001", F),
    Case("dec-comma", "1.22", "1,22", T),
    Case("dec-comma-wrong", "1.22", "1,23", F),
    Case("dec-comma-neg", "-3.5", "-3,5", T, True),
    Case("currency-euro", "1000.99", "1,000.99€", T),
    Case("currency-euro-wrong", "1000.99", "1,000.98€", F),
    Case("currency-dollar", "32348", "\\$32,348", T),
    Case("currency-dollar-text", "18.90", "$18.90", T),
    Case("currency-usd-word", "45", "45 dollars", T, True),
    Case("currency-usd-wrong", "45", "54 dollars", F, True),
    Case("unit-cm", "12", "12 cm", T),
    Case("unit-text", "36", "36\\text{ square units}", T),
    Case("unit-wrong", "12", "13 cm", F),
    Case("percent-text", "25\\%", "25 %", T, True),
    Case("neg-unicode-minus", "-7", "\u22127", T, True),
    Case("neg-unicode-minus-wrong", "-7", "\u22128", F),
    Case("percent-text-wrong", "25\\%", "52 %", F),
    Case("plain-fraction", "\\frac{3}{4}", "3/4", T),
    Case("plain-fraction-wrong", "\\frac{3}{4}", "4/3", F),
    # relations against values and sets
    Case("rel-fx-value", "1", "f(x)=1", T),
    Case("rel-fx-value-wrong", "1", "f(x)=2", F),
    Case("rel-value-eq", "x=5", "5", T),
    Case("rel-chain-interval", "(0,1)", "0<f(x)<1", T),
    Case("rel-chain-interval-closed", "(0,1)", "0\\le f(x)<1", F),
    Case("rel-set-eq", "\\{1,2\\}", "x \\in \\{1, 2\\}", T),
    Case("rel-y-eq", "3", "y = 3", T, True),
    Case("rel-interval-x", "[1,4)", "1\\le x<4", T, True),
    Case("rel-interval-x-wrong", "[1,4)", "1<x<4", F, True),
    # degrees
    Case("deg-unicode", "30^\\circ", "30°", T),
    Case("deg-unicode-wrong", "30^\\circ", "60°", F),
    Case("deg-circ-plain", "45", "45^{\\circ}", T),
    Case("deg-trig-circ", "\\frac{1}{2}", "\\sin 30^\\circ", T),
    Case("deg-trig-circ-wrong", "\\frac{\\sqrt3}{2}", "\\sin 30^\\circ", F),
    Case("deg-trig-unicode", "\\frac{\\sqrt{2}}{2}", "\\cos 45°", T, True),
    Case("deg-trig-unicode-wrong", "\\frac{1}{2}", "\\cos 45°", F, True),
    Case("deg-degrees-word", "60", "60 degrees", T, True),
    Case("deg-vs-radians", "\\frac{\\pi}{6}", "30°", F, True),
    # E-notation
    Case("enote", "12000", "1.2e4", T),
    Case("enote-upper", "0.00035", "3.5E-4", T),
    Case("enote-wrong", "12000", "1.2e3", F),
    Case("enote-plus", "5000000", "5e+6", T, True),
    Case("enote-vs-times", "6.72 \\times 10^{-5}", "6.72e-5", T, True),
    Case("enote-wrong-held", "0.0001", "1e-5", F, True),
    # complex numbers in exponential and polar form
    Case("cplx-exp", "i", "e^{i\\pi/2}", T),
    Case("cplx-exp-wrong", "-i", "e^{i\\pi/2}", F),
    Case("cplx-exp-neg", "-1", "e^{i\\pi}", T),
    Case("cplx-polar", "1+i", "\\sqrt{2}(\\cos\\frac{\\pi}{4} + i\\sin\\frac{\\pi}{4})", T),
    Case("cplx-polar-wrong", "1-i", "\\sqrt{2}(\\cos\\frac{\\pi}{4} + i\\sin\\frac{\\pi}{4})", F),
    Case("cplx-exp-scaled", "2\\sqrt{3}+2i", "4e^{i\\pi/6}", T, True),
    Case("cplx-exp-scaled-wrong", "2+2\\sqrt{3}i", "4e^{i\\pi/6}", F, True),
    Case("cplx-cis-deg", "\\frac{\\sqrt{2}}{2}+\\frac{\\sqrt{2}}{2}i", "\\cos 45^\\circ + i \\sin 45^\\circ", T, True),
    # numbers with an explicit base subscript: evaluated, never dropped
    Case("base-2", "5", "101_2", T),
    Case("base-2-wrong", "101", "101_2", F),
    Case("base-8-both", "52_8", "42", T),
    Case("base-8-same", "52_8", "52_8", T),
    Case("base-16-braced", "255", "FF_{16}", T),
    Case("base-7-wrong", "10", "10_7", F, True),
    Case("base-3-braced", "14", "112_{3}", T, True),
    Case("base-both-diff", "12_3", "5_{10}", T, True),
    Case("base-both-wrong", "12_3", "12_4", F, True),
    # mixed numbers in plain text
    Case("mixed-space", "\\frac{5}{2}", "2 1/2", T),
    Case("mixed-space-wrong", "\\frac{5}{2}", "2 1/3", F),
    Case("mixed-latex", "\\frac{7}{4}", "1\\frac{3}{4}", T),
    Case("mixed-neg", "-\\frac{5}{2}", "-2 1/2", T, True),
    Case("mixed-vs-product", "\\frac{2}{2}", "2 1/2", F, True),
    Case("mixed-latex-space", "\\frac{11}{4}", "2 \\frac{3}{4}", T, True),
    # absolute-value inequalities as sets
    Case("abs-lt", "(-1,3)", "|x-1|<2", T),
    Case("abs-lt-wrong", "[-1,3]", "|x-1|<2", F),
    Case("abs-ge", "(-\\infty,-2]\\cup[2,\\infty)", "|x|\\ge 2", T),
    Case("abs-ge-wrong", "(-\\infty,-2)\\cup(2,\\infty)", "|x|\\ge 2", F),
    Case("abs-le-held", "[-5,1]", "|x+2|\\le 3", T, True),
    Case("abs-gt-held", "(-\\infty,0)\\cup(4,\\infty)", "|x-2|>2", T, True),
    Case("abs-le-held-wrong", "[-5,1)", "|x+2|\\le 3", F, True),
    # choice letters with or without their option text
    Case("choice-paren-text", "B", "(B) 12", T),
    Case("choice-paren-text-wrong", "B", "(C) 12", F),
    Case("choice-text-ref", "\\text{(C)}", "C) 1/2", T),
    Case("choice-colon", "D", "D: \\frac{1}{2}", T),
    Case("choice-bare", "A", "A", T, True),
    Case("choice-text-held", "\\text{(E)}", "(E) none of these", T, True),
    Case("choice-text-held-wrong", "\\text{(E)}", "(D) none of these", F, True),
    Case("choice-option-word", "C", "\\textbf{(C)}\\ 5", T, True),
    # several answers: a list reference, a hedge on a single-valued one
    Case("list-ordered", "1, 2, 3", "3, 2, 1", T),
    Case("list-missing", "1, 2, 3", "1, 2", F),
    Case("list-and", "2, 5", "2 \\text{ and } 5", T, True),
    Case("pm-vs-one", "\\pm 3", "3", F),
    Case("pm-vs-both", "\\pm 3", "3, -3", T),
    # exact values beyond float precision
    Case("exact-factorial", "\\frac{1}{2004!}", "\\frac{1}{2006!}", F),
    Case("exact-big-int", "123456789012345678901", "123456789012345678902", F, True),
    Case("exact-same", "\\frac{1}{2004!}", "\\frac{1}{2004!}", T),
    # ordinary answers (the control group: math-verify already gets these)
    Case("ctl-frac-dec", "\\frac{1}{4}", "0.25", T),
    Case("ctl-sqrt", "2\\sqrt{2}", "\\sqrt{8}", T),
    Case("ctl-sqrt-wrong", "2\\sqrt{2}", "\\sqrt{6}", F),
    Case("ctl-pi", "2\\pi", "\\pi \\cdot 2", T, True),
    Case("ctl-interval", "[0,1)", "[0,1)", T, True),
    Case("ctl-interval-wrong", "[0,1)", "[0,1]", F, True),
    Case("ctl-point-order", "(1,2)", "(2,1)", F, True),
    Case("ctl-matrix", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", T, True),
]

MINERVA = "Final Answer: The final answer is ${}$. I hope it is correct."

FREE_TEXT: list[Case] = [
    # the Minerva / Llama closing sentence and its variants
    Case("minerva", "\\frac{1}{2}", "We add the two halves.\n" + MINERVA.format("\\frac{1}{2}"), T),
    Case("minerva-wrong", "\\frac{1}{2}", "We add the two halves.\n" + MINERVA.format("\\frac{1}{3}"), F),
    Case(
        "minerva-int",
        "18",
        "She sells 16-3-4=9 eggs, 9*2=18.\nFinal Answer: The final answer is $18$. I hope it is correct.",
        T,
    ),
    Case("minerva-no-dollar", "18", "9*2=18.\nFinal Answer: The final answer is 18. I hope it is correct.", T),
    Case("minerva-no-dollar-wrong", "18", "9*2=18.\nFinal Answer: The final answer is 19. I hope it is correct.", F),
    Case(
        "minerva-interval",
        "(2,\\infty)",
        "So $x>2$.\nFinal Answer: The final answer is $(2,\\infty)$. I hope it is correct.",
        T,
        True,
    ),
    Case("minerva-set", "1, 2", "Final Answer: The final answer is $1,2$. I hope it is correct.", T, True),
    Case(
        "minerva-tail-thanks", "7", "Final Answer: The final answer is $7$. I hope it is correct. Thank you!", T, True
    ),
    Case("final-answer-colon", "42", "Therefore 6*7 = 42.\n\nFinal answer: 42", T),
    Case("final-answer-colon-wrong", "42", "Therefore 6*7 = 42.\n\nFinal answer: 24", F),
    Case("answer-is-sentence-tail", "5", "Thus the answer is 5 apples, which is what we wanted.", T, True),
    Case("answer-is-bold", "5", "**The answer is: 5**", T, True),
    Case("answer-is-bold-wrong", "5", "**The answer is: 6**", F),
    # chat tails and politeness
    Case("tail-im-end", "12", "So the total is \\boxed{12}.<|im_end|>", T),
    Case("tail-eot", "12", "The answer is 12.<|eot_id|>", T),
    Case("tail-eos", "12", "The answer is 12.</s>", T, True),
    Case("tail-eot-wrong", "12", "The answer is 21.<|eot_id|>", F),
    Case("tail-hope", "3", "The answer is $3$. I hope this helps!", T),
    Case("tail-hope-wrong", "3", "The answer is $4$. I hope this helps!", F, True),
    # several boxes
    Case("boxes-list-ref", "\\boxed{1}, \\boxed{2}", "The roots are \\boxed{1} and \\boxed{2}.", T),
    Case("boxes-list-ref-wrong", "\\boxed{1}, \\boxed{2}", "The roots are \\boxed{1} and \\boxed{3}.", F),
    Case("boxes-hedge", "3", "It is \\boxed{2} or maybe \\boxed{3}.", F),
    Case("boxes-intermediate-prose", "10", "First $x=\\boxed{4}$, then $y=\\boxed{6}$, so the answer is 10.", T),
    Case(
        "boxes-intermediate-prose-wrong",
        "10",
        "First $x=\\boxed{4}$, then $y=\\boxed{6}$, so the answer is 11.",
        F,
        True,
    ),
    Case("boxes-repeat", "\\frac12", "So \\boxed{\\frac{1}{2}}, i.e. \\boxed{0.5}.", T, True),
    Case("box-dollar-inside", "\\frac{3}{4}", "Thus \\boxed{$\\frac{3}{4}$}.", T),
    Case("box-dollar-inside-wrong", "\\frac{3}{4}", "Thus \\boxed{$\\frac{4}{3}$}.", F, True),
    # prose answers with plain numbers
    Case("prose-sep", "1000000", "The population reached 1,000,000 people, so the answer is 1,000,000.", T),
    Case(
        "prose-gsm8k",
        "72",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nAltogether 48+24 = <<48+24=72>>72 clips.\n#### 72",
        T,
    ),
    Case("prose-gsm8k-wrong", "72", "Natalia sold 48/2 = 24 clips in May.\nAltogether 48+24 = 70 clips.\n#### 70", F),
    Case("prose-boxed-unit", "18", "Janet makes $\\boxed{\\$18}$ every day.", T),
    Case("prose-boxed-text", "18", "\\boxed{18 \\text{ dollars}}", T, True),
    Case("prose-latex-display", "\\sqrt{2}", "Hence\n\\[\n\\boxed{\\sqrt{2}}\n\\]", T, True),
    Case("prose-choice", "C", "Checking each option, only (C) works.\nThe answer is (C) 17.", T, True),
    Case("prose-choice-wrong", "C", "Checking each option, only (B) works.\nThe answer is (B) 17.", F, True),
]
