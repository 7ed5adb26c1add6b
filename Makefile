# Two commands: `make run` (set up everything and serve on 127.0.0.1:8000) and `make test`.
# Another port: `make run PORT=8001`. `make demo` prints the demo's sign-in, key and curl line again.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test install lint bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@echo "Installing Python packages into $(VENV) (takes a minute)..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# axe-core, which the browser tests inject into each page (Node's npm; nothing else needs it).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent && touch $@; \
	else echo "npm is not installed: the browser tests' accessibility checks will fail (install nodejs)"; fi

install: $(BIN)/.installed

# Embedded defaults: SQLite, no broker server, the built-in ElevenLabs sandbox.
# Web, worker, the sandbox's worker (sandbox on) and beat run together; Ctrl-C stops them all.
# First of all, with any python3: stop at once if the port is taken, and write a development
# .env (DEBUG on, a SECRET_KEY of its own) if there is none, for manage.py commands run by hand.
run: export DEBUG ?= true
run: export SITE_URL ?= http://$(HOST):$(PORT)
run:
	@$(PYTHON) -m campaigns.devrun preflight --host $(HOST) --port $(PORT)
	@$(MAKE) --no-print-directory --silent install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py devserver --host $(HOST) --port $(PORT)

# The banner of `make run` again, from var/demo.json; starts nothing.
demo: export DEBUG ?= true
demo: export SITE_URL ?= http://$(HOST):$(PORT)
demo: install
	@$(BIN)/python manage.py bootstrap_demo --show

# The whole suite. DATABASE_URL picks the database (SQLite when unset).
test: export SECRET_KEY ?= test-only-secret-key
test: export CELERY_BROKER_URL ?= memory://
test: export DEBUG = false
test: install node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: export SECRET_KEY ?= bench-only-secret-key
# Measured as in production, whatever a development .env turns on.
bench: export DEBUG = false
bench: install
	$(BIN)/python bench/create_campaign.py
	$(BIN)/python bench/bombs.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/retention.py
	$(BIN)/python bench/webhook_body.py
	$(BIN)/python bench/sandbox_scale.py
	$(BIN)/python bench/api_throughput.py
	$(BIN)/python bench/fleet_million.py

clean:
	rm -rf $(VENV) db.sqlite3 var staticfiles node_modules
