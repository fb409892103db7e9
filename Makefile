# Two commands do everything:  `make search` (set up + run the main job), `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: setup search train test bench clean

setup: $(VENV)/.installed

# CPU-only machines get the small CPU build of torch first (an unpinned torch pulls GBs of CUDA).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install --quiet torch==2.13.0; fi
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	# BoTorch JIT-builds its fused qLogNEHVI kernel on first use (about a minute): do it here,
	# not in the first search (without a C++ compiler BoTorch warns and uses Python).
	$(PY) -c "import botorch.acquisition.multi_objective.logei as m; getattr(m, '_try_load_fused_kernel', lambda: None)()"
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
