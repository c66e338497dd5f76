# Osteo EDC — the two commands of the README, and their parts.
#   make run    build everything and serve http://127.0.0.1:3000
#   make test   the whole test suite (what CI runs)

.PHONY: run build run-server release test site server tools check clean

# The browser bundle (after its tool) and the server build side by side,
# sharing make's job slots with cargo (the `+`), so a two-core machine keeps
# both cores busy through each build's single-crate stretches. The server is
# built with the `quickstart` profile (Cargo.toml): the tensor crates at full
# optimisation, the rest as a debug build without debug assertions.
run: build
	./target/quickstart/osteo-edc serve

build:
	+$(MAKE) -j$$(nproc) site run-server

run-server:
	+cargo build --profile quickstart -p osteo-server

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
