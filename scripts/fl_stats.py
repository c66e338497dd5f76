"""What the federation's study scripts share (scripts/loso-study.py,
scripts/learning-curve.py, scripts/fedavg-sweep.py): the seeds' notation,
Student's t quantile, the sign-flip test and one model's AUC through the
binary."""
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


def evaluate(binary, weights, folder):
    """The weights' AUC on every patient of a folder (`model fl-evaluate`)."""
    r = subprocess.run([binary, "model", "fl-evaluate", "--in", weights, "--manifest",
                        os.path.join(folder, "manifest.csv"), "--images", images(folder),
                        "--validation-share", "1"], capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return json.loads(r.stdout)["auc"]
