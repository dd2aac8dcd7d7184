# The two commands: `make demo` runs the system on embedded defaults, `make test` runs the tests.
# Both create the virtual environment in .venv on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
# Test files run in parallel worker processes, a file per worker at a time (their fixtures,
# brokers and databases are private to each test, so files are independent).
TEST_WORKERS ?= auto
# schemathesis gives each API operation's test the same node id, and pytest-xdist schedules by
# node id, so under xdist only one operation would be fuzzed: these files run in one process.
ONE_PROCESS_TESTS := tests/test_api_fuzz.py tests/test_api_fuzz_postgres.py
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dronelog demo

lint: $(STAMP)
	$(VENV)/bin/ruff check dronelog tests benchmarks

test: lint
	$(VENV)/bin/dronelog contract export --check
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile \
		$(addprefix --ignore=,$(ONE_PROCESS_TESTS))
	@# each schemathesis file in a process of its own (under xdist every operation would have
	@# one node id and only one would be fuzzed), the files side by side, their reports after
	@logs=$$(mktemp -d); pids=; \
	for file in $(ONE_PROCESS_TESTS); do \
		echo "$(VENV)/bin/python -m pytest $$file"; \
		$(VENV)/bin/python -m pytest $$file > $$logs/$$(basename $$file).log 2>&1 & \
		pids="$$pids $$!"; \
	done; status=0; for pid in $$pids; do wait $$pid || status=1; done; \
	cat $$logs/*.log; rm -rf $$logs; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache build dist
