# Osteo EDC — the two commands of the README, and their parts.
#   make run    build everything and serve http://127.0.0.1:3000
#   make test   the whole test suite (what CI runs)

.PHONY: run build run-server release test site server tools check clean

# The browser bundle (after its tool) and the server build side by side, as
# two independent cargo processes. Not make's `-j` with shared job slots:
# cargo keeps every slot it can get, so the bundle waited eight minutes for
# the server's; on their own the two fill both cores, the bundle mostly while
# the server compiles burn's CPU backend, a long single-crate stretch. The
# server is built with the `quickstart` profile (Cargo.toml): the tensor
# crates at full optimisation, the rest as a debug build without debug
# assertions.
run: build
	./target/quickstart/osteo-edc serve

build:
	MAKEFLAGS= $(MAKE) site & site=$$!; \
	MAKEFLAGS= $(MAKE) run-server; server=$$?; \
	wait $$site && exit $$server

run-server:
	cargo build --profile quickstart -p osteo-server

# The production build: everything optimised (about 19 minutes cold here).
release: site
	+cargo build --release -p osteo-server

test:
	./scripts/test.sh

tools:
	+./scripts/ensure-tools.sh build

site: tools
	+./scripts/build-site.sh

server:
	cargo build -p osteo-server

# Fast feedback while editing.
check:
	cargo check -p osteo-server -p osteo-tests --all-targets
	cargo check -p osteo-app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate

clean:
	cargo clean
