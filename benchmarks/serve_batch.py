"""Serving cost: batch scoring through `models:/<name>@champion` vs bare Keras, and HTTP latency.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/serve_batch.py

Registers two bundles (preprocessor + network) in a temporary MLflow store:
- `serve-bench`: a dense network on a generated table (20 numeric columns, binary label);
- `serve-images`: a CNN on digits-shaped 8x8 images (10 classes).
Each trains for one epoch: what is timed is inference, not accuracy.

Batch: 100,000 raw table rows and 20,000 images (sent as float64 without the channel axis,
the form `load_digits` gives) through the registered model, against, in the same process
and on the same rows, bare Keras `model.predict(x, batch_size=1024)` on the preprocessed
arrays (goal: registered / bare <= 1.2), and the bare network called as the bundle calls it
(`tasks.bundle.network_outputs`), which isolates the bundle's own cost (input check,
preprocessing, output table).

HTTP: `mlflow models serve` (the command `make serve` runs) for each bundle; p50 and p95 of
the round trip over one kept-alive connection, for 1 and 256 rows (images as `inputs` nested
lists, the table as `dataframe_split`), after a warm-up.

Writes benchmarks/results/serve_batch.json, with the commit measured.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ROWS, IMAGES, COLUMNS, REPEATS, TARGET = 100_000, 20_000, 20, 5, 1.2
HTTP_SIZES, HTTP_REQUESTS, HTTP_WARMUP = (1, 256), 200, 20
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


def make_images(rows: int, seed: int = 0) -> Any:
    """Digits' images (integers 0..16) repeated to `rows`, as float32 (n, 8, 8, 1)."""
    from sklearn.datasets import load_digits

    from tasks.datafiles import Arrays

    digits = load_digits()
    index = np.random.default_rng(seed).integers(0, len(digits.target), rows)
    return Arrays(digits.images[index, ..., np.newaxis].astype("float32"), digits.target[index])


def register_bundle(folder: Path, name: str, train: Any, model: Any) -> tuple[Any, Any]:
    """Fit, log and register `<name>@champion`; return (network, preprocessor)."""
    import keras
    import mlflow

    from tasks.bundle import log_bundle, raw_features
    from tasks.config import CleanParams, DatasetParams, StandardizeParams, TrainParams
    from tasks.models import build_model, head_for
    from tasks.preprocessing import fit_preprocessor, save_preprocessor, transform_split

    rules = StandardizeParams(scaler="minmax" if model.type == "cnn" else "standard")
    value_range = (0.0, 16.0) if model.type == "cnn" else None
    preprocessor = fit_preprocessor(train, rules, CleanParams(), DatasetParams(), value_range)
    x, y = transform_split(preprocessor, train)
    keras.utils.set_random_seed(0)
    classes = len(np.unique(y))
    network = build_model(model, TrainParams(), x.shape[1:], head_for("classification", classes))
    network.fit(x, y, epochs=1, batch_size=64, verbose=0)
    (folder / name).mkdir()
    network.save(folder / name / "model.keras")
    save_preprocessor(preprocessor, folder / name / "preprocessor.skops")
    with mlflow.start_run():
        files = (folder / name / "model.keras", folder / name / "preprocessor.skops")
        info = log_bundle(network, preprocessor, *files, raw_features(train, "label")[:5])
    registered = mlflow.register_model(info.model_uri, name).version
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", registered)
    return network, preprocessor


def measure(call: Callable[[], Any], rows: int) -> dict[str, Any]:
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
        "rows_per_s": rows / median,
        "peak_extra_rss_mib": max(peaks),
    }


def batch(name: str, network: Any, preprocessor: Any, rows: Any) -> dict[str, Any]:
    """The registered model on `rows` vs bare Keras on the same rows, preprocessed."""
    import mlflow

    from tasks.bundle import network_outputs

    start = time.perf_counter()
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    load_s = time.perf_counter() - start
    x = preprocessor.transform(_canonical(rows))  # bare Keras gets its inputs ready-made
    n = len(x)
    registered = measure(lambda: served.predict(rows), n)
    bare = measure(lambda: network.predict(x, verbose=0, batch_size=1024), n)
    as_bundle_calls = measure(lambda: network_outputs(network, x), n)
    proba = served.predict(rows).filter(like="proba_").to_numpy()
    reference = network.predict(x, verbose=0, batch_size=1024)
    reference = np.hstack([1 - reference, reference]) if reference.shape[1] == 1 else reference
    ratio = registered["seconds_median"] / bare["seconds_median"]
    return {
        "rows": n,
        "input": _describe(rows),
        "load_model_s": load_s,
        "registered_model": registered,
        "bare_keras_predict_on_preprocessed": bare,
        "bare_network_as_the_bundle_calls_it": as_bundle_calls,
        "ratio_to_keras_predict": ratio,
        "meets_target": ratio <= TARGET,
        "ratio_to_network_as_called": registered["seconds_median"]
        / as_bundle_calls["seconds_median"],
        "max_abs_probability_difference": float(np.abs(proba - reference).max()),
    }


