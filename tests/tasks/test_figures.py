"""Figures a person reads: labelled axes, the kept epoch marked, no blank rows of images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.figures import best_epoch, plot_curves, wrong_grid

HISTORY = pd.DataFrame(
    {
        "epoch": range(1, 7),
        "loss": [1.0, 0.7, 0.5, 0.4, 0.3, 0.2],
        "val_loss": [1.0, 0.8, 0.6, 0.55, 0.58, 0.6],
        "accuracy": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9],
        "val_accuracy": [0.5, 0.6, 0.65, 0.7, 0.72, 0.71],
    }
)


def test_curves_label_their_axes_and_mark_the_kept_epoch() -> None:
    figure = plot_curves(HISTORY, "val_loss")
    for axis in figure.axes:
        assert axis.get_xlabel() == "epoch" and axis.get_ylabel() in {"loss", "accuracy"}
        labels = [line.get_label() for line in axis.get_lines()]
        assert labels == ["train", "validation", "kept: epoch 4"]
    assert best_epoch(HISTORY, "val_accuracy") == 5
    assert best_epoch(HISTORY, None) is None  # restore_best_weights off: the last epoch is kept


def test_a_few_wrong_images_take_one_row_not_five() -> None:
    images = np.random.default_rng(0).random((3, 8, 8, 1))
    figure = wrong_grid(images, np.array([1, 2, 3]), np.array([2, 3, 4]), np.ones(3))
    assert len(figure.axes) == 5, "one row of five"
    assert sum(bool(axis.get_images()) for axis in figure.axes) == 3
