#!/usr/bin/env bash
# Makes server/fonts/NotoSansSC-Report.otf, the font the locked PDF report
# embeds (a subset of it, per document): Noto Sans CJK SC Regular cut down to
# Latin, the punctuation and symbols a report prints, and the 7,445
# characters of GB 2312 (every character of the interface's Chinese text and
# of nearly every Chinese name). Shipping the font, instead of reading the
# system's, keeps the report byte-identical across machines and font updates.
#
# Needs Debian's fonts-noto-cjk and Python's fonttools (pip install
# fonttools==4.61.1). Run it only to change the font; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
chars=$(mktemp)
trap 'rm -f "$chars"' EXIT
python3 - "$chars" <<'PY'
import sys
out = set()
for a in range(0xA1, 0xF8):
    for b in range(0xA1, 0xFF):
        try:
            out.add(bytes([a, b]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
open(sys.argv[1], "w").write("".join(sorted(out)))
PY
# Face 2 of the collection is Simplified Chinese.
pyftsubset "$src" --font-number=2 --text-file="$chars" \
    --unicodes="U+0020-007E,U+00A0-00FF,U+0100-017F,U+2000-206F,U+2100-214F,U+2190-21FF,U+2200-22FF,U+2460-24FF,U+25A0-25FF,U+3000-303F,U+FF00-FFEF" \
    --no-hinting --name-IDs='*' --name-languages='*' \
    --output-file=server/fonts/NotoSansSC-Report.otf
