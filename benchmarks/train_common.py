"""Shared by the training benchmarks: the repository on sys.path, MNIST, result files."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared/data/mnist"  # read-only, never copied into the repository
RESULTS = ROOT / "benchmarks/results"
sys.path.insert(0, str(ROOT))  # these are scripts run as `python benchmarks/<name>.py`


def mnist_splits(val: int = 5000) -> dict[str, Any]:
    """MNIST's own split: the last `val` of its 60k training images validate, t10k tests."""
    from tasks.datafiles import Arrays
    from tasks.ingest import load_idx

    images = load_idx(MNIST)  # the 60k training images first, then the 10k test images
    train = Arrays(images.x[: 60000 - val], images.y[: 60000 - val])
    valid = Arrays(images.x[60000 - val : 60000], images.y[60000 - val : 60000])
    return {"train": train, "val": valid, "test": Arrays(images.x[60000:], images.y[60000:])}


def scale_minmax(splits: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's own image scaling (per-pixel min-max fitted on the training split)."""
    from sklearn.preprocessing import MinMaxScaler

    from tasks.datafiles import Split
    from tasks.preprocessing import FlatScaler

    scaler = FlatScaler(MinMaxScaler()).fit(splits["train"].x)
    return {name: Split(scaler.transform(d.x), d.y.astype("int64")) for name, d in splits.items()}


def test_accuracy(network: Any, test: Any) -> float:
    probabilities = network.predict(test.x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=1) == test.y))


def train_and_score(params: Any, splits: dict[str, Any]) -> tuple[Any, Any, float, float]:
    """Train with the pipeline's own train_model; return (network, history, seconds, accuracy)."""
    import time

    from tasks.fitting import train_model

    start = time.perf_counter()
    network, history = train_model(params, splits["train"], splits["val"], verbose=2)
    seconds = time.perf_counter() - start
    return network, history, seconds, test_accuracy(network, splits["test"])


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write benchmarks/results/<name>.json with the machine it ran on, and print it."""
    import os

    import tensorflow as tf

    payload = {
        **payload,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "gpus": len(tf.config.list_physical_devices("GPU")),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from projects import measured_at

    payload["commit"] = measured_at()
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return path
