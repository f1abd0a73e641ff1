# The two commands of the README:
#   make demo   set everything up, then run the main demo
#   make test   set everything up, then run the test suite
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-slow lint docs

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check dtg tests benchmarks

# The documentation site, offline: open site/index.html in a browser.
docs: setup
	$(BIN)/python -m mkdocs build --strict -d site
