# Every target sets up what it needs: on a fresh clone, `make run` and `make test` just work.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
EVENT  ?= events/apig.json
AUTH   ?= agency-keys
PORT   ?= 3000
ENV_FILE ?=
ENV_ARG := $(if $(ENV_FILE),--env-file $(ENV_FILE))

.PHONY: help venv run test test-compat lint format invoke serve emulator package deploy bench clean

help:
	@echo "make run       invoke events/timer.json against the embedded KPS emulator"
	@echo "make test      ruff + pytest here, then pytest on Python 3.9, 3.10, 3.12 when present (the CI gate)"
	@echo "make invoke    EVENT=events/apig.json (or EVENT=- for stdin) AUTH=agency-keys|agency-token|aksk|token ENV_FILE=.env"
	@echo "make serve     a local API Gateway on http://127.0.0.1:$(PORT)/kps-failed-task-cleaner (PORT=3000)"
	@echo "make emulator  a standalone KPS emulator on http://127.0.0.1:8080"
	@echo "make package   build dist/kps-failed-task-cleaner.zip for the runtime in template.yml"
	@echo "make deploy    make package, then s deploy -t template.yml (Serverless Devs)"
	@echo "make bench     cold start, warm overhead, fan-out, memory, size; writes bench/results.json"
	@echo "make format    apply ruff's formatter and fixes"
	@echo "make clean     remove the virtual environment and caches"

$(STAMP): requirements.txt requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(STAMP)

run: venv
	$(PY) -m devtools run

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -q
	bash devtools/compat.sh

test-compat:
	bash devtools/compat.sh

invoke: venv
	$(PY) -m devtools invoke --event $(EVENT) --auth $(AUTH) $(ENV_ARG)

serve: venv
	$(PY) -m devtools serve --port $(PORT) --auth $(AUTH) $(ENV_ARG)

emulator: venv
	$(PY) -m devtools emulator --port 8080 --seed 4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09:5

package: venv
	$(PY) -m devtools.package

deploy: package
	@command -v s >/dev/null || { echo "Serverless Devs is missing: npm install -g @serverless-devs/s (see README, Deploy)"; exit 1; }
	s deploy -t template.yml

bench: package
	$(PY) bench/run.py

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) .venv-compat .bench .pytest_cache .ruff_cache .hypothesis dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
