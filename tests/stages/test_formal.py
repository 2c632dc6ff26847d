"""generate formal / generate proofs / annotate-prm on Lean, against the real wasm Lean.

Every Lean check of this file runs in the session's ONE Lean process (tests/lean_support.py, shared
with tests/verifiers/test_lean.py and started before the first test): the pipelines first run with a
verifier that records what they ask (their requests do not depend on verdicts), all recorded items
are checked in that batch, then the pipelines run again answered from it (an unrecorded item fails
the test). Alongside, the CLI runs once for real with a tiny random model and real Lean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsynth.annotators import MathShepherdConfig
from rsynth.data.shards import iter_split_rows
from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate
from rsynth.stages.formal import FormalConfig, ProofsConfig, first_error_labels, run_formal, run_proofs
from rsynth.verifiers.base import Verdict
from rsynth.verifiers.lean_syntax import extract_tactics, indent, negated, parse_statement, split_header, tactic_steps
from tests import lean_support
from tests.formal_helpers import RecordingVerifier, ReplayVerifier, ScriptedEngine, key
from tests.paths import BENCHMARKS, REPO

MINIF2F = BENCHMARKS / "minif2f_lean4.jsonl"
if not MINIF2F.exists():
    MINIF2F = REPO / "rsynth" / "resources" / "benchmarks" / "minif2f.jsonl.gz"

ODD = "theorem odd_ne_zero (n : Nat) (h : n % 2 = 1) : n ≠ 0 := by sorry"
SMALL = "theorem small (n : Nat) (h : n > 3) : n < 3 := by sorry"
NL = {  # problem -> the scripted model's formalization
    "An odd number is not zero.": f"Here it is:\n```lean\n{ODD}\n```",
    "A number above three is not two.": "```lean\ntheorem gt_three (n : Nat) (h : n > 3) : n ≠ 2 := by sorry\n```",
    "Adding a string to a number.": '```lean\ntheorem bad_types (n : Nat) : n + "a" = 3 := by sorry\n```',
    "Below two and above five.": "```lean\ntheorem vac (n : Nat) (h1 : n < 2) (h2 : n > 5) : n = 100 := by sorry\n```",
    "Two plus three is five.": "```lean\ntheorem two_three : 2 + 3 = 5 := by sorry\n```",
    "Appending nothing keeps the length.": "```lean\ntheorem app_nil (xs : List Nat) : (xs ++ []).length = xs.length := by sorry\n```",
    "Something unformalizable.": "I am not sure how to write this.",
    "A misspelt constant.": "```lean\ntheorem unbound : fooo = 3 := by sorry\n```",  # auto-bound without the strict check
}
PROOFS = {  # theorem name in the prompt -> scripted whole proofs
    "odd_ne_zero_negation": ["```lean\nintro hall\nexact hall 1 rfl\n```"],
    "odd_ne_zero": [
        "```lean\ntheorem odd_ne_zero (n : Nat) (h : n % 2 = 1) : n ≠ 0 := by\n  intro hz\n  omega\n```",
        "```lean\n  intro hz\n  exact h\n  omega\n```",
        "```lean\n  decide\n```",
    ],
    "small_negation": ["```lean\nintro hall\nhave h4 := hall 4 (by decide)\nomega\n```"],
    "small": ["```lean\n  omega\n```"],
}


def formal_script(prompt) -> list[str]:
    user = prompt.messages[-1][1]
    if user.rstrip().endswith("Score:"):
        return ["5"] if "odd_ne_zero" in user else ["2"]
    if "Problem:" in user:
        return [next(v for k, v in NL.items() if k in user)]
    name = next(n for n in PROOFS if f"theorem {n} " in user)
    return PROOFS[name]


def lean_script(prompt) -> list[str]:
    """annotate-prm rollouts: after `intro hz` one good and one bad continuation; after the bad
    step `exact h` nothing can recover."""
    if "exact h\n" in prompt.assistant_prefix:
        return ["  omega\n```"]
    return ["  omega\n```", "  exact h\n```"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def pipelines(tmp: Path, verifier, phase: str) -> dict[str, Path]:
    """Run formal, proofs and a Lean annotate-prm with scripted engines; returns output dirs."""
    problems = write_jsonl(
        tmp / "nl.jsonl", [{"id": f"p{i}", "problem": p} for i, p in enumerate(NL)] + [{"id": "no-problem"}]
    )
    minif2f = json.loads(MINIF2F.read_text().splitlines()[0])
    statements = write_jsonl(
        tmp / "statements.jsonl",
        [
            {"id": "odd", "statement": ODD, "problem": "An odd number is not zero."},
            {"id": "small", "statement": SMALL},
            {"id": "garbage", "statement": "hello"},
            minif2f,
        ],
    )
    traces = write_jsonl(
        tmp / "lean_traces.jsonl",
        [
            {
                "id": "odd-trace",
                "problem": "An odd number is not zero.",
                "reference_answer": ODD,
                "domain": "lean",
                "steps": ["intro hz", "exact h", "omega"],
            },
            {"id": "no-statement", "problem": "x", "reference_answer": "not lean", "domain": "lean", "steps": ["simp"]},
        ],
    )
    outs = {name: tmp / f"{phase}-{name}" for name in ("formal", "proofs", "annotate")}
    engine = ScriptedEngine(formal_script)
    run_formal(
        str(problems), {}, outs["formal"], engine, verifier, FormalConfig(n_samples=1, min_quality=3), quiet=True
    )
    run_proofs(str(statements), {}, outs["proofs"], engine, verifier, ProofsConfig(n_samples=3), quiet=True)
    config = AnnotateConfig(method="math-shepherd", math_shepherd=MathShepherdConfig(n=2), domain="lean")
    run_annotate(str(traces), {}, outs["annotate"], ScriptedEngine(lean_script), config, quiet=True, verifier=verifier)
    return outs


def tiny_cli_argv(model: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rsynth",
        "generate",
        *args,
        "--model",
        model,
        "--engine",
        "hf",
        "--max-new-tokens",
        "12",
        "--quiet",
    ]


def tiny_cli(tmp: Path, model: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        tiny_cli_argv(model, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


@lean_support.contribute("formal")
def recorded_items(scratch: Path) -> list:
    """Phase one: what the scripted pipelines ask Lean (their requests do not depend on verdicts)."""
    recorder = RecordingVerifier()
    pipelines(scratch, recorder, "record")
    return list(recorder.items.values())


@lean_support.launch("formal-cli")
def cli_proofs(out: Path, model: str) -> list[str]:
    """The real CLI proofs run (tiny random model, real Lean), started beside the shared batch."""
    stmts = write_jsonl(out.parent / "cli_statements.jsonl", [{"id": "odd", "statement": ODD}])
    return tiny_cli_argv(model, "proofs", "--input", str(stmts), "--out", str(out), "--n-samples", "1")


@pytest.fixture(scope="module")
def lean_session(tmp_path_factory, lean_run):
    """Phase two: the pipelines again, answered from the session's one Lean batch
    (tests/lean_support.py); and the CLI run's result."""
    items = lean_run.items("formal")
    verdicts = lean_run.verdicts("formal")
    outs = pipelines(
        tmp_path_factory.mktemp("formal"), ReplayVerifier({key(it): v for it, v in zip(items, verdicts)}), "replay"
    )
    cli = lean_run.command("formal-cli")
    return {**outs, "cli-proofs": cli["out"], "cli": (cli["rc"], cli["stdout"], cli["stderr"])}


