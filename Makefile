# mcpshare: `make` builds the static binary at target/mcpshare.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
CARGO ?= cargo
MUSL = x86_64-unknown-linux-musl
GNU = x86_64-unknown-linux-gnu

# With vendored crates (make vendor), every cargo call stays offline.
OFFLINE := $(if $(wildcard vendor/.vendored),--offline,)

.PHONY: all static test lint man-lint vendor demo bench interop fuzz fuzz-smoke install uninstall clean

# The binary `make bench` measures; the default is the static build.
BENCH_BIN ?= target/mcpshare
INTEROP_DIR = target/interop

all: static

# Copy $(1) to $(2) through a temp file and a rename: a daemon running the
# old binary keeps its file (cp over it fails with "Text file busy").
replace = install -m 0755 $(1) $(dir $(2)).$(notdir $(2)).tmp && mv -f $(dir $(2)).$(notdir $(2)).tmp $(2)

# musl when its target is installed (tried once with rustup), else glibc crt-static.
static:
	@if ! rustup target list --installed 2>/dev/null | grep -qx $(MUSL); then \
		rustup target add $(MUSL) >/dev/null 2>&1 || true; fi
	@if rustup target list --installed 2>/dev/null | grep -qx $(MUSL); then \
		echo "building static musl binary"; \
		$(CARGO) build $(OFFLINE) --release --target $(MUSL) && \
		$(call replace,target/$(MUSL)/release/mcpshare,target/mcpshare); \
	else \
		echo "musl target unavailable: building glibc crt-static binary"; \
		RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build $(OFFLINE) --release --target $(GNU) && \
		$(call replace,target/$(GNU)/release/mcpshare,target/mcpshare); \
	fi
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
	cp examples/interop/package.json examples/interop/package-lock.json examples/interop/interop.mjs examples/interop/apps.mjs $(INTEROP_DIR)/
	cd $(INTEROP_DIR) && npm ci --no-audit --no-fund --loglevel=error
	cd $(INTEROP_DIR) && node interop.mjs ../mcpshare
	cd $(INTEROP_DIR) && node apps.mjs ../mcpshare

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
