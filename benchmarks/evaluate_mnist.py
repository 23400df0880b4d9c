"""The evaluate step on MNIST's 10,000 test images, figures and MLflow logging included.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/evaluate_mnist.py

Builds a throw-away project in a temporary folder from `../shared/data/mnist/` (IDX gz files;
train 54,000 / validation 6,000 / MNIST's own 10,000 test images), trains a small CNN for one
epoch (not timed), then times `tasks.evaluate.run` exactly as the pipeline calls it: loading
the model, predicting, metrics, per-class report, the confusion matrix, the 5x5 sample and
most-confidently-wrong grids, the curves PNG, and logging metrics, figures, the Keras file and
the three splits as MLflow datasets. Writes benchmarks/results/evaluate_mnist.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST = ROOT.parent / "shared/data/mnist"
RESULTS = ROOT / "benchmarks/results/evaluate_mnist.json"


def prepare(folder: Path) -> object:
    """The files evaluate reads: the splits, preprocessor, model, run.json and history.csv."""
    import keras
    import mlflow

    from tasks.config import parse_params
    from tasks.datafiles import Split, write_data, write_json
    from tasks.ingest import load_idx
    from tasks.models import build_model, head_for
    from tasks.preprocessing import fit_preprocessor, save_preprocessor, transform_split
    from tasks.tracking import start_tracking

    paths = {
        k: str(folder / v)
        for k, v in {
            "split": "data/split",
            "preprocessor": "models/preprocessor.skops",
            "model": "models/model",
            "reports": "reports",
            "mlruns": "mlruns",
        }.items()
    }
    params = parse_params(
        {
            "paths": paths,
            "ingest": {"source": "idx", "path": str(MNIST), "name": "mnist"},
            "standardize": {"scaler": "minmax"},
            "model": {"type": "cnn", "conv_filters": [16], "hidden_units": [32]},
            "train": {"batch_size": 128},
        }
    )
    data = load_idx(MNIST)  # 60,000 train then 10,000 t10k
    splits = {
        "train": data.take(np.arange(54_000)),
        "val": data.take(np.arange(54_000, 60_000)),
        "test": data.take(np.arange(60_000, 70_000)),
    }
    for name, split in splits.items():
        write_data(split, params.paths.split, name)
    preprocessor = fit_preprocessor(
        splits["train"], params.standardize, params.clean, params.dataset
    )
    params.paths.preprocessor.parent.mkdir(parents=True, exist_ok=True)
    save_preprocessor(preprocessor, params.paths.preprocessor)
    train, val = (Split(*transform_split(preprocessor, splits[s])) for s in ("train", "val"))
    keras.utils.set_random_seed(0)
    network = build_model(
        params.model, params.train, train.x.shape[1:], head_for("classification", 10)
    )
    history = network.fit(
        train.x, train.y, validation_data=(val.x, val.y), epochs=1, batch_size=128, verbose=0
    )
    params.paths.model.mkdir(parents=True)
    network.save(params.paths.model / "model.keras")
    start_tracking(params)
    with mlflow.start_run() as run:
        write_json(params.paths.model / "run.json", {"mlflow_run_id": run.info.run_id})
    curves = pd.DataFrame(history.history).assign(epoch=[1])
    params.paths.reports.mkdir(parents=True, exist_ok=True)
    curves.to_csv(params.paths.reports / "history.csv", index=False)
    return params


def main() -> None:
    from tasks import evaluate
    from tasks.runtime import configure, import_tensorflow

    configure()
    import_tensorflow()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # evaluate reads dvc.lock (absent here) from the working directory
        start = time.perf_counter()
        params = prepare(Path(tmp))
        prepare_s = time.perf_counter() - start
        start = time.perf_counter()
        scores = evaluate.run(params)  # type: ignore[arg-type]
        evaluate_s = time.perf_counter() - start
        plots = sorted(p.name for p in (Path(tmp) / "reports/plots").iterdir())
    result = {
        "test_images": 10_000,
        "evaluate_seconds": evaluate_s,
        "images_per_s": 10_000 / evaluate_s,
        "prepare_and_train_1_epoch_seconds": prepare_s,
        "accuracy": scores["accuracy"],
        "plots": plots,
        "cpu_count": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from projects import measured_at

    result["commit"] = measured_at()
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"evaluate_mnist: evaluate step on 10,000 test images {evaluate_s:.2f} s "
        f"({10_000 / evaluate_s:,.0f} images/s; figures and MLflow logging included) | "
        f"accuracy {scores['accuracy']:.4f} after 1 epoch | plots {plots} | "
        f"(setup + training, not counted: {prepare_s:.1f} s) | {RESULTS}"
    )


if __name__ == "__main__":
    main()