def rows(out: Path, split: str) -> dict[str, dict]:
    return {r.get("id") or r.get("problem_id"): r for r in iter_split_rows(out, split)}


# -- filters -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_formal_filters_each_reason(lean_session):
    out = lean_session["formal"]
    kept = rows(out, "data")
    rejected = {r["problem"]: r for r in iter_split_rows(out, "rejected")}
    assert list(kept) == ["p0/f0"] and kept["p0/f0"]["reference_answer"].startswith("theorem odd_ne_zero")
    assert json.loads(kept["p0/f0"]["metadata"])["quality"] == 5
    reasons = {p: r["reason"] for p, r in rejected.items()}
    assert reasons == {
        "A number above three is not two.": "low_quality",
        "Adding a string to a number.": "does_not_elaborate",
        "Below two and above five.": "vacuous_false_hypotheses",
        "Two plus three is five.": "trivial_closed_by_decide",
        "Appending nothing keeps the length.": "trivial_closed_by_simp",
        "Something unformalizable.": "no_statement",
        "A misspelt constant.": "does_not_elaborate",
    }
    elab = json.loads(rejected["Adding a string to a number."]["evidence"])["does_not_elaborate"]
    assert elab["status"] == "error" and elab["message"]
    errors = list(iter_split_rows(out, "errors"))
    assert len(errors) == 1 and "missing field problem" in errors[0]["reason"]


