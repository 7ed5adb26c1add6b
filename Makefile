# Two commands: `make run` (set up everything and serve on 127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# Embedded defaults: SQLite, no broker server, the built-in ElevenLabs sandbox.
# Web, worker and beat run together; Ctrl-C stops all three.
run: export DEBUG ?= true
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py devserver --host $(HOST) --port $(PORT)

# The whole suite. DATABASE_URL picks the database (SQLite when unset).
test: export SECRET_KEY ?= test-only-secret-key
test: export CELERY_BROKER_URL ?= memory://
test: export DEBUG = false
test: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: export SECRET_KEY ?= bench-only-secret-key
bench: install
	$(BIN)/python bench/create_campaign.py
	$(BIN)/python bench/bombs.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/webhook_body.py

clean:
	rm -rf $(VENV) db.sqlite3 var staticfiles
