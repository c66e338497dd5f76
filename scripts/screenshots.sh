#!/usr/bin/env bash
# Screenshots of each role's main pages in both languages, taken in
# headless Chromium on a fresh server with generated cases, for a person to
# look at; then the reading workstation and the study overview are copied
# into docs/ (the README shows them).
#   scripts/screenshots.sh [DIR]     (default target/screenshots/pages)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath -m "${1:-target/screenshots/pages}")
[ -e target/site/pkg/hash.txt ] || ./scripts/build-site.sh
OSTEO_SCREENSHOTS="$dir" cargo test -p osteo-tests --test browser -- \
    --ignored --exact screenshots_of_each_roles_pages
cp "$dir/radiologist-workstation-en.png" docs/workstation.png
cp "$dir/investigator-dashboard-en.png" docs/overview.png
echo "pictures in $dir; docs/workstation.png and docs/overview.png updated"
