"""Digits with the default params.yaml (CNN): test accuracy, target >= 0.98.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/train_digits.py

Runs the pipeline's own ingest -> clean -> split (70/10/20) -> standardize adapters in a
temporary folder, then `train_model` with params.yaml's model and train sections (no tuning),
and scores the test split. Writes benchmarks/results/train_digits.json.
"""

from __future__ import annotations

import os
import tempfile

from train_common import ROOT, train_and_score, write_result

TARGET = 0.98


def main() -> None:
    from tasks.runtime import configure, import_tensorflow

    configure()
    import_tensorflow()
    from tasks import clean, ingest, split, standardize, validate
    from tasks.config import load_params
    from tasks.datafiles import load_split

    params = load_params(ROOT / "params.yaml")
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # params.yaml's paths are relative to the project
        for step in (ingest, validate, clean, split, standardize):
            step.run(params)  # type: ignore[attr-defined]
        splits = {
            name: load_split(params.paths.processed, name) for name in ("train", "val", "test")
        }
        _, history, seconds, accuracy = train_and_score(params, splits)
    write_result(
        "train_digits",
        {
            "dataset": "sklearn digits, pipeline split 70/10/20",
            "model": params.model.model_dump(),
            "train": params.train.model_dump(mode="json"),
            "epochs_run": len(history.epoch),
            "train_seconds": round(seconds, 1),
            "test_accuracy": round(accuracy, 4),
            "target": TARGET,
            "met": accuracy >= TARGET,
        },
    )


if __name__ == "__main__":
    main()
