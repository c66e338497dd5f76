#!/usr/bin/env bash
# A federation on this machine: Flower's SuperLink and one SuperNode per
# hospital on loopback. Each hospital has its own EDC database, whose
# retrospective arm holds complete phantom cases (its own generator seed,
# detector contrast, noise, share of malignant lesions and spectrum of
# lesions) entered by
# `osteo-edc demo retrospective`; its SuperNode trains on what
# `model dataset export` takes out of that database. The federation is
# trained with FedAvg and FedProx through the real Flower processes, and
# compared with each site trained alone, with centralised training on the
# union, and with leave-one-site-out federations (beside the other sites
# alone and the other sites' cases pooled). Everything it starts, it
# stops. docs/federated.md shows a run's figures.
#
#   scripts/fl-demo.sh [--sites N] [--rounds R] [--epochs E] [--cases C] [--size S]
#                      [--test-cases T] [--spectrum X] [--realistic] [--seed K] [--out DIR]
#                      [--only fedavg|data]
#
# R rounds of E local epochs (default 5 × 2); single-site and centralised
# training get R × E epochs. Each hospital trains on C cases (default 160)
# and every model is judged on each hospital's next T patients (default
# 1000: an AUC near 0.95 then has a standard error under 0.01). The sites'
# spectra of lesions are 0, -X and X: by default (X = 0) every site's
# lesions are drawn alike; --spectrum 1 makes B a general hospital (subtler
# lesions, malignant ones mostly metastases of the old) and C a sarcoma
# referral centre (overt lesions, malignant ones mostly sarcomas of the
# young). --realistic
# draws the phantoms with texture, soft tissue and collimation. --seed K
# draws other cases (each site's generator seeds move by 1000·K) and other
# first weights (seed 42 + K). --only data makes the hospitals' EDCs,
# exports and test sets and stops (for scripts/fedavg-sweep.py).
#
# Needs the osteo-edc binary (OSTEO_EDC_BIN, default target/release, else
# target/debug) and Flower in a virtual environment (OSTEO_FLOWER_VENV,
# default target/tools/flower; `scripts/ensure-tools.sh` makes it from
# federated/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sites=3 rounds=5 cases=160 size=64 epochs=2 seed=0 out=target/fl-demo only=all test_cases=1000 realistic=()
spectrum=0
while [ $# -gt 0 ]; do
    case "$1" in
        --sites) sites=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --cases) cases=$2; shift 2 ;;
        --test-cases) test_cases=$2; shift 2 ;;
        --spectrum) spectrum=$2; shift 2 ;;
        --realistic) realistic=(--realistic); shift ;;
        --size) size=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $spectrum =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || { echo "--spectrum takes a number from 0 to 1" >&2; exit 2; }
case "$only" in all|fedavg|data) ;; *) echo "--only takes fedavg or data" >&2; exit 2 ;; esac
[ "$sites" -ge 2 ] && [ "$sites" -le 3 ] || { echo "--sites must be 2 or 3" >&2; exit 2; }
for v in rounds epochs cases size seed test_cases; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "--${v/_/-} takes a whole number" >&2; exit 2; }
done

bin=${OSTEO_EDC_BIN:-}
if [ -z "$bin" ]; then
    for b in target/release/osteo-edc target/debug/osteo-edc; do
        [ -x "$b" ] && { bin=$root/$b; break; }
    done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "no osteo-edc binary: build it (cargo build -p osteo-server) or set OSTEO_EDC_BIN" >&2; exit 2; }
