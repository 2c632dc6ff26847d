"""Build the shipped reference embeddings of the bundled benchmarks (`rsynth/resources/embeddings/`):
one float16 array per set plus index.json with each set's content digest, the model version and the
array's SHA-256 (`rsynth.decontam.semantic.bundled_embeddings` checks all three).

    OMP_NUM_THREADS=2 python bench/decontam_bundle_embeddings.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from rsynth.decontam.references import BUNDLED, load_references
from rsynth.decontam.semantic import BUNDLE_DIR, Embedder, _checksum, model_version

OUT = Path(__file__).resolve().parents[1] / "rsynth" / "resources" / BUNDLE_DIR


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = {}
    for ref in load_references(list(BUNDLED), [], "problem"):
        t0 = time.perf_counter()
        array = Embedder.build_array(ref.texts, quiet=True).astype(np.float16)
        np.save(OUT / f"{ref.name}.npy", array)
        index[ref.name] = {
            "digest": ref.digest(),
            "model": model_version(),
            "items": len(ref.texts),
            "sha256": _checksum(array),
            "dtype": "float16",
        }
        print(f"{ref.name}: {len(ref.texts)} items in {time.perf_counter() - t0:.1f} s", flush=True)
    (OUT / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    print(f"{sum(f.stat().st_size for f in OUT.glob('*.npy')) / 1e6:.1f} MB in {OUT}")


if __name__ == "__main__":
    main()
