# One place for every routine task. `make run` and `make test` work on a fresh machine:
# they create the virtual environment from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Two stamps: `run` needs only the package and its runtime dependencies; everything else
# (tests, lint, types, proto) needs the dev tools too. The dev install covers the runtime one.
RUN_STAMP := $(VENV)/.runtime-stamp
STAMP := $(VENV)/.installed-stamp
PROTO_FILES := $(wildcard proto/cnm_policy/v1/*.proto)

.PHONY: setup system-deps run test fmt lint types check proto proto-check bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# xds-protos (Envoy's ext_authz stubs) ships stale copies of opentelemetry-proto's modules over
# the real ones; reinstalling opentelemetry-proto last keeps OTLP export working.
OTEL_PROTO_FIX = $(PY) -m pip install --quiet --force-reinstall --no-deps \
	"opentelemetry-proto==$$($(PY) -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')"

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	$(OTEL_PROTO_FIX)
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(OTEL_PROTO_FIX)
	touch $(STAMP) $(RUN_STAMP)

setup: $(STAMP) ## create .venv with the project and its dev tools

# Debian packages some tests drive for real: headless Chromium (the HTML report), the
# PostgreSQL 15 server binaries (query plans compiled to SQL), Node.js and curl (the HTTP
# client examples). Needs root or sudo once.
system-deps: ## install the Debian packages the test suite drives (chromium, postgresql, node, curl)
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: $(RUN_STAMP) ## start the sidecar on the bundled default policies (127.0.0.1:50051)
	$(BIN)/cnm-policy serve --policies policies/cnm

test: $(STAMP) system-deps ## the whole test suite (installs the Debian packages it drives when missing)
	$(PY) -m pytest

fmt: $(STAMP)
	$(BIN)/ruff format src tests examples benchmarks
	$(BIN)/ruff check --fix src tests examples benchmarks

lint: $(STAMP)
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/ruff check src tests examples benchmarks

types: $(STAMP)
	$(BIN)/mypy

proto: $(STAMP) ## regenerate src/cnm_policy/v1 from proto/
	$(PY) -m grpc_tools.protoc -I proto --python_out=src --grpc_python_out=src --pyi_out=src $(PROTO_FILES)

proto-check: proto ## fail when the committed generated code differs from a fresh generation
	git diff --exit-code -- src/cnm_policy/v1 || (echo "generated code is stale: run 'make proto' and commit" >&2; exit 1)

bench: $(STAMP) ## benchmark tables: engine and sidecar, then each issue's budgets
	$(PY) -m benchmarks
	-$(PY) -m benchmarks.governance  # a budget missed prints, exits 1, the rest still run
	-$(PY) -m benchmarks.plans
	-$(PY) -m benchmarks.ops
	-$(PY) -m benchmarks.http
	-$(PY) -m benchmarks.shadow
	-$(PY) -m benchmarks.insights

check: lint types proto-check test ## everything CI runs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
