# PortNet Payments. `make run` and `make test` are the two commands of the README.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
# `make run`, the tests and the benchmarks run the development configuration (sandboxes, sandbox
# secrets); anything else is production, which refuses unsafe defaults.
export PORTNET_ENV ?= development
STAMP  := $(VENV)/.installed

.PHONY: run test setup migrate seed lint typecheck bench bench-search chaos chaos-short clean screenshots

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11+ is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The message catalogs (fr, ar, en) compiled from their .po (portnet/i18n.py).
setup: $(STAMP)
	$(PY) -m portnet.i18n

migrate: setup
	$(PY) -m portnet.cli migrate

seed: migrate
	$(PY) -m portnet.cli seed

## Sets everything up, then starts Temporal, the worker, the portal and the sandboxes (Ctrl-C stops all).
run: seed
	$(PY) -m portnet.launcher

## Sets everything up, then runs at once: the whole suite on SQLite, the whole suite on PostgreSQL,
## the short chaos run, and ruff then mypy. Each suite runs as three pytest processes (the browser
## scenarios with the sandbox and production tests; the integration and API tests; everything else,
## parts of about the same CPU, so that none is left running alone at the end): a
## suite spends much of its time waiting on its servers and deadlines, and three processes fill those
## waits where one would leave the cores idle. Each part's output is shown whole when it ends (and kept
## in var/test-logs/); any part failing fails `make test`. TEST_JOBS=1: one part at a time. The
## browser scenarios' page audits (screenshots, axe-core) look at HTML that does not depend on the
## database: the SQLite suite runs them, the PostgreSQL suite every other step and check
## (tests/support/browser.py AUDITS). So does the phone width's layout: the SQLite suite runs each
## scenario at both widths, the PostgreSQL suite at the desktop width (SCENARIO_VIEWPORTS). The
## modules of SUITE_NO_DATABASE touch no database (no session, no model, no ledger fixture: checked by
## tests/unit/test_test_runner.py): replaying the recorded histories, the layout, compose, the PDFs'
## layout, the catalogs, the protocols' pure rules. The SQLite suite runs them; running them again
## on PostgreSQL would test nothing more.
TEST_JOBS ?= 0
SUITE_BROWSER = tests/browser tests/sandbox tests/test_production.py
SUITE_INTEGRATION = tests/integration tests/api
SUITE_REST = $(foreach path,$(SUITE_BROWSER) $(SUITE_INTEGRATION),--ignore=$(path)) tests
SUITE_NO_DATABASE = tests/workflows/test_replay.py tests/test_layout.py tests/test_compose.py \
	tests/test_documents.py tests/i18n/test_catalogs.py tests/unit/test_chaos_payers.py \
	tests/unit/test_chaos_verdict.py tests/unit/test_cheque_transfer.py tests/unit/test_cmi_api.py \
	tests/unit/test_cmi_protocol.py tests/unit/test_fatourati.py tests/unit/test_http_keep_alive.py \
	tests/unit/test_money.py tests/unit/test_partner_clients.py tests/unit/test_partner_rules.py \
	tests/unit/test_temporal_codec.py tests/unit/test_test_runner.py tests/unit/test_workflow_details.py \
	tests/operations/test_alert_rules.py tests/test_security.py tests/test_temporal_clients.py \
	tests/unit/test_cmi_capture_watch.py tests/unit/test_worker_connect.py tests/unit/test_heap.py \
	tests/unit/test_listen_ports.py tests/unit/test_text_wrap.py \
	tests/unit/test_worker_processes.py tests/web/test_channel_choices.py
PG = PORTNET_TEST_DATABASE=postgresql
test: setup
	$(PY) -m tests.support.concurrently --jobs $(TEST_JOBS) \
		"SQLite-browser=$(PY) -m pytest -q $(SUITE_BROWSER)" \
		"SQLite-integration=$(PY) -m pytest -q $(SUITE_INTEGRATION)" \
		"SQLite-rest=$(PY) -m pytest -q $(SUITE_REST)" \
		"PostgreSQL-browser=$(PG) PORTNET_BROWSER_AUDITS=0 PORTNET_BROWSER_VIEWPORTS=desktop $(PY) -m pytest -q $(SUITE_BROWSER)" \
		"PostgreSQL-integration=$(PG) $(PY) -m pytest -q $(SUITE_INTEGRATION)" \
		"PostgreSQL-rest=$(PG) $(PY) -m pytest -q $(foreach path,$(SUITE_NO_DATABASE),--ignore=$(path)) $(SUITE_REST)" \
		"chaos=$(PY) -m bench.chaos $(CHAOS_SHORT)" \
		"lint=$(VENV)/bin/ruff check . && $(VENV)/bin/mypy ."

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

bench: $(STAMP)
	$(PY) -m bench.run_all

## Rewrites the README's pictures (docs/screenshots/) from the browser scenarios.
screenshots: $(STAMP)
	PORTNET_README_SCREENSHOTS=1 PORTNET_BROWSER_AUDITS=1 $(PY) -m pytest -q tests/browser

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache

## Payments under kill -9 of the worker and Temporal, and 30 % partner faults (bench/chaos), 10 minutes.
chaos: $(STAMP)
	$(PY) -m bench.chaos $(CHAOS_ARGS)

## The short chaos run (about 3 minutes), part of `make test`.
CHAOS_SHORT = --duration 75 --concurrency 6 --crash-every 20 --reconcile-every 15 --settle 120 $(CHAOS_ARGS)
chaos-short: $(STAMP)
	$(PY) -m bench.chaos $(CHAOS_SHORT)
