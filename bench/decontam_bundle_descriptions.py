"""Build the shipped description embeddings of the bundled code items
(`rsynth/resources/embeddings/code-descriptions.{npy,json}`, see rsynth/decontam/codeview.py): one
float16 row per distinct description of a HumanEval or MBPP+ item, keyed by the description's hash,
with the model version and the array's SHA-256.

    OMP_NUM_THREADS=2 python bench/decontam_bundle_descriptions.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rsynth.decontam.codeview import SHIPPED, describe, key  # noqa: E402
from rsynth.decontam.keys import bundled_keys  # noqa: E402
from rsynth.decontam.references import load_references  # noqa: E402
from rsynth.decontam.semantic import BUNDLE_DIR, Embedder, _checksum, model_version  # noqa: E402

OUT = ROOT / "rsynth" / "resources" / BUNDLE_DIR


def main() -> None:
    keys = bundled_keys()
    descriptions: dict[str, str] = {}
    for ref in load_references(["humaneval", "mbppplus"], [], "problem"):
        for item_id, text in zip(ref.ids, ref.texts):
            k = keys.get((ref.name, item_id))
            if k is not None and k.is_code:
                d = describe(text)
                descriptions[key(d)] = d
    t0 = time.perf_counter()
    array = Embedder.build_array(list(descriptions.values()), quiet=True).astype(np.float16)
    np.save(OUT / f"{SHIPPED}.npy", array)
    meta = {"model": model_version(), "sha256": _checksum(array), "dtype": "float16", "keys": list(descriptions)}
    (OUT / f"{SHIPPED}.json").write_text(json.dumps(meta, indent=0) + "\n")
    print(f"{len(descriptions)} descriptions in {time.perf_counter() - t0:.1f} s, {array.nbytes / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
