"""End to end: the Prefect flow on the embedded digits, and on the titanic example beside the
repository (`../shared/data`), each in a throw-away git + DVC checkout."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, make_project, run_cli, update_params

pytestmark = pytest.mark.slow

TITANIC = ROOT.parent / "shared" / "data" / "titanic" / "titanic.csv"
# The example's own params, with a shorter search and training that repeats exactly.
TITANIC_FAST: dict[str, dict[str, object]] = {
    "tune": {"epochs": 5, "grid": {"train.learning_rate": [0.003]}},
    "train": {"epochs": 40, "deterministic": True},
}


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _client() -> object:
    from mlflow import MlflowClient

    return MlflowClient()


def test_flow_trains_registers_and_agrees_with_dvc(project: Path, prefect_harness: None) -> None:
    import mlflow

    from flows.pipeline import STEPS, retrain

    summary = retrain()
    assert summary["steps"] == dict.fromkeys(STEPS, "ran")

    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["accuracy"] > 0.9 and {"precision", "recall", "f1", "f1_weighted"} <= set(
        metrics
    )
    per_class = json.loads((project / "reports/per_class.json").read_text())
    assert set(per_class) == {str(c) for c in range(10)} and "f1-score" in per_class["3"]
    plots = {p.name for p in (project / "reports/plots").iterdir()}
    assert plots == {"confusion.csv", "confusion.png", "curves.png", "samples.png", "wrong.png"}

    client = _client()
    run = client.get_run(summary["mlflow_run_id"])  # type: ignore[attr-defined]
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert run.data.params["train.epochs"] == "8" and run.data.tags["train.device"] == "CPU"
    curve = client.get_metric_history(run.info.run_id, "val_loss")  # type: ignore[attr-defined]
    assert len(curve) >= 2 and [m.step for m in curve] == sorted(m.step for m in curve)
    trials = client.search_runs(  # type: ignore[attr-defined]
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(trials) == 2, "one nested run per grid point"
    _told_apart_in_the_ui(client, run, trials)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}  # type: ignore[attr-defined]
    assert {"plots/confusion.png", "plots/samples.png", "plots/wrong.png"} <= artifacts
    assert client.list_artifacts(run.info.run_id, "keras")[0].path == "keras/model.keras"  # type: ignore[attr-defined]
    quality = {a.path for a in client.list_artifacts(run.info.run_id, "data_quality")}  # type: ignore[attr-defined]
    assert "data_quality/clean.json" in quality
    checks = {a.path for a in client.list_artifacts(run.info.run_id, "data_quality/validation")}  # type: ignore[attr-defined]
    assert {"data_quality/validation/raw.html", "data_quality/validation/clean.json"} <= checks
    inputs = {
        {t.key: t.value for t in i.tags}["mlflow.data.context"]: i.dataset
        for i in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"train", "validation", "test"}
    test_file = project / "data/split/test.npz"
    assert inputs["test"].digest == hashlib.md5(test_file.read_bytes()).hexdigest()

    champion = client.get_model_version_by_alias("digits-test", "champion")  # type: ignore[attr-defined]
    assert int(champion.version) == 1 and champion.run_id == run.info.run_id

    # the registered bundle takes raw rows and predicts what evaluate predicted
    test = dict(__import__("numpy").load(project / "data/split/test.npz"))
    served = mlflow.pyfunc.load_model("models:/digits-test@champion").predict(test["x"])
    evaluated = pd.read_csv(project / "reports/predictions.csv")
    assert (served["prediction"].to_numpy() == evaluated["prediction"].to_numpy()).all()

    status = run_cli(["dvc", "status"], project).stdout
    assert "up to date" in status, status

    assert client.get_run(run.info.run_id).data.tags["retrain.decision"] == (  # type: ignore[attr-defined]
        "retrain: no champion yet (or none with a split manifest)"
    )
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "split")}  # type: ignore[attr-defined]
    assert logged == {"split/manifest.json"}, "register reads the champion's rows from it"

    state = retrain(return_state=True)
    again = state.result()
    assert set(again["steps"].values()) == {"skipped"}
    assert again["decision"]["reason"] == "skip: no new rows since the champion's data"
    assert again["registry"]["version"] == 1
    assert _task_states(state.state_details.flow_run_id) == {
        "ingest": "Skipped",
        "validate": "Skipped",
        "clean": "Skipped",
        "decide": "Completed",
        "publish": "Completed",
    }, "skipped steps show as Skipped in Prefect's UI"


def _told_apart_in_the_ui(client: Any, run: Any, trials: list[Any]) -> None:
    """What each run is, one name per metric, a described experiment, the champion shown."""
    assert run.info.run_name.startswith("train v1 · cnn lr=0.00")
    assert sorted(t.info.run_name.split(" · ")[0] for t in trials) == ["trial 1/2", "trial 2/2"]
    assert "validation_accuracy" not in run.data.metrics and "val_accuracy" in run.data.metrics
    experiment = client.get_experiment(run.info.experiment_id)
    assert "one run per training" in experiment.tags["mlflow.note.content"]
    evaluation = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/test_metrics.json" in evaluation
    model = client.get_registered_model("digits-test")
    assert list(model.aliases) == ["champion"], "the champion alone on the version that won"


def _task_states(flow_run_id: object) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    only = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        return {run.name: run.state.name for run in client.read_task_runs(flow_run_filter=only)}


def test_a_weaker_model_does_not_take_the_champion(project: Path, prefect_harness: None) -> None:
    from flows.pipeline import retrain

    first = retrain()
    assert first["registry"]["promote"], first["registry"]
    update_params(project, {"train": {"epochs": 1}})
    second = retrain()
    assert [s for s, o in second["steps"].items() if o == "ran"] == [
        "train",
        "evaluate",
        "register",
    ]
    assert second["decision"]["reason"].startswith("retrain: the pipeline changed (train: ")
    registry = second["registry"]
    assert not registry["promote"] and int(registry["champion"]) == 1
    # both trained on the same split: the gate compares them on every test row
    test_rows = json.loads((project / "data/split/manifest.json").read_text())["test"]["rows"]
    assert registry["gate"]["test"] == "mcnemar" and registry["gate"]["n_rows"] == test_rows
    assert "McNemar exact p=" in registry["gate"]["reason"]  # recorded beside the threshold
    client = _client()
    assert int(client.get_model_version_by_alias("digits-test", "champion").version) == 1  # type: ignore[attr-defined]
    challenger = client.get_model_version_by_alias("digits-test", "challenger")  # type: ignore[attr-defined]
    assert int(challenger.version) == 2 and challenger.tags["promotion.promote"] == "False"
    assert float(challenger.tags["gate.p_value"]) == pytest.approx(registry["gate"]["p_value"])
    assert client.get_registered_model("digits-test").tags["champion.history"] == "1"  # type: ignore[attr-defined]


def test_failed_validation_stops_before_training(project: Path, prefect_harness: None) -> None:
    from flows.pipeline import retrain

    source = project / "data/source/bad.csv"
    pd.DataFrame({"a": [1.0, None, 3.0] * 10, "label": [0, 1, 2] * 10}).to_csv(source, index=False)
    update_params(
        project, {"ingest": {"source": "csv", "path": str(source)}, "validate": {"labels": [0, 1]}}
    )
    state = retrain(return_state=True)
    assert state.is_failed()
    message = state.message or ""
    assert message.startswith("ingest: ") and "column 'a'" in message
    assert "column 'label'" in message and "data/raw is unchanged" in message
    assert not (project / "data/raw").exists() and (project / "data/rejected").is_dir()
    assert not (project / "data/clean").exists() and not (project / "models").exists()
    assert not (project / "mlruns").exists(), "no MLflow run, no registry change"


@pytest.mark.skipif(not TITANIC.is_file(), reason=f"no titanic data at {TITANIC}")
def test_titanic_example_trains_and_registers_a_model_that_beats_the_majority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    import mlflow

    from flows.pipeline import STEPS, retrain

    project = make_project(tmp_path / "project")
    shutil.copy(ROOT / "examples/titanic/params.yaml", project / "params.yaml")
    update_params(project, TITANIC_FAST)
    shutil.copy(TITANIC, project / "data/source/titanic.csv")
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)

    summary = retrain()
    assert summary["steps"] == dict.fromkeys(STEPS, "ran")
    test = pd.read_parquet(project / "data/split/test.parquet")
    majority = test["Survived"].value_counts(normalize=True).max()  # 0.62: always "died"
    accuracy = summary["metrics"]["accuracy"]
    assert accuracy >= 0.75 and accuracy >= majority + 0.1, (accuracy, majority)
    assert 0.75 < summary["metrics"]["roc_auc"] <= 1

    registry = summary["registry"]
    assert registry["promote"] and registry["model_name"] == "titanic-dense", registry
    champion = _client().get_model_version_by_alias("titanic-dense", "champion")  # type: ignore[attr-defined]
    assert int(champion.version) == 1 and champion.run_id == summary["mlflow_run_id"]

    # every test passenger has a prediction, and the champion, given the raw rows (text,
    # missing ages and cabins included), predicts exactly what evaluate recorded
    evaluated = pd.read_csv(project / "reports/predictions.csv")
    assert len(evaluated) == len(test) == 177 and set(evaluated["prediction"]) <= {0, 1}
    served = mlflow.pyfunc.load_model("models:/titanic-dense@champion").predict(
        test.drop(columns="Survived")
    )
    assert (served["prediction"].to_numpy() == evaluated["prediction"].to_numpy()).all()
    np.testing.assert_allclose(served["proba_1"], evaluated["proba_1"], rtol=1e-6)
    assert test["Cabin"].isna().any() and test["Age"].isna().any()
