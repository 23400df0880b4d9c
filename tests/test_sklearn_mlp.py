"""End to end with `model.type: sklearn_mlp`: scikit-learn's MLP through tune, train, evaluate
and register, then served and batch-scored, on digits (images) and diabetes (a regression
table). Each step runs as the flow's task runs it (DVC judges it, the adapter runs, dvc.lock
records it), so `dvc repro` afterwards must find nothing to do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_project, run_cli, update_params

pytestmark = pytest.mark.slow

MLP = {"type": "sklearn_mlp", "hidden_units": [64], "dropout": 0.0}
DIGITS: dict[str, dict[str, object]] = {
    "model": MLP,
    "tune": {"epochs": 20, "grid": {"train.learning_rate": [0.001, 0.003]}},
    "train": {"epochs": 30},
    "register": {"model_name": "digits-mlp", "thresholds": {"accuracy": 0.9}},
}
DIABETES: dict[str, dict[str, object]] = {
    "dataset": {"task": "regression"},
    "ingest": {"name": "diabetes"},
    "validate": {"labels": None, "value_range": None},
    "standardize": {"scaler": "standard"},
    "model": {**MLP, "hidden_units": [32]},
    "tune": {"epochs": 30, "metric": "val_loss", "grid": {"train.learning_rate": [0.01, 0.03]}},
    "train": {"epochs": 60, "batch_size": 16},
    "register": {"model_name": "diabetes-mlp", "metric": "r2", "thresholds": {"r2": 0.2}},
}


@pytest.fixture
def chdir_into(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield monkeypatch.chdir


def _run_every_step() -> None:
    from flows.pipeline import STEPS, run_step
    from tasks.config import load_params

    params = load_params()
    assert [run_step(step, params) for step in STEPS] == ["ran"] * len(STEPS)


def _champion_and_batch_scoring_agree_with_evaluate(name: str, rows: Any, batch: Path) -> None:
    import mlflow

    from tasks.predict import main

    evaluated = pd.read_csv("reports/predictions.csv").drop(columns="truth")
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(rows)
    assert list(served.columns) == list(evaluated.columns)
    assert (served["prediction"].to_numpy() == evaluated["prediction"].to_numpy()).all()
    np.testing.assert_allclose(
        served.drop(columns="prediction"), evaluated.drop(columns="prediction"), rtol=1e-6
    )
    main(["--input", str(batch), "--output", "scored.csv"])
    scored = pd.read_csv("scored.csv").drop(columns="row")
    np.testing.assert_allclose(scored.to_numpy(float), evaluated.to_numpy(float), rtol=1e-6)
    requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{name}@champion"))
    assert "tensorflow" not in requirements.read_text(), "a scikit-learn bundle needs no TF"


def test_digits_through_the_whole_pipeline(tmp_path: Path, chdir_into: Any) -> None:
    from mlflow import MlflowClient

    project = make_project(tmp_path / "project", DIGITS)
    chdir_into(project)
    _run_every_step()

    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert metrics["accuracy"] > 0.9
    assert json.loads(Path("reports/registry.json").read_text())["promote"]
    summary = json.loads(Path("models/model/run.json").read_text())
    assert summary["network"] == "model.skops" and summary["estimator"] == "MLPClassifier"
    assert sorted(p.name for p in Path("models/model").iterdir()) == ["model.skops", "run.json"]
    history = pd.read_csv("reports/history.csv")
    assert list(history.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]

    client = MlflowClient()
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.params["model.type"] == "sklearn_mlp"
    assert run.data.tags["train.device"] == "CPU" and "tune.best_params" in run.data.tags
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    curve = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in curve] == list(range(len(history)))
    np.testing.assert_allclose([m.value for m in curve], history["val_loss"], rtol=1e-6)
    artifacts = {
        a.path
        for folder in ("plots", "sklearn")
        for a in client.list_artifacts(run.info.run_id, folder)
    }
    assert {"plots/curves.png", "plots/confusion.png", "sklearn/model.skops"} <= artifacts

    test = np.load("data/split/test.npz")
    np.savez("new.npz", x=test["x"])
    _champion_and_batch_scoring_agree_with_evaluate("digits-mlp", test["x"], Path("new.npz"))

    assert "Running stage" not in run_cli(["dvc", "repro"], project).stdout, "the doors agree"

    update_params(project, {"train": {"augmentation": {"zoom": 0.1}}})
    result = run_cli(["python", "-m", "tasks.train"], project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: train.augmentation is not available with model.type sklearn_mlp; turn it off"
    )
    assert json.loads(Path("models/model/run.json").read_text()) == summary, "nothing written"


def test_diabetes_regression_through_the_whole_pipeline(tmp_path: Path, chdir_into: Any) -> None:
    project = make_project(tmp_path / "project", DIABETES)
    chdir_into(project)
    _run_every_step()

    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert metrics["r2"] > 0.2 and set(metrics) == {"mse", "mae", "r2"}
    history = pd.read_csv("reports/history.csv")
    assert list(history.columns) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    test = pd.read_parquet("data/split/test.parquet").drop(columns="label")
    test.to_csv("new.csv", index=False)
    _champion_and_batch_scoring_agree_with_evaluate("diabetes-mlp", test, Path("new.csv"))
