"""A real annotate-prm output on the tiny model, for the export, trainer and card tests."""

from __future__ import annotations

import json
from pathlib import Path

from tests.build_support import planted_traces


def labelled_output(tmp: Path, engine, *, generation: bool = False) -> Path:
    """Annotate planted traces (OmegaPRM, k=2) in-process with the shared tiny engine; returns OUT.

    `generation=True` gives the input traces the `num_tokens`/`finish_reason` a sampled solution has.
    """
    from rsynth.annotators import OmegaPRMConfig
    from rsynth.engines.base import SamplingParams
    from rsynth.stages.annotate.stage import AnnotateConfig, run_annotate

    traces = planted_traces(tmp / "traces.jsonl")
    if generation:
        rows = [json.loads(line) for line in traces.read_text().splitlines()]
        traces.write_text(
            "".join(json.dumps({**r, "num_tokens": 30 + i, "finish_reason": "stop"}) + "\n" for i, r in enumerate(rows))
        )
    config = AnnotateConfig(
        omegaprm=OmegaPRMConfig(k0=2, k=2),
        input_kind="traces",
        params=SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=8, seed=0),
    )
    out = tmp / "labels"
    run_annotate(str(traces), {}, out, engine, config, quiet=True)
    return out
