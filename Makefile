# mcpshare: `make` builds the binary at target/mcpshare: static on Linux,
# a normal (dynamic) release build on macOS, which has no static libc.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
CARGO ?= cargo
# The host's target triple decides what `make` builds (override with
# `make RUST_HOST=...`); a HOST variable in the environment is left alone.
RUST_HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
MUSL = $(firstword $(subst -, ,$(RUST_HOST)))-unknown-linux-musl
GNU = $(RUST_HOST)

# With vendored crates (make vendor), every cargo call stays offline.
OFFLINE := $(if $(wildcard vendor/.vendored),--offline,)

.PHONY: all static test lint man-lint vendor demo bench interop e2e fuzz fuzz-smoke install uninstall clean

# The binary `make bench` measures; the default is the static build.
BENCH_BIN ?= target/mcpshare
INTEROP_DIR = target/interop
E2E_DIR = target/e2e-node
# The browser `make e2e` drives (Debian's chromium package).
CHROMIUM ?= $(shell command -v chromium 2>/dev/null)

all: static

# Copy $(1) to $(2) through a temp file and a rename: a daemon running the
# old binary keeps its file (cp over it fails with "Text file busy").
replace = install -m 0755 $(1) $(dir $(2)).$(notdir $(2)).tmp && mv -f $(dir $(2)).$(notdir $(2)).tmp $(2)

# The static builds link functions sorted by section name, which is by
# crate and module path, so the daemon's, the hub's and the console's code
# no longer share the 64 KiB windows the kernel maps a bridge's code in:
# a bridge maps 1.67 MiB of the binary's code instead of 1.80 MiB.
LINK_ORDER = -C link-arg=-Wl,--sort-section=name

# Linux (x86_64, aarch64): musl when its target is installed (tried once
# with rustup), else glibc crt-static. macOS and other hosts: a normal
# release build for the host.
static:
ifeq ($(RUST_HOST),)
	$(error cannot tell the host target: is rustc on PATH? ('rustc -vV' names it))
endif
ifneq ($(findstring -linux-,$(RUST_HOST)),)
	@if ! rustup target list --installed 2>/dev/null | grep -qx $(MUSL); then \
		rustup target add $(MUSL) >/dev/null 2>&1 || true; fi
	@if rustup target list --installed 2>/dev/null | grep -qx $(MUSL); then \
		echo "building static musl binary ($(MUSL))"; \
		RUSTFLAGS="$$RUSTFLAGS $(LINK_ORDER)" $(CARGO) build $(OFFLINE) --release --target $(MUSL) && \
		$(call replace,target/$(MUSL)/release/mcpshare,target/mcpshare); \
	else \
		echo "musl target unavailable: building glibc crt-static binary ($(GNU))"; \
		RUSTFLAGS="$$RUSTFLAGS -C target-feature=+crt-static $(LINK_ORDER)" $(CARGO) build $(OFFLINE) --release --target $(GNU) && \
		$(call replace,target/$(GNU)/release/mcpshare,target/mcpshare); \
	fi
else
	@echo "building release binary for $(RUST_HOST) (dynamic: static builds are for Linux)"
	$(CARGO) build $(OFFLINE) --release
	@$(call replace,target/release/mcpshare,target/mcpshare)
endif
	@ls -l target/mcpshare

# The integration tests run the fixture server, an example: build examples
# as programs first (`cargo test --all-targets` alone builds them as tests).
test:
	$(CARGO) build $(OFFLINE) --examples
	$(CARGO) test $(OFFLINE) --all-targets

lint: man-lint
	$(CARGO) fmt --check
	$(CARGO) clippy $(OFFLINE) --all-targets -- -D warnings

# groff exits 0 on warnings, so its stderr decides.
man-lint:
	@for m in man/*.1; do \
		out=$$(groff -man -Tutf8 -ww -z $$m 2>&1); \
		if [ -n "$$out" ]; then echo "$$m: $$out"; exit 1; fi; \
	done; echo "man pages: no groff warnings"

vendor:
	mkdir -p .cargo
	$(CARGO) vendor --locked vendor > .cargo/config.toml
	touch vendor/.vendored

demo:
	$(CARGO) build $(OFFLINE) --release --bin mcpshare --example fixture --example demo
	target/release/examples/demo target/release/mcpshare target/release/examples/fixture

# Measures mcpshare against the fixture server run directly; see README.
bench: static
	$(CARGO) build $(OFFLINE) --release --example fixture --example bench
	target/release/examples/bench $(BENCH_BIN) target/release/examples/fixture --json target/bench.json

# Real MCP software from the npm registry, in a scratch directory; needs the
# registry, so it is not part of `make test`.
interop: static
	mkdir -p $(INTEROP_DIR)
	cp examples/interop/package.json examples/interop/package-lock.json examples/interop/interop.mjs examples/interop/configured.mjs examples/interop/apps.mjs examples/interop/app-cli.mjs examples/interop/connect.mjs $(INTEROP_DIR)/
	cd $(INTEROP_DIR) && npm ci --no-audit --no-fund --loglevel=error
	cd $(INTEROP_DIR) && node interop.mjs ../mcpshare
	cd $(INTEROP_DIR) && node configured.mjs ../mcpshare
	cd $(INTEROP_DIR) && node apps.mjs ../mcpshare
	cd $(INTEROP_DIR) && node connect.mjs ../mcpshare
	cp -r examples/interop/conformance.mjs examples/interop/conformance-server.mjs examples/interop/conformance-shim $(INTEROP_DIR)/
	cd $(INTEROP_DIR) && node conformance.mjs ../mcpshare

# The web console in headless Chromium, driven by playwright-core from npm
# (installed into a scratch directory, never by make test); screenshots
# go to target/e2e/.
e2e:
	$(CARGO) build $(OFFLINE) --bin mcpshare --example fixture
	mkdir -p $(E2E_DIR) target/e2e
	cp tests/e2e/package.json tests/e2e/package-lock.json tests/e2e/console.mjs $(E2E_DIR)/
	cd $(E2E_DIR) && npm ci --no-audit --no-fund --loglevel=error
	CHROMIUM=$(CHROMIUM) node $(E2E_DIR)/console.mjs target/debug/mcpshare target/debug/examples/fixture target/e2e

# Fuzz the parsers of untrusted input (fuzz/, cargo-fuzz on the nightly
# toolchain; neither is needed by make test). FUZZ_SECONDS per target; a
# crash stops the run and leaves its input in fuzz/artifacts/<target>/ (copy
# it to fuzz/regressions/<target>/ so make test replays it: see README).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS = http_request chunked_body http_response jsonrpc_lines state_files
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	rustup toolchain install nightly --profile minimal >/dev/null
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		$(CARGO) +nightly fuzz run $$t corpus/$$t regressions/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

# Each target briefly, failing on any crash: for CI.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

install: static
	install -d $(BINDIR) $(MANDIR)
	$(call replace,target/mcpshare,$(BINDIR)/mcpshare)
	install -m 0644 man/*.1 $(MANDIR)/

uninstall:
	rm -f $(BINDIR)/mcpshare $(MANDIR)/mcpshare.1

clean:
	$(CARGO) clean
