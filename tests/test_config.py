from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks.config import ParamsError, load_params, parse_params, with_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_committed_params_load() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.split.train == 0.7 and params.split.val == 0.1 and params.split.test == 0.2
    assert params.register_.model_name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trian": {"epochs": 3}}, "unknown key 'trian'"),
        ({"train": {"epochs": 3, "epoch": 4}}, "unknown key 'train.epoch'"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"train": {"optimizer": "adamw"}}, "train.optimizer"),
        ({"split": {"train": 0.7, "val": 0.2, "test": 0.2}}, "must sum to 1, got 1.1"),
        ({"split": {"train": 0, "val": 0.5, "test": 0.5}}, "split.train"),
        ({"tune": {"grid": {"train.nope": [1]}}}, "tune.grid axis 'train.nope'"),
        ({"ingest": {"source": "csv"}}, "ingest.path is required"),
        ({"standardize": {"scaler": "robust"}}, "standardize.scaler"),
        ({"dvc": {"remote": "s3://bucket"}}, "dvc.remote"),  # a remote's name, not its URL
    ],
)
def test_bad_params_name_the_key_in_one_line(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ParamsError) as error:
        parse_params(raw, Path("params.yaml"))
    text = str(error.value)
    assert message in text
    assert text.startswith("params.yaml: ")
    assert "\n" not in text


def test_params_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "missing.yaml")
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)
    broken.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(ParamsError, match="mapping"):
        load_params(broken)


def test_params_are_frozen_and_overrides_validate() -> None:
    params = parse_params({})
    with pytest.raises(ValueError, match="frozen"):
        params.train.epochs = 3  # type: ignore[misc]
    changed = with_overrides(params, {"train.learning_rate": 0.01, "model.dropout": 0.5})
    assert (changed.train.learning_rate, changed.model.dropout) == (0.01, 0.5)
    assert params.train.learning_rate != 0.01
    with pytest.raises(ParamsError, match="model.dropout"):
        with_overrides(params, {"model.dropout": 2})


# --- task-aware defaults: what fits dataset.task (issue 16, 4) ---------------------------------


def test_regression_gets_its_own_metrics_where_the_user_set_none() -> None:
    params = parse_params({"dataset": {"task": "regression"}})
    assert params.tune.metric == "val_loss"
    assert (params.register_.metric, params.register_.thresholds) == ("r2", {})
    kept = parse_params(
        {
            "dataset": {"task": "regression"},
            "tune": {"metric": "val_mae"},
            "register": {"thresholds": {"mae": 3.0}},
        }
    )
    assert (kept.tune.metric, kept.register_.metric, kept.register_.thresholds) == (
        "val_mae",
        "r2",
        {"mae": 3.0},
    )
    assert with_overrides(params, {"train.epochs": 2}).tune.metric == "val_loss"
    assert parse_params({}).tune.metric == "val_accuracy", "classification keeps its defaults"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tune": {"metric": "val_accuracy"}}, "tune.metric: 'val_accuracy' does not fit"),
        ({"register": {"metric": "accuracy"}}, "register.metric: 'accuracy' does not fit"),
        ({"register": {"thresholds": {"accuracy": 0.9}}}, "register.thresholds: 'accuracy'"),
    ],
)
def test_a_metric_that_does_not_fit_regression_is_refused_in_one_line(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(ParamsError) as error:
        parse_params({"dataset": {"task": "regression"}, **raw}, Path("params.yaml"))
    text = str(error.value)
    assert text.startswith(f"params.yaml: {message}") and "dataset.task regression" in text
    assert "\n" not in text and "use one of" in text


@pytest.mark.parametrize(
    "raw",
    [
        {"tune": {"metric": "val_mae"}},
        {"register": {"metric": "r2"}},
        {"register": {"thresholds": {"mse": 1}}},
    ],
)
def test_a_regression_metric_is_refused_for_classification(raw: dict[str, object]) -> None:
    with pytest.raises(ParamsError, match="does not fit dataset.task classification"):
        parse_params(raw)


def test_the_committed_params_switched_to_regression_name_the_first_misfit(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["dataset"]["task"] = "regression"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"tune.metric: 'val_accuracy' does not fit"):
        load_params(tmp_path / "params.yaml")


def test_the_task_tables_match_what_the_models_and_evaluate_produce() -> None:
    import numpy as np

    from tasks.config import EvaluateParams
    from tasks.gate import METRICS
    from tasks.metrics import score_predictions
    from tasks.models import head_for
    from tasks.objectives import CURVES, GATE_METRICS, SCORES
    from tasks.sklearn_mlp import curve_names

    for task, n_classes in (("classification", 3), ("regression", 0)):
        metrics = head_for(task, n_classes).metrics
        keras = {"loss", "val_loss", *metrics, *(f"val_{m}" for m in metrics)}
        assert set(CURVES[task]) == keras == set(curve_names(task))
        assert set(GATE_METRICS[task]) <= {*METRICS, "precision_macro", "recall_macro", "f1_macro"}
    truth = np.array([0, 1, 1, 0])
    scores = score_predictions(truth, truth, "classification", EvaluateParams(), truth * 0.9)
    assert set(SCORES["classification"]) == set(scores)
    scores = score_predictions(truth * 1.0, truth * 1.0, "regression", EvaluateParams())
    assert set(SCORES["regression"]) == set(scores)


# --- ingest.csv (issue 16, 1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ({"header": "none"}, "ingest.csv.header 'none' needs ingest.csv.columns"),
        ({"delimiter": ";;"}, "ingest.csv.delimiter: must be 'auto' or one character"),
        ({"encoding": "utf9"}, "ingest.csv.encoding: is not an encoding Python knows"),
        ({"columns": ["a", "a"]}, "ingest.csv.columns repeats a name"),
        ({"sep": ";"}, "unknown key 'ingest.csv.sep'"),
    ],
)
def test_csv_options_are_checked_on_load(csv: dict[str, object], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params({"ingest": {"source": "csv", "path": "a.csv", "csv": csv}})


def test_a_headerless_csv_can_be_named() -> None:
    ingest = parse_params(
        {
            "ingest": {
                "source": "csv",
                "path": "a.csv",
                "csv": {"header": "none", "columns": ["x", "label"]},
            }
        }
    ).ingest
    assert ingest.csv.header == "none" and ingest.csv.columns == ["x", "label"]
    assert "?" in ingest.csv.na_values and "" in ingest.csv.na_values
