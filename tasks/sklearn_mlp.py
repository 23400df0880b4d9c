"""scikit-learn's MLP (`model.type: sklearn_mlp`): the classic baseline, one factory for tune
(GridSearchCV on the predefined train/validation split) and train, trained epoch by epoch so
it gets the same curves and early stopping as Keras.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import Params, with_overrides
from tasks.datafiles import Split, flat_rows, n_classes_of
from tasks.metrics import minimize
from tasks.runtime import UserError
from tasks.trials import Trial

log = logging.getLogger(__name__)


SKLEARN_AXES = {
    "model.hidden_units": "hidden_layer_sizes",
    "model.activation": "activation",
    "model.l2": "alpha",
    "train.learning_rate": "learning_rate_init",
    "train.batch_size": "batch_size",
    "train.optimizer": "solver",
    "train.momentum": "momentum",
    "train.seed": "random_state",
}


SKLEARN_ACTIVATIONS = {"sigmoid": "logistic"}


SKLEARN_CHOICES = {
    "model.activation": ("relu", "tanh", "sigmoid"),
    "train.optimizer": ("adam", "sgd"),
}


def _setting(params: Params, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(params, section), name)


def _sklearn_value(axis: str, value: Any) -> Any:
    if axis == "model.hidden_units":
        return tuple(value)
    return SKLEARN_ACTIVATIONS.get(value, value) if axis == "model.activation" else value


def sklearn_point(point: dict[str, Any]) -> dict[str, Any]:
    """A grid point as MLP constructor arguments; UserError for an axis the MLP lacks."""
    unknown = sorted(set(point) - set(SKLEARN_AXES))
    if unknown:
        raise UserError(
            f"tune.grid axes {unknown} have no sklearn_mlp counterpart; use {sorted(SKLEARN_AXES)}"
        )
    return {SKLEARN_AXES[axis]: _sklearn_value(axis, value) for axis, value in point.items()}


def check_sklearn(params: Params) -> None:
    """Stop on a setting the MLP cannot honour, rather than train something else silently."""
    for key, allowed in SKLEARN_CHOICES.items():
        if _setting(params, key) not in allowed:
            raise UserError(
                f"{key} {_setting(params, key)!r} has no sklearn_mlp counterpart; "
                f"use one of {list(allowed)}"
            )
    asked = {
        "train.augmentation": params.train.augmentation.active,
        "train.lr_decay": params.train.lr_decay != "none",
        "model.l1": params.model.l1 > 0,
    }
    for key, on in asked.items():
        if on:
            raise UserError(f"{key} is not available with model.type sklearn_mlp; turn it off")
    monitor, names = params.train.early_stopping.monitor, curve_names(params.dataset.task)
    if monitor not in names:
        raise UserError(f"train.early_stopping.monitor {monitor!r} is not one of {names}")


def sklearn_estimator(params: Params) -> Any:
    """An unfitted MLPClassifier/MLPRegressor with the configured values, `max_iter` =
    train.epochs; UserError for a setting it cannot honour (augmentation, L1, learning-rate
    decay, an optimizer or activation scikit-learn lacks)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    check_sklearn(params)
    model = MLPRegressor if params.dataset.task == "regression" else MLPClassifier
    values = {
        name: _sklearn_value(axis, _setting(params, axis)) for axis, name in SKLEARN_AXES.items()
    }
    return model(**values, max_iter=params.train.epochs)


def curve_names(task: str) -> list[str]:
    metric = "mae" if task == "regression" else "accuracy"
    return ["loss", metric, "val_loss", f"val_{metric}"]


def _scores(estimator: Any, split: Split) -> tuple[float, float]:
    """(loss, accuracy or MAE) on a split; the loss is the log-loss, or the mean squared error
    for regression (as Keras and tune report them)."""
    from sklearn.base import is_classifier
    from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error

    x = flat_rows(split.x)
    if is_classifier(estimator):
        proba = estimator.predict_proba(x)
        hits = estimator.classes_[proba.argmax(axis=1)] == split.y
        return float(log_loss(split.y, proba, labels=estimator.classes_)), float(hits.mean())
    predicted = estimator.predict(x)
    return float(mean_squared_error(split.y, predicted)), float(
        mean_absolute_error(split.y, predicted)
    )


def _epoch_row(
    estimator: Any, epoch: int, splits: tuple[Split, Split], task: str
) -> dict[str, float]:
    names = curve_names(task)
    val_loss, val_metric = _scores(estimator, splits[1])
    # `loss` is sklearn's own loss_curve_ (the epoch's mean training loss, L2 term included;
    # half the squared error for regression, so doubled to MSE); the other numbers are scored
    # with the weights at the end of the epoch
    loss = estimator.loss_curve_[-1] * (2 if task == "regression" else 1)
    train_metric = _scores(estimator, splits[0])[1]
    values = [loss, train_metric, val_loss, val_metric]
    return {"epoch": epoch, **dict(zip(names, values, strict=True))}


