# Panoptic: `make run` serves the whole suite, `make test` checks everything.
# Every target sets up what it needs first (a virtualenv in .venv, npm tools in node_modules).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXPLORER_FILES := services/gateway/static/vendor/package.json
# Debian packages some tests and benchmarks need (`make system-deps`, run as root; .ci/run does).
# prometheus brings promtool (rule tests), prometheus-alertmanager brings amtool; nghttp2-client
# brings h2load (bench read, bench report), wrk loads bench gateway, poppler-utils renders the
# report's pages (pdftoppm) for a look. The Go toolchain, protoc and grpc-gateway 1.6.4 with the Go
# libraries it builds against are for `make grpc-gateway` (bench gateway's peer); protoc-gen-go-1-3
# conflicts with the newer protoc-gen-go, which nothing here needs.
SYSTEM_PACKAGES := docker-compose chromium prometheus prometheus-alertmanager nghttp2-client wrk poppler-utils \
	golang-go protobuf-compiler protoc-gen-go-1-3 golang-grpc-gateway golang-github-grpc-ecosystem-grpc-gateway-dev \
	golang-google-grpc-dev golang-google-genproto-dev golang-github-golang-protobuf-1-3-dev
GRPC_GATEWAY := build/grpc-gateway/gateway

.DEFAULT_GOAL := help
.PHONY: help setup run run-monitoring test test-unit test-integration lint format protos bench bench-report grpc-gateway system-deps clean

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Panoptic needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Swagger UI's files for the gateway's /docs, copied from node_modules into the gateway's package
# (git-ignored package data, so an installed gateway and the image carry them too).
$(EXPLORER_FILES): node_modules/.installed services/gateway/explorer_files.py
	$(PYTHON) -m services.gateway.explorer_files node_modules/swagger-ui-dist

setup: $(BIN)/.installed node_modules/.installed $(EXPLORER_FILES)  ## Install Python and npm dependencies

run: $(BIN)/.installed $(EXPLORER_FILES)  ## Serve the whole suite (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/panoptic up

run-monitoring: $(BIN)/.installed $(EXPLORER_FILES)  ## make run, plus Prometheus with the alert rules on :9090
	$(BIN)/panoptic up --with-monitoring

test: lint  ## Lint, then run every test (unit, integration, e2e)
	$(BIN)/pytest

test-unit: $(BIN)/.installed  ## Only the fast tests with no I/O
	$(BIN)/pytest tests/unit

test-integration: $(BIN)/.installed $(EXPLORER_FILES)  ## Only the tests against PostgreSQL and gRPC servers
	$(BIN)/pytest tests/integration

lint: setup  ## ruff, mypy and buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	scripts/buf-lint

format: $(BIN)/.installed  ## Fix what ruff can fix
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

protos: $(BIN)/.installed  ## Regenerate panoptic/v1 from protos/
	$(BIN)/python -m panoptic.protogen

bench: $(BIN)/.installed  ## Ingest benchmark: the indexer against a raw COPY, same run
	$(BIN)/panoptic bench ingest

bench-report: $(BIN)/.installed  ## When will the DB degrade? bench-report.pdf and .json (~11 min)
	$(BIN)/panoptic bench report --output bench-report.pdf

# Rebuilt when the protos, the recipe or the venv (googleapis-common-protos) change; Go's own cache
# under build/grpc-gateway/gocache makes a rebuild take seconds.
$(GRPC_GATEWAY): $(BIN)/.installed scripts/grpc-gateway/build scripts/grpc-gateway/main.go \
		protos/panoptic/v1/retriever_service.proto protos/panoptic/v1/resources.proto
	PYTHON=$(BIN)/python scripts/grpc-gateway/build $(dir $@)

grpc-gateway: $(GRPC_GATEWAY)  ## grpc-gateway (Go) on the retriever's protos, bench gateway's peer (needs make system-deps)

system-deps:  ## Install the Debian packages some tests need (as root)
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES)

clean:  ## Remove the virtualenv and build by-products (keeps .data)
	rm -rf $(VENV) node_modules services/gateway/static/vendor build .stamps .pytest_cache .mypy_cache .ruff_cache
