"""Helpers for the build, card and scale-out tests: planted traces and recipe runners.

The tiny model itself is conftest.py's `tiny_model_dir`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO


def planted_traces(path: Path, n: int = 6) -> Path:
    """Traces whose first step states the right answer and whose last step a wrong one.

    Rollouts inherit the last "The answer is" of prefix + continuation and the random model never
    writes the phrase, so MC > 0 exactly before the last step: real labels from a random model.
    """
    rows = []
    for i in range(n):
        m = 3 + i % 3
        steps = (
            ["Step 1: The answer is: 7"]
            + [f"Step {j + 2}: part {j} of the sum." for j in range(m - 2)]
            + [f"Step {m}: The answer is: 8"]
        )
        rows.append({"id": f"t{i}", "problem": f"What is 3 + 4? (variant {i})", "answer": "7", "steps": steps})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rsynth(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (as a user or CI job would)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rsynth", *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO
    )


def write_recipe(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def chain_recipe(tmp: Path, model: str, *, n: int = 6, out: str = "out") -> Path:
    """Every stage kind once, on the tiny model. `batch-rows` equals the samples per prompt, so each
    hf micro-batch holds one prompt and sampling does not depend on how inputs are partitioned."""
    traces = planted_traces(tmp / "traces.jsonl")
    return write_recipe(
        tmp / "chain.yaml",
        f"""\
name: chain
out: {tmp / out}
license: apache-2.0
defaults: {{engine: hf, model: {model}, batch-rows: 2, max-new-tokens: 8, temperature: 1.0, seed: 0}}
stages:
  - problems: {{template: arithmetic, n: {n}, max-steps: 1, max-number: 9, shard-size: 4}}
  - decontaminate: {{input: problems, against: gsm8k}}
  - solutions: {{input: decontaminate, n-samples: 2, shard-size: 4}}
  - filter: {{input: solutions, pass-rate: "0:0.5"}}
  - annotate-prm: {{input: filter, method: math-shepherd, n: 2}}
  - annotate-prm: {{id: labels, source: {traces}, input-kind: traces, k0: 2, k: 2}}
  - export: {{input: labels, format: trl}}
  - card: {{}}
""",
    )
