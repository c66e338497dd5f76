"""FedAvg without Flower, for choosing the demo's rounds, epochs and learning
rate quickly: the same `osteo-edc model fl-init / fl-train / fl-evaluate`
calls as the federation, with Flower's example-weighted mean done here in
numpy. Not a federation (nothing travels; every site's folder is read on
this machine); the federation itself is scripts/fl-demo.sh.

    target/tools/flower/bin/python scripts/fedavg-sweep.py --root target/fl-demo \\
        --rounds 5 --epochs 2 --seed 42 --central [--loso]

ROOT is a folder that scripts/fl-demo.sh left (`--only data` makes one
without federating): site-X/train (manifest.csv, images/), site-X/test
(--test names another folder) and union/{train,test}. Prints the pooled test AUC per
round, FedAvg's per-site and pooled AUC, and with --central the centralised
model's (rounds × epochs epochs on the union); with --loso the
leave-one-site-out federations against the other sites trained alone.
--json FILE also writes every AUC unrounded (scripts/loso-study.py reads it).
--central-without FILE trains, for each held-out site, one model on the
other sites' union (as many epochs, the same first weights) and adds its
AUC on the held-out site to FILE (a --json of an earlier --loso run):
what pooling the other sites' cases would give without a federation.
"""
import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from fl_study import evaluate, images, union
from fl_study import run as run_binary

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--bin", default=os.environ.get("OSTEO_EDC_BIN", "target/release/osteo-edc"))
p.add_argument("--root", required=True)
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--lr", type=float, default=0.002)
p.add_argument("--decay", type=float, default=1.0, help="learning rate × decay each round")
p.add_argument("--seed", type=int, default=42, help="the first weights' seed")
p.add_argument("--sites", default="A,B,C")
p.add_argument("--central", action="store_true")
p.add_argument("--loso", action="store_true")
p.add_argument("--test", default="test", help="each site's test folder under site-X (default test)")
p.add_argument("--json", help="write every AUC, unrounded, to this file")
p.add_argument("--central-without", metavar="FILE", help="only add centralised training without each site to FILE")
a = p.parse_args()
R = a.root
work = tempfile.mkdtemp(prefix="fedavg-sweep-")
atexit.register(shutil.rmtree, work, True)


def run(args):
    return json.loads(run_binary(a.bin, args))


def auc(weights, folder):
    return evaluate(a.bin, weights, folder)


def r3(values):
    return [round(v, 3) for v in values]


def train(w_in, w_out, folder, epochs, lr, rnd):
    return run(["model", "fl-train", "--in", w_in, "--out", w_out, "--manifest", f"{folder}/manifest.csv",
                "--images", images(folder), "--epochs", str(epochs), "--learning-rate", str(lr),
                "--batch-size", "8", "--round", str(rnd), "--seed", "42"])


first = f"{work}/global-0.safetensors"
run(["model", "fl-init", "--out", first, "--image-size", "64", "--channels", "8,16,32", "--seed", str(a.seed)])
with safe_open(first, "np") as f:
    meta = f.metadata()


def fedavg(sites, name, each_round=None):
    g = first
    for r in range(1, a.rounds + 1):
        lr = a.lr * a.decay ** (r - 1)
        tensors, counts = [], []
        for s in sites:
            out = f"{work}/{name}-local-{s}.safetensors"
            counts.append(train(g, out, f"{R}/site-{s}/train", a.epochs, lr, r)["num_examples"])
            tensors.append(load_file(out))
        total = sum(counts)
        mean = {k: sum(n * t[k].astype(np.float64) for n, t in zip(counts, tensors)) / total for k in tensors[0]}
        g = f"{work}/{name}-global-{r}.safetensors"
        save_file({k: v.astype(np.float32) for k, v in mean.items()}, g, metadata=meta)
        if each_round:
            each_round(r, lr, g)
    return g


sites = a.sites.split(",")


def union_without(k):
    """The other sites' training cases in one manifest (as fl-demo.sh's union)."""
    return union({s: f"{R}/site-{s}/train" for s in sites if s != k}, f"{work}/union-without-{k}")


if a.central_without:
    with open(a.central_without) as f:
        done = json.load(f)
    for k in done["loso"]:
        c = f"{work}/central-without-{k}.safetensors"
        train(first, c, union_without(k), a.rounds * a.epochs, a.lr, 1)
        done["loso"][k]["central"] = auc(c, f"{R}/site-{k}/{a.test}")
        print(f"without {k}: centralised on the others {done['loso'][k]['central']:.3f}", flush=True)
    with open(a.central_without, "w") as f:
        json.dump(done, f, indent=1)
    sys.exit(0)
out = {"root": R, "rounds": a.rounds, "epochs": a.epochs, "lr": a.lr, "seed": a.seed}
g = fedavg(sites, "fedavg", lambda r, lr, g: print(f"round {r} lr {lr:.5f} pooled {auc(g, f'{R}/union/test'):.3f}", flush=True))
out["fedavg"] = {"sites": {s: auc(g, f"{R}/site-{s}/{a.test}") for s in sites}, "pooled": auc(g, f"{R}/union/test")}
print("fedavg per-site", r3(out["fedavg"]["sites"].values()), "pooled", round(out["fedavg"]["pooled"], 3))
if a.central:
    c = f"{work}/central.safetensors"
    train(first, c, f"{R}/union/train", a.rounds * a.epochs, a.lr, 1)
    out["central"] = {"sites": {s: auc(c, f"{R}/site-{s}/{a.test}") for s in sites}, "pooled": auc(c, f"{R}/union/test")}
    print("central per-site", r3(out["central"]["sites"].values()), "pooled", round(out["central"]["pooled"], 3))
if a.loso:
    alone = {}
    for s in sites:
        alone[s] = f"{work}/alone-{s}.safetensors"
        train(first, alone[s], f"{R}/site-{s}/train", a.rounds * a.epochs, a.lr, 1)
    out["loso"] = {}
    for k in sites:
        others = [s for s in sites if s != k]
        fed = auc(fedavg(others, f"without-{k}"), f"{R}/site-{k}/{a.test}")
        each = {s: auc(alone[s], f"{R}/site-{k}/{a.test}") for s in others}
        mean = sum(each.values()) / len(others)
        out["loso"][k] = {"federation": fed, "alone": each}
        print(f"without {k}: federation {fed:.3f}, other sites alone {mean:.3f}", "above" if fed > mean else "not above")
if a.json:
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
