# Inqueue: `make run` runs the whole pipeline locally, `make test` runs every check.
# Everything installs itself into .venv (and .tools/ for SAM CLI and checkov) on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13; .python-version makes pyenv's shim pick it.
PYTHON ?= $(shell command -v python3.13 || echo python3.13)
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov
PIP_QUIET := --quiet --disable-pip-version-check
TEMPLATE := infra/template.yaml
# No usage data leaves this machine (and CI has no network beyond package registries).
export SAM_CLI_TELEMETRY := 0

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements/dev.txt src/requirements-layer.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) -r requirements/dev.txt
	$(PY) -m pip install $(PIP_QUIET) --no-deps -e .
	@touch $@

$(TOOLS)/%/.installed: requirements/%.txt
	@test -x $(TOOLS)/$*/bin/python || $(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/python -m pip install $(PIP_QUIET) -r $<
	@touch $@

.PHONY: venv tools
venv: $(VENV)/.installed ## Create the virtualenv with pinned dependencies
tools: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## Install SAM CLI and checkov

.PHONY: test
test: lint typecheck lint-template unit build-check localstack-test ## Every check: ruff, mypy, template linters, pytest (moto, then LocalStack), sam build

.PHONY: lint
lint: venv ## ruff
	$(VENV)/bin/ruff check src functions tests bench examples
	$(VENV)/bin/ruff format --check src functions tests bench examples

.PHONY: format
format: venv ## Format and fix what ruff can
	$(VENV)/bin/ruff format src functions tests bench examples
	$(VENV)/bin/ruff check --fix src functions tests bench examples

.PHONY: typecheck
typecheck: venv ## mypy (strict) on the runtime library and the operator tools
	$(VENV)/bin/mypy

.PHONY: unit
unit: venv browser ## pytest (the console's browser tests included)
	$(PY) -m pytest -q

.PHONY: browser screenshots
# Debian's chromium, driven by Playwright (pinned in requirements/dev.txt): `playwright install`'s own browser
# download is not used. apt-get runs only when chromium is missing, so a machine that has it pays nothing.
browser: ## Debian's chromium for the console's browser tests (apt-get as root, only when it is missing)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "chromium is missing: run make browser as root (apt-get install chromium)" >&2; exit 1; fi; \
	  echo "installing Debian's chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

screenshots: venv browser ## The console's screenshots under docs/, taken by its browser tests
	INQUEUE_SCREENSHOTS=docs $(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_console_browser.py

.PHONY: soak
soak: venv ## Soak: N events (default 1000) through ingress, queue and worker with faults, then the account
	PYTHONPATH=src $(PY) -m inqueue_local.soak --events $(or $(N),1000)

.PHONY: fuzz
fuzz: venv ## Fuzz: N adversarial requests (default 2000) in-process and over HTTP; SEED=7; 0 5xx/drops/leaks or exit 1
	$(PY) -m inqueue_local.fuzz --requests $(or $(N),2000) --seed $(or $(SEED),7)

.PHONY: lint-template
# The linters see the SAM template as written; tests/template checks what SAM turns it into.
# checkov: --skip-download keeps it offline (no platform guidelines are fetched).
lint-template: venv tools ## sam validate --lint, cfn-lint, checkov, then the transformed-template tests
	$(SAM) validate --lint --template $(TEMPLATE) --region us-east-1
	$(VENV)/bin/cfn-lint $(TEMPLATE)
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation --file $(TEMPLATE)
	$(PY) -m pytest -q -p no:cacheprovider tests/template

.PHONY: build build-check
# Exactly what a user runs from the repo root: samconfig.toml names the template and turns
# on cached + parallel builds. No Docker: src/Makefile builds the layer from arm64 wheels.
build: tools ## sam build (no Docker): arm64 wheels into the layer
	$(SAM) build

build-check: build venv ## sam build, then check the layer really holds arm64 wheels and nothing else
	INQUEUE_REQUIRE_BUILD=1 $(PY) -m pytest -q -p no:cacheprovider tests/build

# ---------------------------------------------------------------- local runner
BACKEND ?=
ENDPOINT ?=
PORT ?= 3000
CONSOLE_PORT ?=
EVENT ?= events/apigw-demo-json.json
PARAMS ?=
FORWARD_TO ?=
RECEIVER_PORT ?= 9000
ANSWER ?=
FAIL_FIRST ?=

# PARAMS reaches the runner through the environment, untouched: one shell has read it already (the
# user's), and "$$PARAMS" keeps a second from splitting it or eating its quotes. The runner then
# reads it as sam deploy --parameter-overrides does.
export PARAMS

.PHONY: run send receiver
run: venv ## The whole pipeline on this machine, and its console (BACKEND=moto|localstack, PORT=3000, CONSOLE_PORT=PORT+1, PARAMS="Name=Value ...", FORWARD_TO=URL)
	PORT=$(PORT) $(PY) -m inqueue_local run $(if $(BACKEND),--backend $(BACKEND)) $(if $(ENDPOINT),--endpoint $(ENDPOINT)) $(if $(CONSOLE_PORT),--console-port $(CONSOLE_PORT)) $(if $(PARAMS),--parameter-overrides "$$PARAMS") $(if $(FORWARD_TO),--forward-to "$(FORWARD_TO)")

receiver: venv ## The example app FORWARD_TO delivers to, verifying the local secret (RECEIVER_PORT=9000, ANSWER=500|400, FAIL_FIRST=N)
	RECEIVER_SECRET="$$($(PY) -c 'from pathlib import Path; from inqueue_local.forward import local_secret; print(local_secret(Path("config")))')" \
		$(PY) examples/receiver/receiver.py --port $(RECEIVER_PORT) $(if $(ANSWER),--answer $(ANSWER)) $(if $(FAIL_FIRST),--fail-first $(FAIL_FIRST))

send: venv ## Post an example event to `make run` (EVENT=events/apigw-demo-json.json); exits 1 on a 4xx/5xx
	@PORT=$(PORT) $(PY) -m inqueue_local send "$(EVENT)"

.PHONY: localstack localstack-test
# LocalStack's core in host mode (no Docker), in its own venv; `make run BACKEND=localstack` installs it too.
localstack: venv ## Install LocalStack (pinned, requirements/localstack.txt) into .tools/localstack
	$(PY) -m inqueue_local.localstack install

localstack-test: localstack ## The conformance rows and the end-to-end run against LocalStack on 127.0.0.1
	$(PY) -m pytest -q -p no:cacheprovider -m localstack tests/local tests/e2e

.PHONY: clean
clean: ## Remove the virtualenvs and build output
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench
bench: venv ## Benchmarks: one table of figures against baselines measured in the same run (ONLY=ingress,worker)
	$(PY) -m bench $(if $(ONLY),--only $(ONLY))
