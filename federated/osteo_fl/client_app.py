"""A hospital's part of the federation: Flower's ClientApp on its SuperNode.

Each round it writes the global weights it received to a file, runs
``osteo-edc model fl-train`` (or ``fl-evaluate``) on the hospital's own
training folder, and answers with the local weights and the metric record.
That reply is all that leaves the hospital: no image, no CRF row, no case
identifier (``reply_content`` builds it, and a test checks its keys).

The SuperNode's ``--node-config`` says where the hospital's data are:

- ``manifest``: the training manifest (``osteo-edc model dataset export``);
- ``images``: the folder its paths are relative to;
- ``work-dir``: where the round's weight files go;
- ``osteo-edc`` (optional): the binary [default: ``osteo-edc`` on PATH, or
  the ``OSTEO_EDC_BIN`` environment variable];
- ``seed`` (optional): the local split's seed [default: 42].
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from osteo_fl import weights

app = ClientApp()

# The metric record a site sends with its weights: nothing else.
TRAIN_METRICS = ("num-examples", "train-loss", "local-validation-auc", "global-validation-auc", "num-validation")
EVALUATE_METRICS = ("num-examples", "eval-loss", "eval-auc")


def _number(value: object) -> float:
    """A metric from the binary's JSON: an undefined AUC (one class held out) is null there, NaN here."""
    return float("nan") if value is None else float(value)


def _binary(node: dict) -> str:
    return str(node.get("osteo-edc") or os.environ.get("OSTEO_EDC_BIN") or "osteo-edc")


def _run(args: list[str]) -> dict:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def _site(context: Context) -> tuple[dict, Path]:
    node = dict(context.node_config)
    for key in ("manifest", "images", "work-dir"):
        if key not in node:
            raise RuntimeError(f"the SuperNode's --node-config has no {key}")
    work = Path(str(node["work-dir"]))
    work.mkdir(parents=True, exist_ok=True)
    return node, work


def reply_content(arrays: ArrayRecord | None, metrics: dict, keys: tuple[str, ...]) -> RecordDict:
    """What a site sends back: the weights (for training) and the metrics named in ``keys``."""
    record = MetricRecord({k: metrics[k] for k in keys})
    content = {"metrics": record}
    if arrays is not None:
        content["arrays"] = arrays
    return RecordDict(content)


def train_round(content: RecordDict, context: Context) -> RecordDict:
    """One round of local training on the received message's content; the reply's content."""
    node, work = _site(context)
    config = content["config"]
    received = content["arrays"]
    metadata = {weights.NET_CONFIG_KEY: str(config["net-config"])}
    global_path, local_path = work / "global.safetensors", work / "local.safetensors"
    weights.write(global_path, received, metadata)
    out = _run(
        [
            _binary(node), "model", "fl-train",
            "--in", str(global_path), "--out", str(local_path),
            "--manifest", str(node["manifest"]), "--images", str(node["images"]),
            "--epochs", str(int(config["local-epochs"])),
            "--batch-size", str(int(config["batch-size"])),
            "--learning-rate", str(float(config["learning-rate"])),
            "--proximal-mu", str(float(config.get("proximal-mu", 0.0))),
            "--round", str(int(config["server-round"])),
            "--seed", str(int(node.get("seed", 42))),
        ]
    )
    local, _ = weights.read(local_path)
    weights.check_same_layout(local, received, "the local weights")
    # The site keeps its own copy of what it sent (it stays on the site).
    (work / f"sent-round-{int(config['server-round'])}.json").write_text(json.dumps(out, indent=2))
    metrics = {
        "num-examples": int(out["num_examples"]),
        "train-loss": _number(out["local_loss"]),
        "local-validation-auc": _number(out["local_validation_auc"]),
        "global-validation-auc": _number(out["global_validation_auc"]),
        "num-validation": int(out["num_validation"]),
    }
    return reply_content(local, metrics, TRAIN_METRICS)


def evaluate_round(content: RecordDict, context: Context) -> RecordDict:
    """The global model judged on this site's held-out patients; the reply's content."""
    node, work = _site(context)
    config = content["config"]
    metadata = {weights.NET_CONFIG_KEY: str(config["net-config"])}
    path = work / "evaluate.safetensors"
    weights.write(path, content["arrays"], metadata)
    out = _run(
        [
            _binary(node), "model", "fl-evaluate", "--in", str(path),
            "--manifest", str(node["manifest"]), "--images", str(node["images"]),
            "--seed", str(int(node.get("seed", 42))),
        ]
    )
    metrics = {"num-examples": int(out["num_examples"]), "eval-loss": _number(out["loss"]), "eval-auc": _number(out["auc"])}
    return reply_content(None, metrics, EVALUATE_METRICS)


@app.train()
def train(msg: Message, context: Context) -> Message:
    return Message(content=train_round(msg.content, context), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return Message(content=evaluate_round(msg.content, context), reply_to=msg)
