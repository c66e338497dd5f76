#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: formatting, lints,
# the browser bundle, unit tests, then every database test on SQLite and
# again on PostgreSQL (a throw-away server unless OSTEO_TEST_POSTGRES_URL
# names one), and the browser journeys.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - started ))s)"; }

# One package set for every cargo call, so that features unify the same way
# and nothing is compiled twice.
# CI builds once from nothing: incremental caches would only take disk.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

packages=(-p osteo-trial -p osteo-app -p osteo-model -p osteo-server -p osteo-tests)

step "tools"
./scripts/ensure-tools.sh test
# The API's conformance test (tests/tests/schemathesis.rs) runs this one.
export OSTEO_SCHEMATHESIS="$PWD/target/tools/schemathesis/bin/schemathesis"
# The DICOMweb test (tests/tests/dicomweb.rs) drives the server with dicomweb-client.
export OSTEO_DICOMWEB_PYTHON="$PWD/target/tools/dicomweb/bin/python"
# The accessibility test (tests/tests/browser.rs) runs axe-core in Chromium.
export OSTEO_AXE_CORE="$PWD/target/tools/axe/node_modules/axe-core/axe.min.js"
# The federation's tests (tests/tests/federated.rs) run Flower from here.
export OSTEO_FLOWER_VENV="$PWD/target/tools/flower"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (server side)"
cargo clippy "${packages[@]}" --all-targets -- -D warnings
step "cargo clippy (browser side, wasm32 + hydrate)"
cargo clippy -p osteo-app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

step "the model's GPU backend (wgpu) compiles"
cargo check -p osteo-model --features gpu-wgpu --example gpu_check

step "browser bundle"
./scripts/build-site.sh

step "the osteo-edc binary (for the command-line tests)"
cargo build "${packages[@]}"

step "tests on SQLite"
OSTEO_TEST_DATABASE=sqlite cargo test "${packages[@]}"

step "tests on PostgreSQL (the unit tests run again: they are quick, and the same package set avoids a rebuild)"
own_pg=""
if [ -z "${OSTEO_TEST_POSTGRES_URL:-}" ]; then
    OSTEO_TEST_POSTGRES_URL=$(./scripts/pg-test-server.sh start)
    export OSTEO_TEST_POSTGRES_URL
    own_pg=yes
    trap './scripts/pg-test-server.sh stop' EXIT
fi
# The model's learning tests and the federation train networks and touch no
# database: once is enough.
if ! OSTEO_TEST_DATABASE=postgres cargo test "${packages[@]}" -- \
    --skip it_learns_and_the_control_does_not --skip heat_maps_point_at_the_lesion \
    --skip what_the_model_uses --skip two_hospitals_federate_through_flower \
    --skip what_leaves_a_site_is_only; then
    if [ -n "$own_pg" ]; then
        echo "== the PostgreSQL server's log"
        ./scripts/pg-test-server.sh log 80
    fi
    exit 1
fi

step "all tests passed"
