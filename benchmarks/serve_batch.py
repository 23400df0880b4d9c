"""Serving cost: 100,000 raw table rows through `models:/<name>@champion` vs the bare network.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/serve_batch.py

Trains a small dense model on a generated table (20 numeric columns, binary label), registers
the pipeline's bundle (preprocessor + network) in a temporary MLflow store, then times
`predict` on 100,000 raw rows through the registered model and, in the same process, the bare
Keras model on the already-preprocessed arrays. Target: pyfunc time / bare time <= 1.5.
Writes benchmarks/results/serve_batch.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ROWS, COLUMNS, REPEATS, TARGET = 100_000, 20, 5, 1.5
RESULTS = ROOT / "benchmarks/results/serve_batch.json"


class PeakRss:
    """Peak resident memory of this process while the block runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.peak = self.start = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, COLUMNS)) * rng.uniform(1, 50, COLUMNS) + rng.uniform(-5, 5, COLUMNS)
    weights = rng.normal(size=COLUMNS)
    label = ((x / x.std(axis=0)) @ weights > 0).astype(int)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(COLUMNS)]).assign(label=label)


def register_bundle(folder: Path, train: pd.DataFrame) -> tuple[Any, Any]:
    """Fit, log and register `serve-bench@champion`; return (network, preprocessor)."""
    import pickle

    import keras
    import mlflow

    from tasks.bundle import log_bundle
    from tasks.config import CleanParams, DatasetParams, ModelParams, StandardizeParams, TrainParams
    from tasks.models import build_model, head_for
    from tasks.preprocessing import fit_preprocessor, transform_split

    preprocessor = fit_preprocessor(train, StandardizeParams(), CleanParams(), DatasetParams())
    x, y = transform_split(preprocessor, train)
    keras.utils.set_random_seed(0)
    network = build_model(
        ModelParams(type="dense", hidden_units=[64, 32]),
        TrainParams(),
        x.shape[1:],
        head_for("classification", 2),
    )
    network.fit(x, y, epochs=1, batch_size=64, verbose=0)
    network.save(folder / "model.keras")
    (folder / "preprocessor.pkl").write_bytes(pickle.dumps(preprocessor))
    mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{folder}/mlflow.db")
    with mlflow.start_run():
        info = log_bundle(
            network,
            preprocessor,
            folder / "model.keras",
            folder / "preprocessor.pkl",
            train.drop(columns="label")[:5],
        )
    version = mlflow.register_model(info.model_uri, "serve-bench").version
    mlflow.MlflowClient().set_registered_model_alias("serve-bench", "champion", version)
    return network, preprocessor


def measure(call: Callable[[], Any]) -> dict[str, float]:
    """Median seconds over REPEATS calls (after one warm-up), and the peak extra memory."""
    call()
    seconds, peaks = [], []
    for _ in range(REPEATS):
        with PeakRss() as memory:
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
        peaks.append(memory.extra_mib)
    median = statistics.median(seconds)
    return {
        "seconds_median": median,
        "seconds_all": seconds,
        "rows_per_s": ROWS / median,
        "peak_extra_rss_mib": max(peaks),
    }


def main() -> None:
    from tasks.runtime import configure, import_tensorflow

    configure()
    import_tensorflow()
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        network, preprocessor = register_bundle(folder, make_table(5_000, seed=1))
        rows = make_table(ROWS, seed=2).drop(columns="label")
        start = time.perf_counter()
        served = mlflow.pyfunc.load_model("models:/serve-bench@champion")
        load_s = time.perf_counter() - start
        x = preprocessor.transform(rows)  # the bare model gets its inputs ready-made
        pyfunc = measure(lambda: served.predict(rows))
        bare = measure(lambda: network.predict(x, verbose=0, batch_size=1024))
        same = np.allclose(
            served.predict(rows)["proba_1"], network.predict(x, verbose=0, batch_size=1024)[:, 0]
        )
    ratio = pyfunc["seconds_median"] / bare["seconds_median"]
    result = {
        "rows": ROWS,
        "columns": COLUMNS,
        "repeats": REPEATS,
        "cpu_count": os.cpu_count(),
        "load_model_s": load_s,
        "pyfunc_champion": pyfunc,
        "bare_keras_on_preprocessed": bare,
        "ratio": ratio,
        "target_ratio": TARGET,
        "meets_target": ratio <= TARGET,
        "same_probabilities": bool(same),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"serve_batch: {ROWS} rows | champion pyfunc {pyfunc['seconds_median']:.3f} s "
        f"({pyfunc['rows_per_s']:,.0f} rows/s, +{pyfunc['peak_extra_rss_mib']:.0f} MiB peak) | "
        f"bare Keras {bare['seconds_median']:.3f} s ({bare['rows_per_s']:,.0f} rows/s, "
        f"+{bare['peak_extra_rss_mib']:.0f} MiB) | ratio {ratio:.2f} (target <= {TARGET}: "
        f"{'met' if ratio <= TARGET else 'MISSED'}) | load {load_s:.2f} s | {RESULTS}"
    )


if __name__ == "__main__":
    main()