# -- proofs: verdicts, negation, labels ---------------------------------------------------------
@pytest.mark.slow
def test_proofs_verdicts_and_tactic_labels(lean_session):
    out = lean_session["proofs"]
    data = rows(out, "data")
    assert [data[f"odd/s0/{j}"]["verdict"] for j in range(3)] == ["proved", "error", "error"]
    good, mid, first = (data[f"odd/s0/{j}"] for j in range(3))
    assert good["steps"] == ["intro hz", "omega"] and good["step_hard"] == [True, True] and good["first_error"] == -1
    assert (
        mid["steps"] == ["intro hz", "exact h", "omega"]
        and mid["first_error"] == 1
        and mid["step_hard"] == [True, False, None]
    )
    assert first["first_error"] == 0 and first["label_method"] == "lean:first_error"
    assert good["pass_rate"] == pytest.approx(1 / 3) and good["domain"] == "lean"
    stats = rows(out, "statements")
    assert stats["odd"]["outcome"] == "proved" and stats["odd"]["negation_proved"] == 0
    assert stats["small"]["outcome"] == "negation_proved" and stats["small"]["proved"] == 0
    assert "hall 4" in json.loads(stats["small"]["evidence"])["negation_proof"]
    rejected = rows(out, "rejected")
    assert set(rejected) == {"small/s0/0", "small/s0/1", "small/s0/2"}


@pytest.mark.slow
def test_proofs_bad_rows_and_mathlib_statements(lean_session):
    errors = list(iter_split_rows(lean_session["proofs"], "errors"))
    reasons = sorted(e["reason"] for e in errors)
    assert len(reasons) == 2
    assert reasons[0] == "no Lean theorem statement found"
    assert "import Mathlib" in reasons[1] and "lake env lean" in reasons[1]


@pytest.mark.slow
def test_annotate_prm_on_lean_labels_the_failing_tactic(lean_session):
    out = lean_session["annotate"]
    (trace,) = iter_split_rows(out, "data")
    assert trace["domain"] == "lean" and trace["verdict"] == "error"
    assert trace["step_mc"] == [0.5, 0.0, 0.0] and trace["first_error"] == 1
    assert trace["completion"] == "intro hz\nexact h\nomega"
    (error,) = iter_split_rows(out, "errors")
    assert "no Lean theorem statement" in error["reason"]


@pytest.mark.slow
def test_cli_proofs_with_a_real_tiny_model_and_real_lean(lean_session):
    rc, stdout, stderr = lean_session["cli"]
    assert rc == 0, stderr
    data = list(iter_split_rows(lean_session["cli-proofs"], "data"))
    (stat,) = iter_split_rows(lean_session["cli-proofs"], "statements")
    assert len(data) == 1 and data[0]["verdict"] in ("error", "sorry") and data[0]["provenance"]["engine"] == "hf"
    assert stat["outcome"] == "unproved" and stat["negation_proofs"] == 1


