"""Scores: the test metrics of a model's predictions (classification and regression), per
class, and which direction is better for a metric. evaluate, tune and register share them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.config import EvaluateParams


def minimize(metric: str) -> bool:
    """Whether lower is better for the metric (losses and errors)."""
    return any(word in metric for word in ("loss", "mae", "mse", "error"))


AVERAGES = ("macro", "weighted")


def score_predictions(
    truth: np.ndarray,
    predicted: np.ndarray,
    task: str,
    rules: EvaluateParams,
    positive_proba: np.ndarray | None = None,
) -> dict[str, float]:
    """Classification: accuracy; precision, recall, F1 as `rules.average` and as macro and
    weighted averages; ROC-AUC for two classes given the positive class's probability.
    Regression: MSE, MAE, R²."""
    from sklearn import metrics

    if task == "regression":
        return {
            "mse": float(metrics.mean_squared_error(truth, predicted)),
            "mae": float(metrics.mean_absolute_error(truth, predicted)),
            "r2": float(metrics.r2_score(truth, predicted)),
        }
    scores = {"accuracy": float(metrics.accuracy_score(truth, predicted))}
    for suffix, average in [("", rules.average), *((f"_{a}", a) for a in AVERAGES)]:
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            truth, predicted, average=average, zero_division=0
        )
        scores |= {f"precision{suffix}": precision, f"recall{suffix}": recall, f"f1{suffix}": f1}
    if positive_proba is not None and len(np.unique(truth)) == 2:
        scores["roc_auc"] = metrics.roc_auc_score(truth, positive_proba)
    return {k: float(v) for k, v in scores.items()}


def positive_proba(predictions: pd.DataFrame) -> np.ndarray | None:
    """The second (positive) class's probability when the bundle predicted two classes."""
    columns = [c for c in predictions.columns if c.startswith("proba_")]
    return predictions[columns[1]].to_numpy() if len(columns) == 2 else None


def score_frame(
    truth: np.ndarray, predictions: pd.DataFrame, task: str, rules: EvaluateParams
) -> dict[str, float]:
    """Scores of a bundle's prediction table (`prediction`, `proba_<class>`) against truth."""
    return score_predictions(
        truth, predictions["prediction"].to_numpy(), task, rules, positive_proba(predictions)
    )


def per_class_report(truth: np.ndarray, predicted: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for each class (sklearn's classification_report)."""
    from sklearn.metrics import classification_report

    present = np.unique(np.concatenate([truth, predicted]))
    names = [str(c) for c in present]
    report = classification_report(
        truth, predicted, labels=present, target_names=names, output_dict=True, zero_division=0
    )
    return {c: {k: float(v) for k, v in report[c].items()} for c in names}
