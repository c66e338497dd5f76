#!/usr/bin/env bash
# The page weight: what a browser downloads to run the pages (the script,
# the WebAssembly and the stylesheet), as a running server sends it, with
# and without compression.
#   scripts/page-weight.sh [BASE_URL]      (default http://127.0.0.1:3000)
# Start the server first (`make run`, or `target/release/osteo-edc serve`).
set -euo pipefail
base="${1:-http://127.0.0.1:3000}"
page=$(curl -fsS "$base/login") || { echo "no server answers at $base" >&2; exit 1; }
files=$(grep -o '/pkg/osteo-edc[^"]*\.\(js\|wasm\|css\)' <<<"$page" | sort -u)
[ -n "$files" ] || { echo "the page at $base/login loads no bundle" >&2; exit 1; }
printf '%-48s %12s %12s  %s\n' file bytes gzip cache-control
total=0; total_gz=0
for f in $files; do
    plain=$(curl -fsS -o /dev/null -w '%{size_download}' "$base$f")
    gz=$(curl -fsS -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "$base$f")
    cache=$(curl -fsS -o /dev/null -D - "$base$f" | tr -d '\r' | awk -F': ' 'tolower($1) == "cache-control" { print $2 }')
    printf '%-48s %12d %12d  %s\n' "$f" "$plain" "$gz" "$cache"
    total=$((total + plain)); total_gz=$((total_gz + gz))
done
printf '%-48s %12d %12d\n' total "$total" "$total_gz"
