# Osteo EDC — the two commands of the README, and their parts.
#   make run    build everything and serve http://127.0.0.1:3000
#   make test   the whole test suite (what CI runs)

.PHONY: run test site server tools check clean

run: tools site
	cargo build --release -p osteo-server
	./target/release/osteo-edc serve

test:
	./scripts/test.sh

tools:
	./scripts/ensure-tools.sh build

site:
	./scripts/build-site.sh

server:
	cargo build -p osteo-server

# Fast feedback while editing.
check:
	cargo check -p osteo-server -p osteo-tests --all-targets
	cargo check -p osteo-app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate

clean:
	cargo clean
