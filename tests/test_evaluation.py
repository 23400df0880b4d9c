"""End to end on a table (sklearn's breast_cancer, binary, dense model) through `dvc repro`:
the reports, DVC metrics/plots/experiments, the served champion and batch prediction."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_project, run_cli

pytestmark = pytest.mark.slow

TABLE_PARAMS: dict[str, dict[str, object]] = {
    "ingest": {"source": "sklearn", "name": "breast_cancer"},
    "validate": {"labels": [0, 1], "value_range": None},
    "standardize": {"scaler": "standard"},
    "model": {"type": "dense", "hidden_units": [16], "dropout": 0.1},
    "tune": {"epochs": 2, "grid": {"train.learning_rate": [0.003]}},
    "train": {"epochs": 6},
    "register": {"model_name": "cancer-test", "thresholds": {"accuracy": 0.8}},
    "predict": {"id_column": "patient"},
}


def _reports_are_readable(project: Path) -> dict[str, float]:
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["accuracy"] > 0.8 and 0.5 < metrics["roc_auc"] <= 1
    assert {"f1_macro", "f1_weighted", "precision_weighted", "recall_macro"} <= set(metrics)
    per_class = json.loads((project / "reports/per_class.json").read_text())
    assert set(per_class) == {"0", "1"} and per_class["1"]["support"] > 0
    plots = {p.name for p in (project / "reports/plots").iterdir()}
    assert plots == {"confusion.csv", "confusion.png", "curves.png"}, "no image grids for tables"
    return metrics


def _champion_serves_what_evaluate_predicted(project: Path) -> None:
    import mlflow

    from tasks.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(project / "mlruns"))
    mlflow.set_registry_uri(tracking_uri(project / "mlruns"))
    test = pd.read_parquet(project / "data/split/test.parquet")
    served = mlflow.pyfunc.load_model("models:/cancer-test@champion").predict(
        test.drop(columns="label")
    )
    evaluated = pd.read_csv(project / "reports/predictions.csv")
    assert (served["prediction"].to_numpy() == evaluated["prediction"].to_numpy()).all()
    np.testing.assert_allclose(served["proba_1"], evaluated["proba_1"], rtol=1e-6)


def _batch_prediction(project: Path) -> None:
    scratch = project / "scratch"
    scratch.mkdir()
    test = pd.read_parquet(project / "data/split/test.parquet").drop(columns="label")
    test.assign(patient=[f"p{i}" for i in range(len(test))]).to_csv(scratch / "new.csv")
    good = ["--input", "scratch/new.csv", "--output", "scratch/out.csv"]
    run_cli(["python", "-m", "flows.predict", *good], project)
    scored = pd.read_csv(scratch / "out.csv")
    evaluated = pd.read_csv(project / "reports/predictions.csv")
    assert scored["patient"].iloc[-1] == f"p{len(test) - 1}"
    np.testing.assert_allclose(scored["proba_1"], evaluated["proba_1"], rtol=1e-6)

    test.drop(columns=test.columns[0]).assign(patient="x").to_csv(scratch / "bad.csv")
    bad = ["--input", "scratch/bad.csv", "--output", "scratch/bad-out.csv"]
    result = run_cli(["python", "-m", "tasks.predict", *bad], project, check=False)
    assert result.returncode == 1 and f"missing ['{test.columns[0]}']" in result.stderr
    assert not (scratch / "bad-out.csv").exists()


def test_a_table_model_through_dvc_experiments(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", TABLE_PARAMS)
    (project / ".gitignore").write_text("mlruns/\nscratch/\n")
    run_cli(["dvc", "repro"], project)
    baseline = _reports_are_readable(project)
    _champion_serves_what_evaluate_predicted(project)
    _batch_prediction(project)

    run_cli(["git", "add", "-A"], project)
    run_cli(["git", "commit", "-q", "-m", "baseline"], project)
    run_cli(["dvc", "exp", "run", "-S", "train.epochs=3"], project)
    show = run_cli(["dvc", "exp", "show", "--csv", "--no-pager"], project).stdout
    table = pd.read_csv(io.StringIO(show))
    assert {"roc_auc", "f1_weighted"} <= set(table.columns), "the metrics"
    assert "1.recall" not in table.columns, "per-class scores stay out of the main table"
    assert sorted(table["train.epochs"]) == [3, 3, 6], "workspace, baseline, experiment"

    diff = json.loads(run_cli(["dvc", "metrics", "diff", "--all", "--json"], project).stdout)
    assert diff["reports/metrics.json"]["accuracy"]["old"] == pytest.approx(baseline["accuracy"])
    assert "diff" in diff["reports/metrics.json"]["roc_auc"]
    plots = json.loads(run_cli(["dvc", "plots", "diff", "--json"], project).stdout)
    missing = {e["name"] for e in plots.get("errors", [])}
    assert missing <= {"reports/plots/samples.png", "reports/plots/wrong.png"}, "images only"
    assert {"confusion", "loss", "accuracy", "reports/plots/confusion.png"} <= set(plots["data"])
    assert len(plots["data"]["confusion"][0]["revisions"]) == 2, "HEAD and workspace side by side"
    run_cli(["dvc", "plots", "show", "-o", "scratch/plots"], project)
    assert "confusion.png" in (project / "scratch/plots/index.html").read_text()
