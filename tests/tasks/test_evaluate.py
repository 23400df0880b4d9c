from __future__ import annotations

import numpy as np
import pytest

from tasks.config import EvaluateParams
from tasks.evaluate import score_predictions


def test_classification_scores() -> None:
    truth = np.array([0, 0, 1, 1])
    scores = score_predictions(truth, np.array([0, 1, 1, 1]), "classification", EvaluateParams())
    assert scores["accuracy"] == 0.75
    assert scores["recall"] == pytest.approx((0.5 + 1) / 2)
    assert scores["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert set(scores) == {"accuracy", "precision", "recall", "f1"}


def test_regression_scores() -> None:
    scores = score_predictions(
        np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), "regression", EvaluateParams()
    )
    assert scores["mae"] == pytest.approx(2 / 3) and scores["mse"] == pytest.approx(4 / 3)
    assert scores["r2"] < 1
