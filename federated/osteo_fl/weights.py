"""Weights between the ``osteo-edc`` binary and Flower.

The binary writes and reads safetensors: one float32 tensor per parameter
and batch-norm statistic, named by its path in the network, with the
network's configuration (JSON) under the metadata key ``osteo.net_config``.
Flower carries them as an ``ArrayRecord`` keyed by the same names. Every
crossing is checked: the same names, shapes and dtype as the global model,
or a ``LayoutError`` that lists what differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord
from safetensors import safe_open
from safetensors.numpy import save_file

NET_CONFIG_KEY = "osteo.net_config"


class LayoutError(ValueError):
    """Weights that do not fit the federation's network."""


def read(path: Path) -> tuple[ArrayRecord, dict[str, str]]:
    """The tensors of a safetensors file as an ArrayRecord, and its metadata."""
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata() or {})
        tensors = {name: f.get_tensor(name) for name in sorted(f.keys())}
    if NET_CONFIG_KEY not in metadata:
        raise LayoutError(f"{path}: no network configuration ({NET_CONFIG_KEY}) in the metadata")
    wrong = sorted(n for n, t in tensors.items() if t.dtype != np.float32)
    if wrong:
        raise LayoutError(f"{path}: tensors that are not float32: {wrong}")
    return ArrayRecord({n: Array(t) for n, t in tensors.items()}), metadata


def write(path: Path, arrays: ArrayRecord, metadata: dict[str, str]) -> None:
    """Writes an ArrayRecord as safetensors with the given metadata."""
    if NET_CONFIG_KEY not in metadata:
        raise LayoutError(f"no network configuration ({NET_CONFIG_KEY}) to write with the weights")
    tensors = {n: np.ascontiguousarray(a.numpy(), dtype=np.float32) for n, a in arrays.items()}
    save_file(tensors, str(path), metadata=metadata)


def layout(arrays: ArrayRecord) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Name -> (dtype, shape) of each array."""
    return {n: (str(a.dtype), tuple(a.shape)) for n, a in arrays.items()}


def check_same_layout(got: ArrayRecord, expected: ArrayRecord, what: str) -> None:
    """Refuses ``got`` unless it has exactly ``expected``'s names, shapes and dtypes."""
    g, e = layout(got), layout(expected)
    missing = sorted(set(e) - set(g))
    unexpected = sorted(set(g) - set(e))
    differ = sorted(n for n in set(g) & set(e) if g[n] != e[n])
    if missing or unexpected or differ:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"unexpected {unexpected}" if unexpected else "",
                "different " + ", ".join(f"{n}: {g[n]} instead of {e[n]}" for n in differ) if differ else "",
            )
            if part
        )
        raise LayoutError(f"{what} do not match the global model's layout: {detail}")
