"""train: fit the model (`model.type`) with the best grid point on the training split.

Reads `paths.processed/{train,val}.npz`, `paths.preprocessor` and `reports/tune.json`;
writes `paths.model/` (the network in its own format: `model.keras` for Keras, `model.skops` for
scikit-learn's MLP; `run.json` naming the MLflow run and logged model) and
`reports/history.csv`. The MLflow run gets the params, per-epoch curves for training and
validation, the device used, and the model bundle (preprocessor + network) that serves raw rows.

This module is the step's adapter; the logic lives in library modules: `tasks.models` (Keras
builders), `tasks.fitting` and `tasks.callbacks` (the training loop, restartable callbacks),
`tasks.resume` (the backup a killed training resumes from), `tasks.sklearn_mlp` (the
scikit-learn baseline) and `tasks.bundle` (the served model).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.callbacks import epoch_logger
from tasks.config import Params, load_params, with_overrides
from tasks.datafiles import Split, load_split, read_data, read_json, replace_dir, write_json
from tasks.devices import describe_devices, precision_policy
from tasks.figures import kept_by, plot_curves
from tasks.fitting import train_model
from tasks.lineage import lineage_tags
from tasks.resume import prepare_backup, read_epoch_log, remove_backup
from tasks.runtime import import_tensorflow, no_options, run_entry
from tasks.sklearn_mlp import check_sklearn, train_sklearn
from tasks.tracking import log_curves, run_name, start_tracking, training_name

log = logging.getLogger(__name__)


def best_params(params: Params, tune_report: Path) -> Params:
    """params with the winning grid point of `reports/tune.json` applied."""
    return with_overrides(params, read_json(tune_report).get("best_params", {}))


def _training_run(
    params: Params, tune_run_id: str | None, tags: dict[str, str], resumed: str | None
) -> Any:
    """Train inside the tuning run that chose the params; or in a new run, linked to it, when
    that run already trained a model or lives in another store (tune.json from git or DVC).
    A training resumed from a backup goes on in the run it was killed in (`resumed`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if resumed:
        try:
            if mlflow.get_run(resumed).info.status != "FINISHED":
                return mlflow.start_run(run_id=resumed, tags=tags)
        except MlflowException:
            pass  # the store was replaced: a new run
    if tune_run_id:
        try:
            trained = "retrain.trained" in mlflow.get_run(tune_run_id).data.tags
        except MlflowException:
            trained = True
        if not trained:
            return mlflow.start_run(run_id=tune_run_id, tags=tags)
        tags = {**tags, "retrain.tune_run_id": tune_run_id}
    return mlflow.start_run(run_name=run_name(params), tags=tags)


@dataclass(frozen=True)
class Trained:
    """A fitted model and what the run records about it."""

    network: Any  # a Keras model, or a fitted scikit-learn estimator
    curves: pd.DataFrame  # one row per epoch, numbered from 1
    devices: dict[str, Any]  # what trained it: tagged `train.<key>`, written to run.json
    resumed_at: int = 0
    backup: Path | None = None  # the Keras backup, removed once the model is saved


def _fit_keras(params: Params, splits: tuple[Split, Split], backup: Path) -> Trained:
    """Train the Keras model in the active run: live per-epoch metrics, a resumable backup."""
    import_tensorflow()
    import keras
    import mlflow

    devices = describe_devices(params.train) | {"precision": precision_policy(params.train)}
    mlflow.set_tags({f"train.{k}": str(v) for k, v in devices.items()})
    epoch_log = backup.with_suffix(".csv")
    verbose = 1 if sys.stdout.isatty() else 2  # a progress bar, or one line per epoch
    # the epoch log comes before the backup, so a kill between them repeats an epoch's
    # row (deduplicated on reading) rather than losing it
    callbacks = [
        epoch_logger(),
        keras.callbacks.CSVLogger(str(epoch_log), append=True),
    ]
    network, history = train_model(params, *splits, callbacks, verbose, backup_dir=backup)
    resumed_at = history.epoch[0] if history.epoch else 0
    mlflow.set_tag("train.resumed_at_epoch", str(resumed_at))
    return Trained(network, read_epoch_log(epoch_log), devices, resumed_at, backup)


def _fit_sklearn(params: Params, splits: tuple[Split, Split]) -> Trained:
    """Train scikit-learn's MLP in the active run; its curves are logged as step metrics."""
    import mlflow
    import sklearn

    estimator = "MLPRegressor" if params.dataset.task == "regression" else "MLPClassifier"
    devices = {"device": "CPU", "estimator": estimator, "sklearn": sklearn.__version__}
    mlflow.set_tags({f"train.{k}": str(v) for k, v in devices.items()})
    network, curves = train_sklearn(params, *splits)
    for row in curves.to_dict("records"):
        log.info("train: %s", ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
    log_curves(curves)
    return Trained(network, curves, devices)


def _save_model(params: Params, trained: Trained, preprocessor: Any, run_id: str) -> dict[str, Any]:
    """Write `paths.model` (the network's own file and run.json); log the served bundle."""
    from tasks.bundle import log_bundle, raw_features, save_network

    with replace_dir(params.paths.model) as staging:
        network_path = save_network(trained.network, staging)
        example = raw_features(read_data(params.paths.split, "train"), params.dataset.label)[:5]
        info = log_bundle(
            trained.network, preprocessor, network_path, params.paths.preprocessor, example
        )
        summary = {
            "mlflow_run_id": run_id,
            "model_uri": info.model_uri,
            "network": network_path.name,
            "epochs_run": len(trained.curves),
            "resumed_at_epoch": trained.resumed_at,
            **trained.devices,
        }
        write_json(staging / "run.json", summary)
    return summary


def run(params: Params, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Train with the tuned params, log everything to MLflow, write `paths.model`."""
    import mlflow

    from tasks.preprocessing import load_preprocessor

    tune_report = params.paths.reports / "tune.json"
    tuned = best_params(params, tune_report)
    on_sklearn = tuned.model.type == "sklearn_mlp"
    if on_sklearn:
        check_sklearn(tuned)  # a setting the MLP cannot honour stops here, before any MLflow run
    splits = (
        load_split(params.paths.processed, "train"),
        load_split(params.paths.processed, "val"),
    )
    preprocessor = load_preprocessor(params.paths.preprocessor)
    start_tracking(params)
    # scikit-learn trains in seconds: no backup to resume from, nor a killed run to go on in
    backup, resumed = (None, None) if on_sklearn else prepare_backup(tuned, splits[0])
    tune_run_id = read_json(tune_report).get("mlflow_run_id")
    tags = {**lineage_tags(params, "train"), **(tags or {})}
    with _training_run(params, tune_run_id, tags, resumed) as active:
        if backup is not None:
            backup.with_suffix(".run").write_text(active.info.run_id)
        mlflow.log_params(_flat_params(tuned))
        mlflow.set_tag("mlflow.runName", training_name(tuned))
        mlflow.set_tag("retrain.trained", "true")
        if backup is None:
            trained = _fit_sklearn(tuned, splits)
        else:
            trained = _fit_keras(tuned, splits, backup)
        mlflow.log_figure(plot_curves(trained.curves, kept_by(tuned)), "plots/curves.png")
        summary = _save_model(params, trained, preprocessor, active.info.run_id)
        params.paths.reports.mkdir(parents=True, exist_ok=True)
        trained.curves.to_csv(params.paths.reports / "history.csv", index=False)
    if trained.backup is not None:
        remove_backup(trained.backup, trained.backup.with_suffix(".csv"))
    resumed_at = f" (resumed at epoch {trained.resumed_at})" if trained.resumed_at else ""
    log.info(
        "train: %d epochs on %s%s, run %s",
        len(trained.curves),
        trained.devices["device"],
        resumed_at,
        summary["mlflow_run_id"],
    )
    return summary


def _flat_params(params: Params) -> dict[str, Any]:
    sections = ("dataset", "ingest", "clean", "split", "standardize", "model", "train")
    flat: dict[str, Any] = {}
    for section in sections:
        for key, value in getattr(params, section).model_dump(mode="json").items():
            flat[f"{section}.{key}"] = value
    return flat


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.train")
