"""Leave one site out over many seeds: is the federation trained without a
hospital above the mean of the other hospitals trained alone, on that
hospital's patients, as an expectation over data draws and training runs?

One run of scripts/fl-demo.sh answers this with DeLong intervals, which
hold the test patients' sampling only; the hospitals' training draws and
the order of training move a single run's difference by more than that.
This study repeats the demo's computation over seeds K and summarises
the K runs per held-out hospital.

    target/tools/flower/bin/python scripts/loso-study.py --out target/loso-study/default \\
        --seeds 0-9 [--spectrum X] [--cases 160]

For each seed K it makes the hospitals' EDCs and test sets with
`scripts/fl-demo.sh --only data --seed K` (skipped when DIR/seed-K has
them) and runs `scripts/fedavg-sweep.py --seed 42+K --loso --central`
(skipped when DIR/seed-K/sweep.json exists), the same federations as the
demo's with Flower's weighted mean done in numpy. It then prints, per
held-out hospital, the mean difference over the seeds with its 95%
t-interval (seeds as the sampling unit), how many seeds were above, and an
exact one-sided sign-flip p-value; and FedAvg minus centralised training,
pooled. Where `fedavg-sweep.py --central-without` added them, it also
summarises centralised training on the other sites' union against the
sites alone. The table goes to DIR/summary.md as well.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
from fl_study import seeds, sign_flip_p, t_quantile

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--out", required=True, help="folder of the study (one seed-K folder per seed)")
p.add_argument("--seeds", default="0-9", help="K values: 0-9, or 0,3,5")
p.add_argument("--spectrum", default="0", help="passed to fl-demo.sh --spectrum")
p.add_argument("--cases", default="160", help="training cases per hospital")
p.add_argument("--test-cases", default="1000", help="test patients per hospital")
p.add_argument("--bin", default=os.environ.get("OSTEO_EDC_BIN", "target/release/osteo-edc"))
p.add_argument("--summary-only", action="store_true", help="summarise the seeds already run")
a = p.parse_args()


here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ, OSTEO_EDC_BIN=a.bin)
ks = seeds(a.seeds)
for k in ks:
    root = os.path.join(a.out, f"seed-{k}")
    result = os.path.join(root, "sweep.json")
    if a.summary_only or os.path.exists(result):
        continue
    if not os.path.exists(os.path.join(root, "union", "test", "manifest.csv")):
        subprocess.run([os.path.join(here, "fl-demo.sh"), "--only", "data", "--cases", a.cases,
                        "--test-cases", a.test_cases, "--spectrum", a.spectrum, "--seed", str(k),
                        "--out", root], env=env, check=True)
    subprocess.run([sys.executable, os.path.join(here, "fedavg-sweep.py"), "--bin", a.bin, "--root", root,
                    "--rounds", "5", "--epochs", "2", "--seed", str(42 + k), "--loso", "--central",
                    "--json", result], env=env, check=True)

runs = {}
for k in ks:
    path = os.path.join(a.out, f"seed-{k}", "sweep.json")
    if os.path.exists(path):
        with open(path) as f:
            runs[k] = json.load(f)
if len(runs) < 2:
    sys.exit(f"{len(runs)} seed(s) finished in {a.out}: a summary needs two or more")


n = len(runs)
q = t_quantile(0.975, n - 1)
sites = list(next(iter(runs.values()))["loso"].keys())
lines = [f"{n} seeds ({', '.join(str(k) for k in runs)}); --spectrum {a.spectrum}, {a.cases} cases a hospital; "
         f"95% t-interval with t = {q:.3f} ({n - 1} degrees of freedom)", "",
         "| held out | federation without it (mean) | other sites alone (mean) | difference, mean (95% CI) "
         "| seeds above | sign-flip p (one-sided) |",
         "|---|---|---|---|---|---|"]


def against_alone(s, key):
    """The model `key` (federation or central) without site s, the mean of
    the other sites alone, and the per-seed differences, on s's patients."""
    model = np.array([r["loso"][s][key] for r in runs.values()])
    alone = np.array([np.mean(list(r["loso"][s]["alone"].values())) for r in runs.values()])
    d = model - alone
    half = q * d.std(ddof=1) / math.sqrt(n)
    ci = f"{d.mean():+.4f} ({d.mean() - half:+.4f} to {d.mean() + half:+.4f})"
    return model, alone, d, f"{ci} | {int((d > 0).sum())} of {n}"


for s in sites:
    fed, alone, d, summary = against_alone(s, "federation")
    lines.append(f"| {s} | {fed.mean():.3f} | {alone.mean():.3f} | {summary} | {sign_flip_p(d):.3f} |")
    lines.append(f"|  | per seed: {' '.join(f'{x:+.3f}' for x in d)} | | | | |")
if all("central" in r["loso"][s] for r in runs.values() for s in sites):
    lines += ["", "Centralised training on the other sites' union (no federation), minus the same sites alone:", "",
              "| held out | centralised without it (mean) | difference, mean (95% CI) | seeds above |", "|---|---|---|---|"]
    for s in sites:
        cen, _, _, summary = against_alone(s, "central")
        lines.append(f"| {s} | {cen.mean():.3f} | {summary} |")
if all("central" in r for r in runs.values()):
    gap = np.array([r["fedavg"]["pooled"] - r["central"]["pooled"] for r in runs.values()])
    lines += ["", f"FedAvg − centralised, pooled: mean {gap.mean():+.4f}, from {gap.min():+.3f} to {gap.max():+.3f}; "
              f"within 0.03 in {int((gap > -0.03).sum())} of {n} seeds",
              f"per seed: {' '.join(f'{x:+.3f}' for x in gap)}"]
text = "\n".join(lines)
print(text)
with open(os.path.join(a.out, "summary.md"), "w") as f:
    f.write(text + "\n")
