# `make demo` and `make test` each set up .venv on their own; `make docs` runs the demo
# (resuming it if it ran before) and copies its front figure to docs/ for the README.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := tiny-esp32

.PHONY: demo docs test test-all lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dse demo

docs: $(STAMP)
	$(BIN)/dse demo
	mkdir -p docs
	cp reports/$(DEMO)/figures/front.png docs/demo-front.png

test: $(STAMP)
	$(BIN)/python -m pytest -m "not heavy"

# what CI runs (.ci/run): the heavy tests too, and the property-based tests (tests/hostile)
# search ten times longer than in the plain run
test-all: $(STAMP)
	DSE_FUZZ_EXAMPLES=250 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check dse tests benchmarks
	$(BIN)/ruff format --check dse tests benchmarks

clean:
	rm -rf $(VENV) .dse-cache