def _weights(estimator: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return [c.copy() for c in estimator.coefs_], [b.copy() for b in estimator.intercepts_]


@dataclass
class _BestEpoch:
    """Keras's EarlyStopping rules for an epoch loop: keep the best epoch's weights, stop after
    `patience` epochs without improvement."""

    monitor: str
    patience: int
    best: float = np.inf
    weights: tuple[list[np.ndarray], list[np.ndarray]] | None = None
    wait: int = 0

    def should_stop(self, row: dict[str, float], estimator: Any) -> bool:
        value = -row[self.monitor] if self.monitor.endswith("accuracy") else row[self.monitor]
        self.wait += 1
        if value < self.best:
            self.best, self.weights, self.wait = value, _weights(estimator), 0
            return False
        return self.wait >= self.patience


def train_sklearn(params: Params, train_split: Split, val_split: Split) -> tuple[Any, pd.DataFrame]:
    """Fit the scikit-learn MLP one epoch at a time; return (estimator, per-epoch curves).

    Each `partial_fit` is one epoch over the training split, scored on the validation split;
    `train.early_stopping` stops and restores the best epoch as it does for Keras (sklearn's
    own early stopping would hold out part of the training split instead). At most
    train.epochs epochs.
    """
    from sklearn.base import is_classifier

    estimator = sklearn_estimator(params)
    rules, task = params.train.early_stopping, params.dataset.task
    if params.model.dropout > 0:
        log.warning("model.dropout is ignored by sklearn_mlp (no dropout; model.l2 regularizes)")
    # an int random_state would reseed, so reshuffle identically, at every partial_fit
    estimator.set_params(random_state=np.random.RandomState(params.train.seed))
    classes = np.arange(n_classes_of(task, train_split, val_split))
    extra = {"classes": classes} if is_classifier(estimator) else {}
    stopper, rows = _BestEpoch(rules.monitor, rules.patience), []
    for epoch in range(1, params.train.epochs + 1):
        estimator.partial_fit(flat_rows(train_split.x), train_split.y, **extra)
        rows.append(_epoch_row(estimator, epoch, (train_split, val_split), task))
        if stopper.should_stop(rows[-1], estimator):
            break
    if rules.restore_best_weights and stopper.weights is not None:
        estimator.coefs_, estimator.intercepts_ = stopper.weights
    return estimator.set_params(random_state=params.train.seed), pd.DataFrame(rows)


def sklearn_scoring(metric: str, task: str) -> str:
    """The scikit-learn scorer for a Keras-style `val_*` metric (higher is better)."""
    name = metric.removeprefix("val_")
    scorers = {
        "accuracy": "accuracy",
        "loss": "neg_log_loss" if task == "classification" else "neg_mean_squared_error",
        "mae": "neg_mean_absolute_error",
        "mse": "neg_mean_squared_error",
    }
    if name not in scorers:
        raise UserError(f"tune.metric {metric!r} has no scikit-learn scorer; use {sorted(scorers)}")
    return scorers[name]


def search_sklearn(
    params: Params, points: list[dict[str, Any]], splits: tuple[Split, Split]
) -> list[Trial]:
    """GridSearchCV over the points with one fold: fit on train, score on validation."""
    from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    train_split, val_split = splits
    x = np.concatenate([flat_rows(s.x) for s in splits])
    y = np.concatenate([train_split.y, val_split.y])
    fold = np.r_[np.full(len(train_split.y), -1), np.zeros(len(val_split.y))]
    grid = [{k: [v] for k, v in sklearn_point(p).items()} for p in points]
    tune = params.tune
    search_cv = GridSearchCV(
        sklearn_estimator(with_overrides(params, {"train.epochs": tune.epochs})),
        grid,
        scoring=sklearn_scoring(tune.metric, params.dataset.task),
        cv=PredefinedSplit(fold),
        n_jobs=None if tune.runner == "sequential" else tune.workers,
        error_score=np.nan,
        refit=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("always", FitFailedWarning)
        search_cv.fit(x, y)
    failures = [str(w.message).strip().splitlines()[-1] for w in caught if _failed(w)]
    error = f"fit failed: {failures[-1] if failures else 'see the log'}"
    sign = -1 if minimize(tune.metric) else 1
    return [
        Trial(p, sign * float(score), tune.epochs, "ok")
        if np.isfinite(score)
        else Trial(p, math.nan, 0, "failed", error)
        for p, score in zip(points, search_cv.cv_results_["mean_test_score"], strict=True)
    ]


def _failed(caught: warnings.WarningMessage) -> bool:
    from sklearn.exceptions import FitFailedWarning

    return issubclass(caught.category, FitFailedWarning)
