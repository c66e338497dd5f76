#!/usr/bin/env bash
# Builds the browser side of the site into target/site/pkg without
# cargo-leptos: the app crate compiled to wasm with the `hydrate` feature,
# wasm-bindgen for the JavaScript glue, and the plain CSS.
#   target/site/pkg/osteo-edc.js, osteo-edc_bg.wasm, osteo-edc.css, the same
#   under their content hash (osteo-edc.<hash>.js, …) and hash.txt naming it
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
# The same files under their content hash, which the pages load (so
# browsers may cache them for a year); the hash is named in hash.txt.
rm -f "$out"/osteo-edc.????????????????.js "$out"/osteo-edc.????????????????_bg.wasm "$out"/osteo-edc.????????????????.css
hash=$(cat "$out/osteo-edc.js" "$out/osteo-edc_bg.wasm" "$out/osteo-edc.css" | sha256sum | cut -c1-16)
cp "$out/osteo-edc.js" "$out/osteo-edc.$hash.js"
cp "$out/osteo-edc_bg.wasm" "$out/osteo-edc.${hash}_bg.wasm"
cp "$out/osteo-edc.css" "$out/osteo-edc.$hash.css"
echo "$hash" > "$out/hash.txt"
echo "site built in $out ($(du -k "$out/osteo-edc_bg.wasm" | cut -f1) KiB wasm, bundle $hash)"
