"""One hospital's learning curve: its model's AUC on its own test patients
against the number of its cases it trained on. Where the curve is flat, more
cases of the same kind (all that pooling or a federation adds) cannot raise
it.

    target/tools/flower/bin/python scripts/learning-curve.py --root target/loso-study/default \\
        --site B --seeds 0-4 --sizes 40,80,160,320,640 \\
        --draw "--contrast 0.7 --site-noise 0.06 --malignant-share 0.25"

ROOT holds the seed-K folders of scripts/loso-study.py; each seed's test
set is ROOT/seed-K/site-X/test. For each seed the script draws the largest
size's training cases with `osteo-edc model phantoms` and the hospital's
draw options (--draw: the site's row of scripts/fl-demo.sh; seed
1000·K + 300 + the site's index, apart from the demo's training and test
seeds), trains each size's first cases from the demo's first weights
(seed 42 + K) for the demo's 10 epochs, as a site alone is trained, and
prints the mean AUC per size with its 95% t-interval over the seeds.
"""
import argparse
import atexit
import csv
import math
import os
import shlex
import shutil
import sys
import tempfile

import numpy as np

import fl_study as study

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--root", required=True)
p.add_argument("--site", default="B")
p.add_argument("--seeds", default="0-4")
p.add_argument("--sizes", default="40,80,160,320,640")
p.add_argument("--draw", default="", help="the site's draw options for `model phantoms`")
p.add_argument("--bin", default=os.environ.get("OSTEO_EDC_BIN", "target/release/osteo-edc"))
a = p.parse_args()
work = tempfile.mkdtemp(prefix="learning-curve-")
atexit.register(shutil.rmtree, work, True)
sizes = [int(x) for x in a.sizes.split(",")]
index = "ABC".index(a.site)


def run(args):
    return study.run(a.bin, args)


auc = {n: [] for n in sizes}
for k in study.seeds(a.seeds):
    test = os.path.join(a.root, f"seed-{k}", f"site-{a.site}", "test")
    if not os.path.exists(os.path.join(test, "manifest.csv")):
        sys.exit(f"no test set in {test}: run scripts/loso-study.py for seed {k} first")
    drawn = f"{work}/seed-{k}"
    run(["model", "phantoms", "--n", str(max(sizes)), "--seed", str(1000 * k + 300 + index), "--width", "64",
         "--height", "80", "--out", drawn] + shlex.split(a.draw))
    first = f"{work}/first-{k}.safetensors"
    run(["model", "fl-init", "--out", first, "--image-size", "64", "--channels", "8,16,32", "--seed", str(42 + k)])
    with open(f"{drawn}/manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    for n in sizes:
        manifest = f"{drawn}/manifest-{n}.csv"
        with open(manifest, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows[:n])
        out = f"{work}/seed-{k}-{n}.safetensors"
        run(["model", "fl-train", "--in", first, "--out", out, "--manifest", manifest, "--images", drawn,
             "--epochs", "10", "--learning-rate", "0.002", "--batch-size", "8", "--round", "1", "--seed", "42"])
        auc[n].append(study.evaluate(a.bin, out, test))
        print(f"seed {k}, {n} cases: AUC {auc[n][-1]:.3f} on site {a.site}'s test patients", flush=True)

runs = len(auc[sizes[0]])
q = study.t_quantile(0.975, runs - 1)
print(f"\nsite {a.site}, {runs} seeds, 95% t-interval (t = {q:.3f}); 80% of each size trains, 20% is the local validation")
print("| cases | AUC on its own test patients, mean (95% CI) | per seed |\n|---|---|---|")
for n in sizes:
    x = np.array(auc[n])
    half = q * x.std(ddof=1) / math.sqrt(runs)
    print(f"| {n} | {x.mean():.3f} ({x.mean() - half:.3f} to {x.mean() + half:.3f}) | {' '.join(f'{v:.3f}' for v in x)} |")
