"""evaluate: score the trained bundle on the raw test split, with figures a team can read.

Reads `paths.split/{train,val,test}`, `paths.model/`, `paths.preprocessor` and
`reports/history.csv`; writes `reports/metrics.json` (DVC metrics), `reports/per_class.json`
(DVC metrics: precision, recall, F1 and support per class), `reports/predictions.csv` and
`reports/plots/` (the confusion matrix as `confusion.csv` for `dvc plots` and as a PNG, the
training curves, and for images a 5x5 grid of test images and the most confidently wrong ones).
The same metrics, prefixed `test_`, the figures, the network in its native format
(`keras/model.keras`, or `sklearn/model.skops` for the scikit-learn MLP) and the three splits
as MLflow datasets (digest = their DVC md5) go to the training's MLflow run. The test rows go
through the same preprocessor + network as served predictions, so the numbers are the served
model's.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import DatasetParams, EvaluateParams, Params, load_params
from tasks.datafiles import (
    Arrays,
    labels_of,
    read_data,
    read_json,
    replace_dir,
    replace_file,
    write_json,
)
from tasks.lineage import file_md5, lineage_tags, locked_md5
from tasks.metrics import per_class_report, score_frame
from tasks.runtime import no_options, run_entry

log = logging.getLogger(__name__)

SPLIT_CONTEXTS = {"train": "train", "val": "validation", "test": "test"}
NATIVE_FOLDERS = {".keras": "keras", ".skops": "sklearn"}  # the network file's artifact folder


def evaluate_bundle(
    network: Any, preprocessor: Any, test: Any, dataset: DatasetParams, rules: EvaluateParams
) -> tuple[dict[str, float], pd.DataFrame]:
    """Metrics and per-row predictions of the bundle on the raw test rows."""
    from tasks.bundle import predict_rows

    predictions = predict_rows(network, preprocessor, test)
    truth = labels_of(test, dataset.label)
    scores = score_frame(truth, predictions, dataset.task, rules)
    return scores, predictions.assign(truth=truth)


def build_figures(test: Any, predictions: pd.DataFrame, classes: list[Any]) -> dict[str, Any]:
    """The confusion matrix, and for images the sample grid and the most confidently wrong."""
    from tasks import figures

    truth, predicted = predictions["truth"].to_numpy(), predictions["prediction"].to_numpy()
    built = {"confusion.png": figures.plot_confusion(truth, predicted, classes)}
    if isinstance(test, Arrays) and figures.is_image_batch(test.x):
        confidence = predictions.filter(like="proba_").max(axis=1).to_numpy()
        built["samples.png"] = figures.sample_grid(test.x, truth, predicted)
        built["wrong.png"] = figures.wrong_grid(test.x, truth, predicted, confidence)
    return built


def _write_plots(folder: Path, built: dict[str, Any], predictions: pd.DataFrame) -> None:
    import matplotlib.pyplot as plt

    for name, figure in built.items():
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
    if built:  # classification: the confusion matrix as data for `dvc plots`
        predictions[["truth", "prediction"]].to_csv(folder / "confusion.csv", index=False)


def _write_curves(history: Path, folder: Path, params: Params) -> None:
    """The training curves as a PNG beside the other plots (train logs the same to MLflow)."""
    import matplotlib.pyplot as plt

    from tasks.figures import kept_by, plot_curves

    if history.is_file():
        figure = plot_curves(pd.read_csv(history), kept_by(params))
        figure.savefig(folder / "curves.png", dpi=100)
        plt.close(figure)


def log_datasets(params: Params) -> None:
    """Record the train/validation/test splits as the run's MLflow datasets, keyed by md5."""
    import mlflow
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.data.pandas_dataset import from_pandas

    folder_md5 = locked_md5(Path("dvc.lock"), params.paths.split) or "not in dvc.lock"
    for split, context in SPLIT_CONTEXTS.items():
        data = read_data(params.paths.split, split)
        path = next(params.paths.split.glob(f"{split}.*"))
        md5 = file_md5(path)
        name = f"{params.ingest.name if params.ingest.source == 'sklearn' else path.stem}-{split}"
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways": a file
            warnings.simplefilter("ignore", UserWarning)
            if isinstance(data, Arrays):
                dataset: Any = from_numpy(
                    data.x, source=str(path), targets=data.y, name=name, digest=md5
                )
            else:
                dataset = from_pandas(
                    data, source=str(path), targets=params.dataset.label, name=name, digest=md5
                )
        tags = {"dvc.path": str(path), "dvc.md5": md5, "dvc.split_md5": folder_md5}
        mlflow.log_input(dataset, context=context, tags=tags)


