# Set-up and the two commands of the README. Every target installs what it needs, so a
# fresh Debian machine (as root) needs nothing else.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint bench

$(STAMP): pyproject.toml scripts/setup.sh $(wildcard scripts/setup.d/*.sh)
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

setup: $(STAMP)

## The main job: policy service, milter, web and store on the embedded default (SQLite).
serve: $(STAMP)
	$(VENV)/bin/typogate serve

## The whole test suite, installing what the tests need (Debian packages included).
## Two workers per core: each test starts its own services on free loopback ports and
## temporary folders, so tests run side by side; most of a test is waiting on Postfix, a
## database or a timeout, so one worker per core left the cores idle a third of the time.
test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q -n $$(( 2 * $$(nproc) ))

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src
