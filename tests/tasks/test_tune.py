from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.config import TuneParams, parse_params
from tasks.train import Split
from tasks.tune import Trial, grid_points, pick_best, run_trial, score_history


def test_grid_points_cover_every_combination() -> None:
    tune = TuneParams(grid={"train.learning_rate": [0.1, 0.01], "model.dropout": [0.0, 0.2, 0.4]})
    points = grid_points(tune)
    assert len(points) == 6
    assert {"train.learning_rate": 0.01, "model.dropout": 0.4} in points
    assert grid_points(TuneParams()) == [{}]


def test_score_direction_follows_the_metric() -> None:
    history = {"val_loss": [0.5, 0.2, 0.3], "val_accuracy": [0.6, 0.9, 0.8]}
    assert score_history(history, "val_loss") == 0.2
    assert score_history(history, "val_accuracy") == 0.9
    with pytest.raises(KeyError, match="val_auc"):
        score_history(history, "val_auc")


def test_pick_best_skips_failed_trials() -> None:
    trials = [
        Trial({"a": 1}, 0.8, 3, "ok"),
        Trial({"a": 2}, math.nan, 0, "failed", "boom"),
        Trial({"a": 3}, 0.9, 3, "ok"),
    ]
    assert pick_best(trials, "val_accuracy").point == {"a": 3}
    assert pick_best(trials, "val_loss").point == {"a": 1}
    with pytest.raises(RuntimeError, match="every trial failed"):
        pick_best(trials[1:2], "val_accuracy")


def _splits() -> tuple[Split, Split]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return Split(x[:48], y[:48]), Split(x[48:], y[48:])


def test_a_failing_trial_is_recorded_not_raised() -> None:
    params = parse_params({"model": {"type": "cnn"}, "tune": {"epochs": 1}})
    trial = run_trial(params, {}, *_splits())  # a CNN cannot take flat rows
    assert trial.status == "failed" and "cnn needs images" in (trial.error or "")


def test_a_trial_trains_and_scores_on_validation() -> None:
    params = parse_params(
        {
            "model": {"type": "dense", "hidden_units": [8]},
            "tune": {"epochs": 2},
            "train": {"batch_size": 16},
        }
    )
    trial = run_trial(params, {"train.learning_rate": 0.01}, *_splits())
    assert trial.status == "ok" and trial.epochs == 2 and 0 <= trial.score <= 1