def _canonical(rows: Any) -> Any:
    """The rows in the form the preprocessor was fitted on (what bare Keras is handed)."""
    return rows[..., np.newaxis].astype("float32") if isinstance(rows, np.ndarray) else rows


def _describe(rows: Any) -> str:
    if isinstance(rows, np.ndarray):
        return f"{rows.dtype} array {rows.shape[1:]} per row"
    return f"DataFrame of {rows.shape[1]} columns"


@contextmanager
def scoring_server(name: str, store: str) -> Iterator[int]:
    """`mlflow models serve` of `<name>@champion` (tasks.serve's command) on a free port, its
    process group stopped afterwards (the CLI and the uvicorn it starts)."""
    from tasks.runtime import free_port, server_process
    from tasks.serve import serve_command

    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = serve_command(f"models:/{name}@champion", "127.0.0.1", port)
    failed = f"mlflow models serve on port {port} did not start"
    with server_process(command, f"http://127.0.0.1:{port}/ping", failed, env=env, timeout_s=180):
        yield port


def latency(port: int, payloads: dict[int, bytes]) -> dict[str, Any]:
    """p50/p95 milliseconds of POST /invocations per payload size, one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    result = {}
    for size, body in payloads.items():
        times = []
        for i in range(HTTP_WARMUP + HTTP_REQUESTS):
            start = time.perf_counter()
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {answer[:300]!r}")
            if i >= HTTP_WARMUP:
                times.append((time.perf_counter() - start) * 1000)
        p50, p95 = np.percentile(times, [50, 95])
        result[f"{size}_rows"] = {"p50_ms": p50, "p95_ms": p95, "requests": len(times)}
    connection.close()
    return result


def _payloads(table: pd.DataFrame, images: np.ndarray) -> dict[str, dict[int, bytes]]:
    """JSON bodies as clients send them: images as nested lists, the table split."""
    split = {
        size: {"columns": list(table.columns), "data": table[:size].to_numpy().tolist()}
        for size in HTTP_SIZES
    }
    return {
        "serve-images": {
            size: json.dumps({"inputs": images[:size].astype(int).tolist()}).encode()
            for size in HTTP_SIZES
        },
        "serve-bench": {
            size: json.dumps({"dataframe_split": body}).encode() for size, body in split.items()
        },
    }


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "HEAD") + ("+uncommitted" if dirty else "")


def main() -> None:
    import mlflow

    from tasks.config import ModelParams
    from tasks.runtime import configure, import_tensorflow

    configure()
    import_tensorflow()
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        dense = ModelParams(type="dense", hidden_units=[64, 32])
        cnn = ModelParams(type="cnn")
        table_model = register_bundle(Path(tmp), "serve-bench", make_table(5_000, seed=1), dense)
        image_model = register_bundle(Path(tmp), "serve-images", make_images(1_797, seed=1), cnn)
        table = make_table(ROWS, seed=2).drop(columns="label")
        images = make_images(IMAGES, seed=2).x[..., 0].astype("float64")  # load_digits' form
        results = {
            "table": batch("serve-bench", *table_model, table),
            "images": batch("serve-images", *image_model, images),
        }
        http_results = {}
        for name, payloads in _payloads(table, images).items():
            with scoring_server(name, store) as port:
                http_results[name] = latency(port, payloads)
    result = {
        "commit": _commit(),
        "cpu_count": os.cpu_count(),
        "versions": {name: version(name) for name in ("tensorflow", "keras", "mlflow", "pandas")},
        "repeats": REPEATS,
        "target_ratio": TARGET,
        "batch": results,
        "http": http_results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    _report(result)


def _report(result: dict[str, Any]) -> None:
    for kind, measured in result["batch"].items():
        registered = measured["registered_model"]
        print(
            f"serve_batch {kind}: {measured['rows']} rows ({measured['input']}) | registered "
            f"{registered['seconds_median']:.3f} s ({registered['rows_per_s']:,.0f} rows/s) | "
            f"bare Keras predict "
            f"{measured['bare_keras_predict_on_preprocessed']['seconds_median']:.3f} s | "
            f"ratio {measured['ratio_to_keras_predict']:.2f} (goal <= {TARGET}) | network as "
            f"the bundle calls it {measured['ratio_to_network_as_called']:.2f}x"
        )
    for name, sizes in result["http"].items():
        figures = ", ".join(
            f"{size.replace('_', ' ')} p50 {v['p50_ms']:.1f} ms p95 {v['p95_ms']:.1f} ms"
            for size, v in sizes.items()
        )
        print(f"serve_batch HTTP {name}: {figures}")
    print(f"commit {result['commit']} -> {RESULTS}")


if __name__ == "__main__":
    main()
