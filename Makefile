# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
RUN ?= runs/demo

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
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

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check jaxgen tests benchmarks experiments

clean:
	rm -rf $(VENV) runs
