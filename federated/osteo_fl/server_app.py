"""The federation's coordinator: Flower's ServerApp, beside the SuperLink.

It makes the first global model with ``osteo-edc model fl-init``, runs
Flower's FedAvg or FedProx for ``num-server-rounds``, and writes into
``out-dir``: each round's global weights (``global-<round>.safetensors``),
the final ones (``global.safetensors``), and ``metrics.json`` with every
round's aggregated training and evaluation metrics. One progress line per
round goes to the log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import math

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx

from osteo_fl import weights

app = ServerApp()


def _say(line: str) -> None:
    print(f"[osteo-fl] {line}", flush=True)
    sys.stdout.flush()


def mean_over_sites(records: list[RecordDict], weight_key: str) -> MetricRecord:
    """Each metric's mean over the sites, weighted by their number of cases;
    a site whose value is undefined (an AUC on one class) is left out of
    that metric's mean rather than making it NaN."""
    sums: dict[str, float] = {}
    weights_of: dict[str, float] = {}
    for record in records:
        metrics = next(iter(record.metric_records.values()))
        w = float(metrics[weight_key])
        for key, value in metrics.items():
            if key == weight_key or not isinstance(value, (int, float)) or math.isnan(float(value)):
                continue
            sums[key] = sums.get(key, 0.0) + w * float(value)
            weights_of[key] = weights_of.get(key, 0.0) + w
    merged = {k: sums[k] / weights_of[k] for k in sums if weights_of[k] > 0}
    # How many sites answered, and the cases behind the means.
    merged["sites"] = len(records)
    merged["cases"] = float(
        sum(float(next(iter(r.metric_records.values()))[weight_key]) for r in records)
    )
    return MetricRecord(merged)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    out = Path(str(cfg["out-dir"]))
    out.mkdir(parents=True, exist_ok=True)
    binary = str(cfg.get("osteo-edc") or os.environ.get("OSTEO_EDC_BIN") or "osteo-edc")
    first = out / "global-0.safetensors"
    subprocess.run(
        [
            binary, "model", "fl-init", "--out", str(first),
            "--image-size", str(int(cfg["image-size"])),
            "--channels", str(cfg["channels"]),
            "--seed", str(int(cfg["seed"])),
        ],
        check=True,
        capture_output=True,
    )
    arrays, metadata = weights.read(first)
    rounds = int(cfg["num-server-rounds"])
    nodes = int(cfg["min-nodes"])
    kind = str(cfg["strategy"])
    common = dict(
        min_train_nodes=nodes,
        min_evaluate_nodes=nodes,
        min_available_nodes=nodes,
        train_metrics_aggr_fn=mean_over_sites,
        evaluate_metrics_aggr_fn=mean_over_sites,
    )
    if kind == "fedprox":
        strategy: FedAvg = FedProx(proximal_mu=float(cfg["proximal-mu"]), **common)
    elif kind == "fedavg":
        strategy = FedAvg(**common)
    else:
        raise ValueError(f"strategy must be fedavg or fedprox, not {kind!r}")
    config = ConfigRecord(
        {
            "local-epochs": int(cfg["local-epochs"]),
            "batch-size": int(cfg["batch-size"]),
            "learning-rate": float(cfg["learning-rate"]),
            "net-config": metadata[weights.NET_CONFIG_KEY],
        }
    )
    history: dict[int, dict] = {}

    def each_round(server_round: int, global_arrays: ArrayRecord) -> MetricRecord | None:
        # Called before the first round and after each: keep the weights.
        weights.check_same_layout(global_arrays, arrays, f"the global weights of round {server_round}")
        weights.write(out / f"global-{server_round}.safetensors", global_arrays, metadata)
        history.setdefault(server_round, {})
        if server_round > 0:
            _say(f"round {server_round}/{rounds} aggregated: global-{server_round}.safetensors")
        return None

    _say(f"{kind} over {rounds} rounds, at least {nodes} sites")
    result = strategy.start(
        grid=grid,
        initial_arrays=arrays,
        num_rounds=rounds,
        train_config=config,
        evaluate_config=config,
        evaluate_fn=each_round,
    )
    for r in range(1, rounds + 1):
        train = dict(result.train_metrics_clientapp.get(r, {}))
        evaluate = dict(result.evaluate_metrics_clientapp.get(r, {}))
        history[r] = {"train": train, "evaluate": evaluate}
        _say(
            f"round {r}/{rounds}: train loss {train.get('train-loss', float('nan')):.4f}, "
            f"sites' validation AUC {evaluate.get('eval-auc', float('nan')):.4f}"
        )
    weights.write(out / "global.safetensors", result.arrays, metadata)
    (out / "metrics.json").write_text(
        json.dumps({"strategy": kind, "rounds": rounds, "history": {str(k): v for k, v in sorted(history.items())}}, indent=2)
    )
    _say(f"done: {out / 'global.safetensors'}")
