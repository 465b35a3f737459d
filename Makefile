# The commands of the README: `make demo`, `make test`, `make walkthrough`. All create .venv on first use,
# with the locked, tested versions (requirements.lock); docs/install.md. LATEST=1: the newest versions
# instead, in .venv-latest (`make test LATEST=1`). `make lock` renews the lock, `make floors` checks the
# lowest versions pyproject.toml allows.
PY ?= python3
LOCK := requirements.lock
LATEST ?=
ifneq ($(filter 1 true yes,$(LATEST)),)
VENV := .venv-latest
PIN := --upgrade --upgrade-strategy eager
FRESH := FORCE
else
VENV := .venv
PIN := -c $(LOCK)
FRESH :=
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
RUN ?= runs/demo

.PHONY: demo test install lint bench clean walkthrough gpu-wheels lock floors FORCE

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The lock as pip constraints: exactly its versions of whatever the install needs, nothing else from it.
$(STAMP): pyproject.toml $(LOCK) $(FRESH) | $(BIN)/python
	$(BIN)/python -m pip install -q $(PIN) -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(LOCK) $(FRESH) | $(BIN)/python
	$(BIN)/python -m pip install -q $(PIN) -e '.[test]'
	touch $(STAMP) $@

install: $(STAMP)

# Train the default MLP on the embedded MNIST sample, score it on the real held-out digits, plot.
demo: $(STAMP)
	$(BIN)/jaxgen train mlp --workdir $(RUN)
	@if [ -d ../shared/data/mnist-test5k ]; then \
	  echo "scoring on the 5,000 real test digits in ../shared/data/mnist-test5k" >&2; \
	  $(BIN)/jaxgen eval $(RUN) --data idx:../shared/data/mnist-test5k; \
	else echo "../shared/data/mnist-test5k not found: scoring on the embedded 500 held-out images" >&2; \
	  $(BIN)/jaxgen eval $(RUN); fi
	$(BIN)/jaxgen plot $(RUN)
	@echo "demo done: held-out accuracy in the eval line above; plots in $(RUN)/plots"

# The runnable lecture (docs/walkthrough.md): every section's commands rerun, figures and numbers into
# docs/walkthrough/ (under 20 min on a 2-core CPU). QUICK=1: the same path on a tiny preset, a few minutes,
# into runs/walkthrough-quick/ (the committed figures stay as they are).
QUICK ?=
walkthrough: $(STAMP)
ifneq ($(filter 1 true yes,$(QUICK)),)
	$(BIN)/python -m jaxgen.lecture --quick --out runs/walkthrough-quick
else
	$(BIN)/python -m jaxgen.lecture --out docs/walkthrough --md docs/walkthrough.md
endif

# The import layers first (import-linter, under a second), then two pytest processes (pytest-xdist), each
# test file kept in one of them (docs/testing.md): 613 tests; a clean clone on a 2-core CPU 4.0 min of tests with
# the XLA cache warm (~/.cache/jaxgen-tests, 2026-12-07); 7.8 min cold at 493 tests. TEST_JOBS=0: one process.
TEST_JOBS ?= 2
test: $(TEST_STAMP)
	$(BIN)/lint-imports --no-cache  # the layers in pyproject.toml: every import points down
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)

lint: $(TEST_STAMP)
	$(BIN)/ruff check jaxgen tests benchmarks experiments

clean:
	rm -rf $(VENV) runs

# Renew requirements.lock: the newest versions of jaxgen[test,tb] in a fresh venv, frozen. Then `make test`
# (it reinstalls from the new lock) before committing it.
LOCK_VENV ?= $(or $(TMPDIR),/tmp)/jaxgen-lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q -e '.[test,tb]'
	{ echo "# The locked, tested versions of jaxgen[test,tb] and everything they pull in (CPython 3.11, Linux)."; \
	  echo "# make install/demo/test install with it as pip constraints (-c): only what each needs, at these"; \
	  echo "# versions. Written by \`make lock\` (newest versions, fresh venv); docs/install.md."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK) && rm -rf $(LOCK_VENV)
	@echo "$(LOCK) renewed: run make test before committing it"

# The floors: a fresh venv with exactly the lowest versions pyproject.toml allows (requirements-floors.txt),
# the data tests, then every task and architecture for a few steps (.ci/smoke). Non-zero on any failure.
FLOORS_VENV ?= $(or $(TMPDIR),/tmp)/jaxgen-floors-venv
floors:
	rm -rf $(FLOORS_VENV) && $(PY) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install -q --upgrade pip
	$(FLOORS_VENV)/bin/python -m pip install -q -c requirements-floors.txt -e . pytest
	$(FLOORS_VENV)/bin/python -m pip check
	$(FLOORS_VENV)/bin/python -m pytest -p no:cacheprovider tests/test_data.py tests/test_sources_folder.py
	bash .ci/smoke $(FLOORS_VENV)/bin/jaxgen
	@echo "floors: every task runs with requirements-floors.txt"

# For a session lent a GPU machine: the wheels its image lacks (Python 3.12) and jaxgen's own metadata, in
# .whl/ (ignored), with the Fashion-MNIST files where this machine has them; benchmarks/gpu_check.sh
# installs and uses them there. See that script's header.
GPU_WHEELS := $(shell grep -iE '^(mlxtend|tensorboardX|scikit-learn|joblib|threadpoolctl|tqdm|pytest-xdist|execnet)==' \
  $(LOCK))  # at the locked versions
FASHION_DIR := /usr/share/datasets/fashion-mnist
gpu-wheels: $(STAMP)
	rm -rf .whl && mkdir -p .whl
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d .whl $(GPU_WHEELS)
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w .whl . && rm -rf build
	if [ -d $(FASHION_DIR) ]; then mkdir -p .whl/data/fashion-mnist && cp $(FASHION_DIR)/*.gz .whl/data/fashion-mnist/; fi
	du -sh .whl && ls -la .whl
