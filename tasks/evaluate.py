"""evaluate: score the trained bundle on the raw test split.

Reads `paths.split/test`, `paths.model/` and `paths.preprocessor`; writes
`reports/metrics.json` (DVC metrics), `reports/predictions.csv` and logs the same metrics,
prefixed `test_`, to the training's MLflow run. The test rows go through the same
preprocessor + network as served predictions, so the numbers are the served model's.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import DatasetParams, EvaluateParams, Params, load_params
from tasks.datafiles import read_data, read_json, replace_file, write_json
from tasks.runtime import import_tensorflow, run_entry
from tasks.standardize import labels

log = logging.getLogger(__name__)


def score_predictions(
    truth: np.ndarray, predicted: np.ndarray, task: str, rules: EvaluateParams
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (classification) or MSE, MAE, R² (regression)."""
    from sklearn import metrics

    if task == "regression":
        return {
            "mse": float(metrics.mean_squared_error(truth, predicted)),
            "mae": float(metrics.mean_absolute_error(truth, predicted)),
            "r2": float(metrics.r2_score(truth, predicted)),
        }
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        truth, predicted, average=rules.average, zero_division=0
    )
    return {
        "accuracy": float(metrics.accuracy_score(truth, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def evaluate_bundle(
    network: Any, preprocessor: Any, test: Any, dataset: DatasetParams, rules: EvaluateParams
) -> tuple[dict[str, float], pd.DataFrame]:
    """Metrics and per-row predictions of the bundle on the raw test rows."""
    from tasks.bundle import predict_rows

    predictions = predict_rows(network, preprocessor, test)
    truth = labels(test, dataset.label)
    scores = score_predictions(truth, predictions["prediction"].to_numpy(), dataset.task, rules)
    return scores, predictions.assign(truth=truth)


def run(params: Params) -> dict[str, float]:
    """Evaluate on the test split; write reports/metrics.json and log to the MLflow run."""
    import_tensorflow()
    import keras
    import mlflow

    from tasks.standardize import load_preprocessor
    from tasks.tracking import start_tracking

    summary = read_json(params.paths.model / "run.json")
    network = keras.saving.load_model(params.paths.model / "model.keras")
    preprocessor = load_preprocessor(params.paths.preprocessor)
    test = read_data(params.paths.split, "test")
    scores, predictions = evaluate_bundle(
        network, preprocessor, test, params.dataset, params.evaluate
    )
    predictions.to_csv(params.paths.reports / "predictions.csv", index=False)
    with replace_file(params.paths.reports / "metrics.json") as staging:
        write_json(staging, scores)
    start_tracking(params)
    with mlflow.start_run(run_id=summary["mlflow_run_id"]):
        mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})
    log.info("evaluate: %s", {k: round(v, 4) for k, v in scores.items()})
    return scores


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.evaluate")
