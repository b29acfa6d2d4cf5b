# Two commands do everything on a fresh Linux machine with Python 3.11:
#   make book   -- build the HTML book into _build/html (creates .venv on first use)
#   make test   -- the whole test suite: lint and format check, strict book build, unit tests (incl. browser test), every chapter at
#                  the full preset on a CPU at a tiny step scale, notebook replay twice at the same time
#                  (nbval as is, and with ATEN_CPU_CAPABILITY=default)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JB := $(VENV)/bin/jupyter-book
export TQDM_DISABLE := 1
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
# OpenMP threads sleep instead of spinning while they wait: on a busy 2-core machine spinning threads
# steal each other's time slices (measured 2.6x slower with 2 busy processes, 4-16x at load 6-9), at
# the price of up to 2x on an idle machine (README, "Performance"); results are bit-identical.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: lint stale full-smoke book test unit nbval nbval-default replays replay-native replay-default build-strict browser execute claims claims-holdout full bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c scripts/constraints.txt -e '.[dev]'
	$(PY) -c "import torch, torchvision, ot, wganbook; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

book: $(STAMP)
	$(JB) build . --path-output . -W -n --keep-going
	@echo "Open _build/html/index.html"

build-strict: book

unit: $(STAMP)
	$(PY) -m pytest tests -q

NBVAL := $(PY) -m pytest --nbval book/ --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -q

nbval: $(STAMP)
	$(NBVAL)

# The replay with torch's unvectorised CPU kernels: the last digits of every floating-point result
# change as they do on another CPU or torch build, so this finds outputs that are not machine-independent.
nbval-default: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(NBVAL)

# Both replays at the same time, one worker process each (records are bit-identical whatever the
# number of workers), each with a classifier cache of its own. Most cells of a chapter use one core,
# so two replays side by side keep both cores busy where one replay after the other left one idle.
# Each replay's output is printed when it ends.
REPLAY_CACHE := $(CURDIR)/_build/replay-cache
replays: $(STAMP)
	$(MAKE) -j2 --output-sync=target replay-native replay-default

replay-native: $(STAMP)
	WGANBOOK_WORKERS=1 WGANBOOK_CACHE=$(REPLAY_CACHE)/native $(NBVAL)

replay-default: $(STAMP)
	ATEN_CPU_CAPABILITY=default WGANBOOK_WORKERS=1 WGANBOOK_CACHE=$(REPLAY_CACHE)/default $(NBVAL)

# Lint and format check of the whole tree (configured in pyproject.toml; notebooks excluded).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Which stored chapters are stale, and the module that staled each (exit 1 when any is).
stale: $(STAMP)
	$(PY) -m wganbook stale

# The unit tests and the full-preset smoke run side by side as well (the unit tests use one core).
test: $(STAMP)
	$(MAKE) lint
	$(MAKE) build-strict
	$(MAKE) -j2 --output-sync=target unit full-smoke
	$(MAKE) replays

# Re-execute the stored notebooks in place (quick defaults, fresh kernel each).
execute: $(STAMP)
	$(PY) scripts/execute_notebooks.py

# The ledger of claims: chapters whose digest changed run for seeds 1-4 (seed 0 = the stored run);
# writes book/claims.json and book/claims.md. ARGS=--all re-runs every chapter.
claims: $(STAMP)
	$(PY) -m wganbook claims $(ARGS)

# The held-out seeds 5-9: every chapter (whose held-out run is missing or stale) runs again for seeds
# that played no part in choosing a threshold; written into claims.json's "holdout" part and the
# appendix (about 40 min on 2 cores; not part of `make test`, whose unit tests check the result).
claims-holdout: $(STAMP)
	$(PY) -m wganbook claims --holdout $(ARGS)

# Every chapter at preset=full with a tiny step_scale on fake MNIST/CIFAR-10 (CPU; part of make test).
full-smoke: $(STAMP)
	WGANBOOK_FULL_SMOKE=1 $(PY) -m pytest tests/test_full_preset.py -q

# Rerun every chapter at paper scale (GPU) into runs/full, never touching book/.
full: $(STAMP)
	$(PY) -m wganbook book --preset full --out runs/full $(ARGS)

# The benchmark (README, "Performance"): items 1-4, thread settings quiet and with 2 busy processes,
# every chapter and `pytest --nbval book/` (about 25 min). It measures torch's own thread defaults,
# so the wait policy exported above is unset for it (its notebook replay sets it again, as `make nbval`).
bench: $(STAMP)
	env -u OMP_WAIT_POLICY $(PY) benchmarks/run.py --book --load 2 $(ARGS)

clean:
	rm -rf _build
