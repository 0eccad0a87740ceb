# `make demo` and `make test` each set up .venv on their own; `make docs` runs the demo
# (resuming it if it ran before), writes the lines it ends with into the README (between
# its markers) and copies its front figure to docs/ for the README.
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
	mkdir -p docs reports
	$(BIN)/dse demo > reports/demo.out
	cat reports/demo.out
	$(BIN)/python docs/readme_demo.py README.md reports/demo.out
	cp reports/$(DEMO)/figures/front.png docs/demo-front.png

test: $(STAMP)
	$(BIN)/python -m pytest -m "not heavy"

# what CI runs (.ci/run): the heavy tests too, and the property-based tests (tests/hostile)
# search ten times longer than in the plain run
test-all: $(STAMP)
	DSE_FUZZ_EXAMPLES=250 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check dse tests benchmarks docs
	$(BIN)/ruff format --check dse tests benchmarks docs

clean:
	rm -rf $(VENV) .dse-cache