venv=${OSTEO_FLOWER_VENV:-$root/target/tools/flower}
[ -x "$venv/bin/flower-superlink" ] || { echo "no Flower in $venv: run scripts/ensure-tools.sh or set OSTEO_FLOWER_VENV" >&2; exit 2; }
export PATH="$venv/bin:$PATH"
export OSTEO_EDC_BIN=$bin
# Each hospital's EDC is its own SQLite database in its own folder.
unset DATABASE_URL OSTEO_AUDIT_KEY

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
export FLWR_HOME=$out/flwr-home
mkdir -p "$FLWR_HOME"
pids=() ports=()
stop() { # stop PID...: each process and the SuperExec it started; killed after 10 s
    for p in "$@"; do
        kill "$p" 2>/dev/null || true
        pkill -f "flower-superexec .*--parent-pid $p\b" 2>/dev/null || true
    done
    for p in "$@"; do
        for _ in $(seq 20); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.5
        done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
stop_all() {
    [ ${#pids[@]} -gt 0 ] && stop "${pids[@]}"
    pids=()
    # A ServerApp or ClientApp still running (an interrupted round) talks
    # to one of the ports this script opened.
    for port in "${ports[@]}"; do
        pkill -9 -f "flwr-(server|client)app --runtime-api-address 127.0.0.1:$port\b" 2>/dev/null || true
    done
}
trap stop_all EXIT
# Interrupted or killed, it still stops what it started (the EXIT trap).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "fl-demo: a step failed (line $LINENO); logs in $out" >&2' ERR
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '== %s\n' "$*"; }

# ------------------------------------------------------------------ the sites
# Site A: as drawn. Site B, a general hospital: low contrast, noisy, fewer
# malignant cases and subtler lesions of both classes. Site C, a sarcoma
# referral centre: high contrast, a little noise, more malignant cases and
# overt lesions (`model phantoms --help` on --spectrum).
names=(A B C)
contrast=(1.0 0.7 1.3)
noise=(0.0 0.06 0.03)
share=(0.4 0.25 0.6)
spectra=(0 "-$spectrum" "$spectrum")
# Each site's training set comes out of its own EDC: a new demonstration
# database whose retrospective arm holds C complete cases (read, pathology
# entered and signed), exported by the coordinator as any study's is. The
# test set, the same site's next T patients, judges every model and is
# never trained on.
say "making $sites hospitals' EDCs of $cases complete retrospective phantom cases each (and a test set of $test_cases patients per site)"
for i in $(seq 0 $((sites - 1))); do
    site=$out/site-${names[$i]}
    mkdir -p "$site"
    draw=(--width "$size" --height "$((size * 5 / 4))" --contrast "${contrast[$i]}"
        --site-noise "${noise[$i]}" --malignant-share "${share[$i]}" --spectrum "${spectra[$i]}"
        "${realistic[@]}")
    "$bin" --data-dir "$site/edc" demo retrospective --n "$cases" --seed $((1000 * seed + 100 + i)) "${draw[@]}" >"$site/edc.json"
    "$bin" --data-dir "$site/edc" model dataset export --out "$site/train" --as coordinator \
        --intermediate excluded >/dev/null
    "$bin" model phantoms --n "$test_cases" --seed $((1000 * seed + 200 + i)) "${draw[@]}" --out "$site/test" >/dev/null
    say "  site ${names[$i]}: $(grep -c '^DR-' "$site/train/manifest.csv") cases exported from $site/edc"
done
# The union of the sites (centralised training) and of their test sets.
# A site's exported training set keeps its views under images/.
union() { # union PART DIR [SITE_LEFT_OUT]
    local parts=() i
    for i in $(seq 0 $((sites - 1))); do
        [ "${names[$i]}" = "${3:-}" ] || parts+=("${names[$i]}=$out/site-${names[$i]}/$1")
    done
    "$venv/bin/python" "$root/scripts/fl_study.py" union "$2" "${parts[@]}"
}
union train "$out/union/train"
union test "$out/union/test"
if [ "$only" = data ]; then
    say "the sites' data are in $out (--only data: no federation)"
    exit 0
fi

# ------------------------------------------------------------- the federation
# As a deployment is secured (docs/federated.md): the federation's own CA
# signs the SuperLink's TLS certificate, each hospital's SuperNode holds its
# own key, registered with the SuperLink before it may join, and nothing is
# installed at run time.
pki=$out/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 30 \
    -subj "/CN=Osteo EDC federation CA (demo)" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$pki/superlink.key" -out "$pki/superlink.csr" \
    -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/san.ext"
openssl x509 -req -in "$pki/superlink.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/superlink.pem" -days 30 -extfile "$pki/san.ext" 2>/dev/null
for i in $(seq 0 $((sites - 1))); do
    # An ECDSA key in OpenSSH format, as `ssh-keygen -t ecdsa -b 384` makes.
    "$venv/bin/python" - "$pki/site-${names[$i]}" <<'EOF'
import os, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP384R1())
path = sys.argv[1]
with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                              serialization.NoEncryption()))
with open(path + ".pub", "wb") as f:
    f.write(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
EOF
done
link_port=$(free_port)
cat >"$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "demo"

[superlink.demo]
address = "127.0.0.1:$link_port"
root-certificates = "$pki/ca.crt"
EOF
say "starting the SuperLink on 127.0.0.1:$link_port (TLS, SuperNode authentication)"
flower-superlink --ssl-ca-certfile "$pki/ca.crt" --ssl-certfile "$pki/superlink.pem" --ssl-keyfile "$pki/superlink.key" \
    --enable-supernode-auth --disable-runtime-dependency-installation --port "$link_port" \
    --database "$out/superlink.db" >"$out/superlink.log" 2>&1 &
pids+=($!)
ports+=("$link_port")
for _ in $(seq 60); do
    grep -q "Application startup complete" "$out/superlink.log" 2>/dev/null && break
    sleep 1
done
for i in $(seq 0 $((sites - 1))); do
    flwr supernode register "$pki/site-${names[$i]}.pub" --name "site-${names[$i]}" >>"$out/superlink.log" 2>&1 \
        || { echo "registering site ${names[$i]}'s key failed; see $out/superlink.log" >&2; exit 1; }
done
node_pids=()
start_nodes() { # start_nodes SITE_INDEX...
    for i in "$@"; do
        local name=${names[$i]} port
        port=$(free_port)
        mkdir -p "$out/site-$name/work"
        flower-supernode --root-certificates "$pki/ca.crt" --auth-supernode-private-key "$pki/site-$name" \
            --superlink "127.0.0.1:$link_port" --port "$port" \
            --node-config "manifest=\"$out/site-$name/train/manifest.csv\" images=\"$out/site-$name/train/images\" work-dir=\"$out/site-$name/work\"" \
            >>"$out/site-$name/supernode.log" 2>&1 &
        node_pids+=($!)
        pids+=($!)
        ports+=("$port")
    done
    sleep 5
}
stop_nodes() {
    [ ${#node_pids[@]} -gt 0 ] && stop "${node_pids[@]}"
    node_pids=()
    sleep 2
}
federate() { # federate NAME STRATEGY MIN_NODES
    local dir=$out/runs/$1
    mkdir -p "$dir"
    say "$1: $2, $rounds rounds, $3 sites"
    flwr run "$root/federated" --stream --run-config \
        "strategy=\"$2\" num-server-rounds=$rounds min-nodes=$3 local-epochs=$epochs seed=$((42 + seed)) image-size=$size channels=\"8,16,32\" learning-rate=0.002 batch-size=8 out-dir=\"$dir\" osteo-edc=\"$bin\"" \
        >"$dir/flwr.log" 2>&1 &
    local run=$! shown=0 now name=$1
    pids+=("$run")
    # A progress line per round, as the coordinator writes it.
    progress() {
        now=$(grep -c '\[osteo-fl\] round [0-9]*/[0-9]* aggregated' "$dir/flwr.log" 2>/dev/null || true)
        if [ "${now:-0}" -gt "$shown" ]; then
            grep '\[osteo-fl\] round [0-9]*/[0-9]* aggregated' "$dir/flwr.log" | sed -n "$((shown + 1)),\$p" | sed "s/^.*\[osteo-fl\]/  $name:/"
            shown=$now
        fi
    }
    while kill -0 "$run" 2>/dev/null; do
        sleep 2
        progress
    done
    progress
    wait "$run" || { echo "the federation $1 failed; its log: $dir/flwr.log" >&2; tail -30 "$dir/flwr.log" >&2; exit 1; }
    [ -f "$dir/global.safetensors" ] || { echo "the federation $1 wrote no global model; its log: $dir/flwr.log" >&2; exit 1; }
}

all_sites=$(seq 0 $((sites - 1)))
start_nodes $all_sites
federate fedavg fedavg "$sites"
[ "$only" = all ] && federate fedprox fedprox "$sites"
if [ "$only" = all ]; then
    for k in $all_sites; do
        stop_nodes
        others=$(for i in $all_sites; do if [ "$i" != "$k" ]; then echo "$i"; fi; done)
        start_nodes $others
        federate "without-${names[$k]}" fedavg $((sites - 1))
    done
fi
stop_all

# The FedAvg global model as a model directory, calibrated on site A's
# held-out patients: checked with `model card`, ready to be pinned.
say "the FedAvg global model as a model directory ($out/model)"
"$bin" model fl-finish --in "$out/runs/fedavg/global.safetensors" \
    --federation-metrics "$out/runs/fedavg/metrics.json" \
    --manifest "$out/site-A/train/manifest.csv" --images "$out/site-A/train/images" --demo --out "$out/model" >/dev/null
"$bin" model card --model "$out/model" >"$out/model-card.json"

# --------------------------------------------------- single site, centralised
# The same network, the same first weights and as many epochs as the
# federation's rounds × local epochs, trained where the data are.
first=$out/runs/fedavg/global-0.safetensors
local_only() { # local_only NAME MANIFEST IMAGES
    "$bin" model fl-train --in "$first" --out "$out/runs/$1.safetensors" --manifest "$2" --images "$3" \
        --epochs $((rounds * epochs)) --learning-rate 0.002 --batch-size 8 >"$out/runs/$1.json"
}
if [ "$only" = all ]; then
    for i in $all_sites; do
        say "site ${names[$i]} alone"
        local_only "alone-${names[$i]}" "$out/site-${names[$i]}/train/manifest.csv" "$out/site-${names[$i]}/train/images"
    done
    say "centralised on the union"
    local_only centralised "$out/union/train/manifest.csv" "$out/union/train"
    # Leave one site out without a federation: the other sites' cases pooled,
    # the most a federation of them can be expected to reach on the site.
    if [ "$sites" -gt 2 ]; then
        for k in $all_sites; do
            say "centralised on the union without site ${names[$k]}"
            union train "$out/union-without-${names[$k]}" "${names[$k]}"
            local_only "pooled-without-${names[$k]}" "$out/union-without-${names[$k]}/manifest.csv" \
                "$out/union-without-${names[$k]}"
        done
    fi
fi

# --------------------------------------------------------------- the figures
auc() { # auc WEIGHTS TEST_DIR
    "$bin" model fl-evaluate --in "$1" --manifest "$2/manifest.csv" --images "$2" --validation-share 1 \
        | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["auc"])'
}
say "judging every model on every site's test set"
{
    printf 'model'
    for i in $all_sites; do printf '\tsite %s' "${names[$i]}"; done
    printf '\tpooled\n'
    models="fedavg/global"
    [ "$only" = all ] && models="$(for i in $all_sites; do printf 'alone-%s ' "${names[$i]}"; done)fedavg/global fedprox/global centralised"
    for m in $models; do
        printf '%s' "${m%/global}"
        for i in $all_sites; do printf '\t%.3f' "$(auc "$out/runs/$m.safetensors" "$out/site-${names[$i]}/test")"; done
        printf '\t%.3f\n' "$(auc "$out/runs/$m.safetensors" "$out/union/test")"
    done
} >"$out/auc.tsv"
# Leave one site out: on the held-out site's patients, the federation of the
# others against the mean of those sites alone, with the difference's 95%
# confidence interval from DeLong's covariances (`stats compare` on each
# pair of models' scores for the same patients).
if [ "$only" = all ]; then
    {
        printf 'held-out site\tfederation without it\tmean of the other sites alone\tdifference\t95%% CI\tpooled without it\n'
        for k in $all_sites; do
            test=$out/site-${names[$k]}/test
            cmp=$out/runs/held-out-${names[$k]}
            mkdir -p "$cmp"
            models=("without-${names[$k]}/global")
            for i in $all_sites; do if [ "$i" != "$k" ]; then models+=("alone-${names[$i]}"); fi; done
            for m in "${models[@]}"; do
                "$bin" model fl-evaluate --in "$out/runs/$m.safetensors" --manifest "$test/manifest.csv" \
                    --images "$test" --validation-share 1 --scores "$cmp/${m%/global}.csv" >/dev/null
            done
            pooled=-
            [ -f "$out/runs/pooled-without-${names[$k]}.safetensors" ] &&
                pooled=$(printf '%.3f' "$(auc "$out/runs/pooled-without-${names[$k]}.safetensors" "$test")")
            "$venv/bin/python" - "$bin" "$cmp" "${names[$k]}" "$pooled" "${models[@]%/global}" <<'EOF'
import csv, itertools, json, math, os, subprocess, sys
binary, folder, site, pooled, models = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
rows = {}
for m in models:
    with open(os.path.join(folder, m + ".csv"), newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["case_id"], {"case_id": r["case_id"], "label": r["label"]})[m] = r["score"]
joined = os.path.join(folder, "scores.csv")
with open(joined, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["case_id", "label"] + models)
    w.writeheader()
    w.writerows(rows.values())
auc, cov = {}, {}
for a, b in itertools.combinations(models, 2):
    r = subprocess.run([binary, "stats", "compare", "--csv", joined, "--truth", "label", "--positive", "1",
                        "--score", a, "--score", b], capture_output=True, text=True, check=True)
    c = json.loads(r.stdout)
    auc[a], auc[b] = c["auc1"], c["auc2"]
    cov[a, a], cov[b, b], cov[a, b] = c["delong_var1"], c["delong_var2"], c["delong_cov"]
    cov[b, a] = cov[a, b]
# The federation minus the mean of the m sites alone: weights 1 and -1/m.
weight = {models[0]: 1.0, **{m: -1.0 / (len(models) - 1) for m in models[1:]}}
diff = sum(weight[m] * auc[m] for m in models)
alone = sum(auc[m] for m in models[1:]) / (len(models) - 1)
if None in cov.values():
    # DeLong's variances need two or more patients of each class.
    ci = "- (a class has under 2 test patients)"
else:
    se = math.sqrt(max(0.0, sum(weight[a] * weight[b] * cov[a, b] for a in models for b in models)))
    z = 1.959964
    ci = f"{diff - z * se:+.3f} to {diff + z * se:+.3f}"
print(f"{site}\t{auc[models[0]]:.3f}\t{alone:.3f}\t{diff:+.3f}\t{ci}\t{pooled}")
EOF
        done
    } >"$out/leave-one-out.tsv"
fi
# The pooled test AUC of each round's global model.
{
    printf 'round\tfedavg'
    [ "$only" = all ] && printf '\tfedprox'
    printf '\n'
    for r in $(seq 0 "$rounds"); do
        printf '%s\t%.3f' "$r" "$(auc "$out/runs/fedavg/global-$r.safetensors" "$out/union/test")"
        [ "$only" = all ] && printf '\t%.3f' "$(auc "$out/runs/fedprox/global-$r.safetensors" "$out/union/test")"
        printf '\n'
    done
} >"$out/rounds.tsv"
# The chart: SVG from the binary, PNG through headless Chromium when there is one.
refs=()
if [ "$only" = all ]; then
    refs=(--reference "centralised=$(awk -F'\t' '$1 == "centralised" { print $NF }' "$out/auc.tsv")")
fi
"$bin" model fl-plot --rounds "$out/rounds.tsv" --out "$out/rounds.svg" "${refs[@]}" >/dev/null
for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null; then
        "$c" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=720,400 \
            --screenshot="$out/rounds.png" "file://$out/rounds.svg" >/dev/null 2>&1 || true
        break
    fi
done
table() { # table TSV: the columns aligned
    "$venv/bin/python" - "$1" <<'EOF'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
EOF
}
say "AUC on each site's test set ($out/auc.tsv)"
table "$out/auc.tsv"
if [ -f "$out/leave-one-out.tsv" ]; then
    say "leave one site out ($out/leave-one-out.tsv)"
    table "$out/leave-one-out.tsv"
fi
say "pooled test AUC per round ($out/rounds.tsv)"
table "$out/rounds.tsv"
