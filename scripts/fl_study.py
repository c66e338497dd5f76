"""What the federation's scripts share (scripts/fl-demo.sh,
scripts/fedavg-sweep.py, scripts/loso-study.py, scripts/learning-curve.py):
the seeds' notation, Student's t quantile, the sign-flip test, calling the
binary, one model's AUC, and the union of sites' manifests.

    python scripts/fl_study.py union DEST NAME=FOLDER [NAME=FOLDER ...]

writes the union of the named sites' folders to DEST/manifest.csv (how
scripts/fl-demo.sh calls it)."""
import csv
import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np


def seeds(text):
    """0-9 or 0,3,5."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(k) for k in text.split(",")]


def t_quantile(p, df):
    """Student's t quantile, by integrating the density (numpy's trapezoid on
    a fine grid) and interpolating; 2.262 for p = 0.975 and 9 degrees."""
    grid = np.linspace(0.0, 60.0, 600_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_c - (df + 1) / 2 * np.log1p(grid**2 / df))
    cdf = 0.5 + np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    return float(np.interp(p, cdf, grid))


def sign_flip_p(d):
    """Exact one-sided p-value of mean(d) > 0 under sign symmetry."""
    d = np.asarray(d)
    observed = d.mean()
    flips = np.array(list(itertools.product([1.0, -1.0], repeat=len(d))))
    return float(np.mean((flips * d).mean(axis=1) >= observed - 1e-15))


def images(folder):
    """A folder's views: under images/ for an exported training set."""
    sub = os.path.join(folder, "images")
    return sub if os.path.isdir(sub) else folder


def run(binary, args):
    """The binary's standard output; its error message ends the script."""
    r = subprocess.run([binary] + args, capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return r.stdout


def evaluate(binary, weights, folder):
    """The weights' AUC on every patient of a folder (`model fl-evaluate`)."""
    return json.loads(run(binary, ["model", "fl-evaluate", "--in", weights, "--manifest",
                                   os.path.join(folder, "manifest.csv"), "--images", images(folder),
                                   "--validation-share", "1"]))["auc"]


VIEWS = ("frontal", "lateral", "oblique", "mask_frontal", "mask_lateral")


def union(sites, dest):
    """The cases of several sites in one manifest, DEST/manifest.csv: sites
    maps a site's name to its folder (a test set, or an exported training
    set with its views under images/). Case and patient ids take the site's
    name as a prefix; the views' paths become relative to dest."""
    os.makedirs(dest, exist_ok=True)
    rows, fields = [], None
    for name, folder in sites.items():
        with open(os.path.join(folder, "manifest.csv"), newline="") as f:
            r = csv.DictReader(f)
            fields = r.fieldnames
            for row in r:
                row["case_id"], row["patient_id"] = f"{name}-{row['case_id']}", f"{name}-{row['patient_id']}"
                for col in VIEWS:
                    if row.get(col):
                        row[col] = os.path.relpath(os.path.join(images(folder), row[col]), dest)
                rows.append(row)
    with open(os.path.join(dest, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return dest


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "union" or not all("=" in x for x in sys.argv[3:]):
        sys.exit("usage: fl_study.py union DEST NAME=FOLDER [NAME=FOLDER ...]")
    union(dict(x.split("=", 1) for x in sys.argv[3:]), sys.argv[2])