# -- no Lean needed ------------------------------------------------------------------------------
def test_cli_formal_with_a_real_tiny_model(tmp_path, tiny_model_dir):
    """The random model writes no theorem, so every problem is rejected before Lean runs."""
    problems = write_jsonl(tmp_path / "nl.jsonl", [{"problem": "Show 1 + 1 = 2."}, {"problem": "Show 2 < 3."}])
    proc = tiny_cli(
        tmp_path,
        tiny_model_dir,
        "formal",
        "--input",
        str(problems),
        "--out",
        str(tmp_path / "out"),
        "--lean-cmd",
        "true",
    )
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    rejected = list(iter_split_rows(tmp_path / "out", "rejected"))
    assert [r["reason"] for r in rejected] == ["no_statement", "no_statement"]
    assert json.loads(rejected[0]["evidence"])["completion"]


def test_missing_lean_command_is_one_line(tmp_path):
    problems = write_jsonl(tmp_path / "nl.jsonl", [{"problem": "Show 1 + 1 = 2."}])
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsynth",
            "generate",
            "formal",
            "--input",
            str(problems),
            "--out",
            str(tmp_path / "o"),
            "--lean-cmd",
            "no-such-lean-binary",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "Lean command not found" in res.stderr and "Traceback" not in res.stderr


def test_minif2f_statements_parse_as_formal_inputs():
    lines = MINIF2F.read_text().splitlines()
    parsed = [parse_statement(json.loads(line)["formal_statement"]) for line in lines]
    assert len(parsed) == 488 and all(p is not None and p.conclusion for p in parsed)
    first = parsed[0]
    assert first.name == "aime_1983_p1" and first.conclusion == "Real.log w / Real.log z = 60"
    assert first.opens.startswith("open BigOperators") and "(hw : 0 ≤ w)" in first.binders
    assert split_header(json.loads(lines[0])["formal_statement"])[0] == ["import Mathlib"]


def test_statement_text_helpers():
    st = parse_statement("theorem t {α : Type} (xs : List α) (h : xs ≠ []) : xs.length > 0 := by\n  simp")
    assert (st.name, st.binders, st.conclusion) == ("t", "{α : Type} (xs : List α) (h : xs ≠ [])", "xs.length > 0")
    assert negated(st).text.endswith("¬ (∀ {α : Type} (xs : List α) (h : xs ≠ []), xs.length > 0)")
    assert parse_statement("no theorem here") is None
    assert indent("    cases h\n      · simp\n    omega") == "  cases h\n    · simp\n  omega"
    assert extract_tactics("```lean\ntheorem t : True := by\n  trivial\n```") == "  trivial"
    assert tactic_steps("  intro h\n\n  -- a comment\n  cases h\n    omega") == ["intro h", "cases h", "  omega"]


def test_tagged_lean_messages_are_errors():
    """Lean 4.2x writes `error(lean.kind): ...`; missing those would turn a failed proof into `proved`."""
    from rsynth.verifiers.lean import LeanVerifier

    out = (
        "/tmp/B.lean:4:4: error(lean.synthInstanceFailed): failed to synthesize instance\n  HAdd Nat String ?m.5\n"
        "/tmp/B.lean:9:8: warning: declaration uses `sorry`\n"
    )
    msgs = LeanVerifier.parse_messages(out)
    assert [(m["line"], m["severity"]) for m in msgs] == [(4, "error"), (9, "warning")]
    assert msgs[0]["message"].startswith("failed to synthesize instance")


def test_first_error_labels_paths():
    assert first_error_labels(2, Verdict("proved", True))["step_hard"] == [True, True]
    located = first_error_labels(3, Verdict("error", False, {"line": 3, "tactic_index": 1}))
    assert located["first_error"] == 1 and located["step_hard"] == [True, False, None]
    # unsolved goals are reported at `by`, before every tactic: the proof stopped short
    assert first_error_labels(2, Verdict("error", False, {"line": 1}))["first_error"] == 1
    assert first_error_labels(2, Verdict("sorry", False, {"reason": "proof uses `sorry`"}))["step_hard"] is None