def data_quality_reports(reports: Path) -> list[Path]:
    """What validate and clean reported on this model's data (logged with the model's run)."""
    names = (
        "validation/raw.json",
        "validation/raw.html",
        "validation/clean.json",
        "validation/clean.html",
        "clean.json",
    )
    return [reports / name for name in names if (reports / name).is_file()]


def _log_run(
    params: Params, run_id: str, scores: dict[str, float], report: Any, plots: list[Path]
) -> None:
    import mlflow

    from tasks.bundle import network_file
    from tasks.tracking import start_tracking

    start_tracking(params)
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags(lineage_tags(params, "evaluate"))
        mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})
        # the same scores as one table (the run's Artifacts tab), beside one chart per metric
        table = pd.DataFrame(
            {"metric": list(scores), "value": [round(v, 4) for v in scores.values()]}
        )
        mlflow.log_table(table, "evaluation/test_metrics.json")
        if report:
            mlflow.log_dict(report, "evaluation/per_class.json")
        for plot in plots:  # the PNGs as written to reports/plots (not rendered again)
            mlflow.log_artifact(str(plot), "plots")
        network = network_file(params.paths.model)
        mlflow.log_artifact(str(network), NATIVE_FOLDERS[network.suffix])
        for path in data_quality_reports(params.paths.reports):  # keeps validation/ apart
            folder = path.parent.relative_to(params.paths.reports).as_posix()
            mlflow.log_artifact(str(path), f"data_quality/{folder}".removesuffix("/."))
        log_datasets(params)
        # the rows each split holds, by key: register keeps a later challenger's comparison
        # with this model to rows it neither trained nor tuned on
        mlflow.log_artifact(str(params.paths.split / "manifest.json"), "split")


def run(params: Params) -> dict[str, float]:
    """Evaluate on the test split; write the reports and plots, log them to the MLflow run."""
    from tasks.bundle import load_network, network_file
    from tasks.preprocessing import load_preprocessor

    reports = params.paths.reports
    summary = read_json(params.paths.model / "run.json")
    network = load_network(network_file(params.paths.model))
    preprocessor = load_preprocessor(params.paths.preprocessor)
    test = read_data(params.paths.split, "test")
    scores, predictions = evaluate_bundle(
        network, preprocessor, test, params.dataset, params.evaluate
    )
    report: dict[str, Any] = {}
    built: dict[str, Any] = {}
    if preprocessor.classes is not None:
        truth, predicted = predictions["truth"].to_numpy(), predictions["prediction"].to_numpy()
        report = per_class_report(truth, predicted)
        built = build_figures(test, predictions, list(preprocessor.classes))
    with replace_dir(reports / "plots") as staging:
        _write_plots(staging, built, predictions)
        _write_curves(reports / "history.csv", staging, params)
    predictions.to_csv(reports / "predictions.csv", index=False)
    write_json(reports / "per_class.json", report)
    with replace_file(reports / "metrics.json") as staging:
        write_json(staging, scores)
    plots = [reports / "plots" / name for name in built]
    _log_run(params, summary["mlflow_run_id"], scores, report, plots)
    log.info("evaluate: %s", {k: round(v, 4) for k, v in scores.items()})
    return scores


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.evaluate")
