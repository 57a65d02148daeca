# Every target sets up what it needs: on a fresh clone, `make run` and `make test` just work.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.txt | cksum | cut -d' ' -f1)
# Locks: universal (markers per Python version, 3.9 and up), with hashes. See README, Runtime dependencies.
LOCK   := $(PY) -m uv pip compile --quiet --universal --python-version 3.9 --generate-hashes --custom-compile-command "make lock"
EVENT  ?= events/apig.json
AUTH   ?= agency-keys
PORT   ?= 3000
ENV_FILE ?=
ENV_ARG := $(if $(ENV_FILE),--env-file $(ENV_FILE))
# make invoke is a dry run unless CLEAN=1; FLAGS=--json (raw JSON lines) or FLAGS=--quiet (the result line only)
CLEAN  ?=
FLAGS  ?=
CLEAN_ARG := $(if $(filter 1 yes true,$(CLEAN)),--clean)

.PHONY: help venv run test test-compat lint format invoke serve emulator package deploy expose openapi lock bench mutate clean

help:
	@echo "make run       invoke events/timer.json against the embedded KPS emulator"
	@echo "make test      ruff, then pytest on this Python and on 3.9, 3.10, 3.12 when present, two at a time (the CI gate)"
	@echo "make invoke    EVENT=events/apig.json (or EVENT=- for stdin) AUTH=agency-keys|agency-token|aksk|token ENV_FILE=.env"
	@echo "               a dry run unless CLEAN=1; FLAGS=--json or --quiet (also for run and serve)"
	@echo "make serve     a local API Gateway on http://127.0.0.1:$(PORT)/kps-failed-task-cleaner (PORT=3000), reloading"
	@echo "make emulator  a standalone KPS emulator on http://127.0.0.1:8080"
	@echo "make package   build dist/package/ (template.yml's codeUri) and the same files as dist/kps-failed-task-cleaner.zip"
	@echo "make deploy    make package, then s deploy -t template.yml (Serverless Devs)"
	@echo "make expose    PROJECT_ID=.. APIG_INSTANCE_ID=.. APIG_GROUP_ID=..: HTTP triggers on a dedicated API Gateway"
	@echo "make bench     cold start, warm overhead, fan-out, memory, size; writes bench/results.json"
	@echo "make mutate    a mutation pass over function/ (MUTANTS=20 per module, SEED=9, JOBS=2; MODULE=cleaner for one)"
	@echo "make openapi   regenerate api/openapi-apig.yaml (OpenAPI 3.0 for API Gateway's import) from api/openapi.yaml"
	@echo "make lock      regenerate requirements.txt and requirements-dev.txt (pins with hashes) from the .in files"
	@echo "make format    apply ruff's formatter and fixes"
	@echo "make clean     remove the virtual environment and caches"

# requirements-dev.txt locks the whole closure (the runtime pins included): installed as locked, hashes checked.
$(STAMP): requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-dev.txt
	touch $@

venv: $(STAMP)

run: venv
	$(PY) -m devtools run $(FLAGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	bash devtools/compat.sh

test-compat: venv
	bash devtools/compat.sh

invoke: venv
	$(PY) -m devtools invoke --event $(EVENT) --auth $(AUTH) $(ENV_ARG) $(CLEAN_ARG) $(FLAGS)

serve: venv
	$(PY) -m devtools serve --port $(PORT) --auth $(AUTH) $(ENV_ARG) $(FLAGS)

emulator: venv
	$(PY) -m devtools emulator --port 8080 --seed 4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09:5

package: venv
	$(PY) -m devtools.package

deploy: package
	@command -v s >/dev/null || { echo "Serverless Devs is missing: npm install -g @serverless-devs/s (see README, Deploy)"; exit 1; }
	s deploy -t template.yml

# make expose REGION=cn-north-4 PROJECT_ID=<32 hex> APIG_INSTANCE_ID=<id> APIG_GROUP_ID=<id>
# (HUAWEICLOUD_SDK_AK/SK in the environment): the DEDICATEDGATEWAY triggers, created or updated.
REGION           ?= cn-north-4
FUNCTION         ?= kps-failed-task-cleaner
APIG_ENV_NAME    ?= RELEASE
APIG_ENV_ID      ?= DEFAULT_ENVIRONMENT_RELEASE_ID
APIG_TIMEOUT_MS  ?= 60000
expose: venv
	$(PY) -m devtools.expose --region "$(REGION)" --project-id "$(PROJECT_ID)" --function "$(FUNCTION)" \
	  --instance-id "$(APIG_INSTANCE_ID)" --group-id "$(APIG_GROUP_ID)" --env-name "$(APIG_ENV_NAME)" \
	  --env-id "$(APIG_ENV_ID)" --timeout-ms "$(APIG_TIMEOUT_MS)"

# make openapi [FUNCTION_URN=urn:fss:... OPENAPI_OUT=dist/apig.yaml]: the file API Gateway imports (docs/deploy.md).
OPENAPI_OUT ?= api/openapi-apig.yaml
openapi: venv
	$(PY) -m devtools.openapi30 --output "$(OPENAPI_OUT)" $(if $(FUNCTION_URN),--function-urn "$(FUNCTION_URN)")

lock: venv
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -o requirements-dev.txt

bench: package
	$(PY) bench/run.py

# Not part of make test: about half an hour on 2 cores (docs/testing.md, Mutation testing).
MUTANTS ?= 20
SEED    ?= 9
JOBS    ?= 2
MODULE  ?=
mutate: venv
	$(PY) -m devtools.mutate --max-mutants $(MUTANTS) --seed $(SEED) --jobs $(JOBS) $(if $(MODULE),--module $(MODULE))

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) .venv-compat .test-logs .bench .pytest_cache .ruff_cache .hypothesis dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
