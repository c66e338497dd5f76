#!/usr/bin/env bash
# Builds the browser side of the site into target/site/pkg without
# cargo-leptos: the app crate compiled to wasm with the `hydrate` feature,
# wasm-bindgen for the JavaScript glue, and the plain CSS.
#   target/site/pkg/osteo-edc.js, osteo-edc_bg.wasm, osteo-edc.css
# wasm-opt is deliberately not run (Debian's binaryen 108 breaks hydration).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${SITE_PROFILE:-wasm-release}"
target_dir="${CARGO_TARGET_DIR:-target}"
out="target/site/pkg"
cargo build -p osteo-app --lib --target wasm32-unknown-unknown --profile "$profile" \
    --no-default-features --features hydrate
mkdir -p "$out"
wasm-bindgen --target web --no-typescript --out-name osteo-edc --out-dir "$out" \
    "$target_dir/wasm32-unknown-unknown/$profile/osteo_app.wasm"
cp style/main.css "$out/osteo-edc.css"
echo "site built in $out ($(du -k "$out/osteo-edc_bg.wasm" | cut -f1) KiB wasm)"
