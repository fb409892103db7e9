# Two commands do everything:  `make search` (set up + run the main job), `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: setup search train test bench mutate clean

setup: $(VENV)/.installed

# CPU-only machines get the small CPU build of torch first (an unpinned torch pulls GBs of CUDA).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install --quiet torch==2.13.0; fi
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	# W&B's local controller (search.wandb_sweep=true); --no-deps: its numpy<2 pin is not needed
	$(PY) -m pip install --quiet --no-deps 'sweeps==0.3.0'
	# BoTorch JIT-builds its fused qLogNEHVI kernel on first use (about a minute): do it here,
	# not in the first search (without a C++ compiler BoTorch warns and uses Python). It lands
	# in $(VENV)/torch_extensions (TORCH_EXTENSIONS_DIR, unless set), where every run of this
	# venv finds it and no other venv's build invalidates it (nago_pl/fused_kernel.py).
	$(PY) -c "from nago_pl.fused_kernel import load_fused_kernel; load_fused_kernel()"
	touch $@

search: setup  ## run a NAGO search (defaults: digits on CPU); extra Hydra overrides in ARGS
	$(PY) search.py $(ARGS)

train: setup   ## train one architecture; extra Hydra overrides in ARGS
	$(PY) train.py $(ARGS)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/build_and_throughput.py

clean:
	rm -rf $(VENV) runs outputs .pytest_cache

# Mutation testing (not part of CI: about 40 CPU-minutes on 2 cores): mutmut mutates
# search/{pareto,study,pruning,fidelity,constraints}.py one module after another and runs only the
# fast tests of the search core ([tool.mutmut] in pyproject.toml). Survivors: BENCHMARKS.md.
MUTATE_MODULES ?= pareto pruning fidelity constraints study

mutate: setup
	for m in $(MUTATE_MODULES); do OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run "nago_pl.search.$$m.*" || exit 1; done
	$(VENV)/bin/mutmut results
