#!/usr/bin/env bash
# burn (the release binary's `model bench`) and the PyTorch reference of the
# same network on this machine, same sizes, same thread count, taking turns
# for ROUNDS rounds (default 3): a shared machine's speed drifts by a fifth
# or more from one minute to the next, so one run of each can mislead. Not
# part of the build or CI. Needs a release build of the server and a Python
# with torch (PYTHON=/path/to/python, default python3):
#   cargo build --release -p osteo-server
#   python3 -m venv ../torch-venv && ../torch-venv/bin/pip install torch
#   PYTHON=../torch-venv/bin/python THREADS=2 model/reference/compare.sh
# Prints each run's JSON, then a summary: per round the medians and burn's
# time over PyTorch's, and the median of those over the rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${THREADS:-$(nproc)}
rounds=${ROUNDS:-3}
python=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  echo "== round $round: burn (flex), RAYON_NUM_THREADS=$threads"
  RAYON_NUM_THREADS=$threads ./target/release/osteo-edc model bench --data-dir "$out/data" "$@" | tee "$out/burn-$round.json"
  echo "== round $round: PyTorch $("$python" -c 'import torch; print(torch.__version__)'), $threads threads"
  "$python" model/reference/bench.py --threads "$threads" "$@" | tee "$out/torch-$round.json"
done
echo "== summary (medians, ms)"
"$python" - "$out" "$rounds" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {"inference": "inference_ms_per_case", "training step": "train_step_ms"}
ratios = {k: [] for k in rows}
for r in range(1, rounds + 1):
    burn = json.load(open(f"{out}/burn-{r}.json"))
    torch = json.load(open(f"{out}/torch-{r}.json"))
    parts = []
    for label, key in rows.items():
        b, t = burn[key]["median"], torch[key]["median"]
        ratios[label].append(b / t)
        parts.append(f"{label} burn {b:.1f}, pytorch {t:.1f}, {b / t:.2f}x")
    parts.append(f"with heat maps burn {burn['inference_with_heatmaps_ms_per_case']['median']:.1f}")
    print(f"round {r}: " + "; ".join(parts))
for label, values in ratios.items():
    print(f"{label}: burn / pytorch over {rounds} rounds: median {statistics.median(values):.2f}x, "
          f"range {min(values):.2f}x to {max(values):.2f}x")
EOF
