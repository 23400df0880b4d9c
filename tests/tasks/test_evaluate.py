from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks import figures
from tasks.config import EvaluateParams
from tasks.datafiles import Arrays
from tasks.evaluate import build_figures
from tasks.lineage import file_md5, locked_md5
from tasks.metrics import per_class_report, positive_proba, score_frame, score_predictions


def test_classification_scores() -> None:
    truth = np.array([0, 0, 1, 1])
    scores = score_predictions(truth, np.array([0, 1, 1, 1]), "classification", EvaluateParams())
    assert scores["accuracy"] == 0.75
    assert scores["recall"] == pytest.approx((0.5 + 1) / 2)
    assert scores["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["recall_macro"] == scores["recall"]
    assert "roc_auc" not in scores, "no probabilities, no ROC-AUC"


def test_macro_and_weighted_averages_differ_on_imbalanced_classes() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 0, 0, 0, 1])
    scores = score_predictions(truth, predicted, "classification", EvaluateParams())
    assert scores["recall_macro"] == pytest.approx((1 + 0.5) / 2)
    assert scores["recall_weighted"] == pytest.approx((4 * 1 + 2 * 0.5) / 6)
    assert {"f1_macro", "f1_weighted", "precision_weighted"} <= set(scores)


def test_roc_auc_for_two_classes_uses_the_positive_probability() -> None:
    predictions = pd.DataFrame(
        {"prediction": ["a", "a", "b", "b"], "proba_a": [0.9, 0.4, 0.35, 0.2]}
    ).assign(proba_b=lambda f: 1 - f["proba_a"])
    truth = np.array(["a", "b", "a", "b"])
    scores = score_frame(truth, predictions, "classification", EvaluateParams())
    # positives (b) score 0.6 and 0.8, negatives 0.1 and 0.65: 3 of 4 pairs ordered right
    assert scores["roc_auc"] == pytest.approx(0.75)


def test_no_positive_probability_for_many_classes() -> None:
    frame = pd.DataFrame({"prediction": [0], "proba_0": [0.5], "proba_1": [0.3], "proba_2": [0.2]})
    assert positive_proba(frame) is None


def test_regression_scores() -> None:
    scores = score_predictions(
        np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), "regression", EvaluateParams()
    )
    assert scores["mae"] == pytest.approx(2 / 3) and scores["mse"] == pytest.approx(4 / 3)
    assert scores["r2"] < 1


def test_per_class_report() -> None:
    report = per_class_report(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert set(report) == {"0", "1"}
    assert report["0"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1-score": pytest.approx(2 / 3),
        "support": 2.0,
    }


def test_most_confidently_wrong_orders_by_confidence() -> None:
    truth = np.array([0, 1, 2, 3, 4])
    predicted = np.array([0, 2, 1, 3, 0])
    confidence = np.array([0.99, 0.6, 0.9, 0.8, 0.7])
    assert figures.most_confidently_wrong(truth, predicted, confidence).tolist() == [2, 4, 1]
    assert figures.most_confidently_wrong(truth, predicted, confidence, limit=1).tolist() == [2]


def test_figures_for_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    test = Arrays(rng.uniform(0, 16, (30, 8, 8, 1)).astype("float32"), np.arange(30) % 3)
    proba = rng.dirichlet(np.ones(3), 30)
    predictions = pd.DataFrame(
        {"prediction": proba.argmax(1), **{f"proba_{c}": proba[:, c] for c in range(3)}}
    ).assign(truth=test.y)
    built = build_figures(test, predictions, [0, 1, 2])
    assert set(built) == {"confusion.png", "samples.png", "wrong.png"}
    samples = [a for a in built["samples.png"].axes if a.images]
    assert len(samples) == 25 and samples[0].get_title() == f"true 0 / pred {proba[0].argmax()}"
    wrong = [a for a in built["wrong.png"].axes if a.images]
    assert len(wrong) == min(25, int((predictions["prediction"] != test.y).sum()))
    built["confusion.png"].savefig(tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").stat().st_size > 1000


def test_tables_get_only_the_confusion_matrix() -> None:
    test = pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]})
    predictions = pd.DataFrame({"prediction": [0, 0], "proba_0": [0.6, 0.7], "truth": [0, 1]})
    assert set(build_figures(test, predictions, [0, 1])) == {"confusion.png"}


def test_locked_md5_and_file_md5(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"abc")
    assert file_md5(tmp_path / "f.bin") == "900150983cd24fb0d6963f7d28e17f72"
    lock = tmp_path / "dvc.lock"
    lock.write_text("stages:\n  split:\n    outs:\n    - path: data/split\n      md5: 12.dir\n")
    assert locked_md5(lock, Path("data/split")) == "12.dir"
    assert locked_md5(lock, Path("data/other")) is None
    assert locked_md5(tmp_path / "missing.lock", Path("data/split")) is None
