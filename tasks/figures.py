"""Figures: the training curves, the confusion matrix and captioned grids of test images.

Pure matplotlib on in-memory data (Agg backend, no display); train and evaluate save and log them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tasks.config import Params

GRID = 5  # a 5x5 grid of images


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def is_image_batch(x: Any) -> bool:
    """Images [n, h, w, c] with one (grey) or three (RGB) channels."""
    return isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[-1] in (1, 3)


def plot_confusion(truth: np.ndarray, predicted: np.ndarray, classes: list[Any]) -> Any:
    """The confusion matrix (counts), true labels on rows, predicted on columns."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    size = max(4.0, 0.5 * len(classes) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        truth, predicted, labels=classes, ax=axis, colorbar=False, cmap="Blues"
    )
    axis.set_title("Confusion matrix (test split)")
    figure.tight_layout()
    return figure


def plot_image_grid(images: np.ndarray, captions: list[str], wrong: np.ndarray, title: str) -> Any:
    """Up to 25 images in rows of 5 (as many rows as needed), each captioned; wrong
    predictions captioned in red."""
    plt = _pyplot()
    rows = max(1, -(-min(len(images), GRID * GRID) // GRID))
    figure, axes = plt.subplots(rows, GRID, figsize=(8, 1.7 * rows + 0.5), squeeze=False)
    for i, axis in enumerate(axes.flat):
        axis.axis("off")
        if i >= len(images):
            continue
        image = images[i]
        grey = image.shape[-1] == 1
        axis.imshow(image[..., 0] if grey else _unit_range(image), cmap="gray" if grey else None)
        axis.set_title(captions[i], fontsize=8, color="red" if wrong[i] else "black")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _unit_range(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image, dtype="float64")


def sample_grid(images: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> Any:
    """The first 25 test images, captioned `true / predicted`."""
    n = min(len(images), GRID * GRID)
    captions = [f"true {t} / pred {p}" for t, p in zip(truth[:n], predicted[:n], strict=True)]
    return plot_image_grid(images[:n], captions, truth[:n] != predicted[:n], "Test images")


def most_confidently_wrong(
    truth: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, limit: int = GRID * GRID
) -> np.ndarray:
    """Indices of wrong predictions, the most confident first (at most `limit`)."""
    wrong = np.flatnonzero(truth != predicted)
    return wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]


def wrong_grid(
    images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, confidence: np.ndarray
) -> Any:
    """The most confidently wrong test images, captioned `true / predicted (p)`."""
    index = most_confidently_wrong(truth, predicted, confidence)
    captions = [f"true {truth[i]} / pred {predicted[i]} ({confidence[i]:.2f})" for i in index]
    return plot_image_grid(
        images[index], captions, np.ones(len(index), bool), "Most confidently wrong"
    )


def kept_by(params: Params) -> str | None:
    """The metric whose best epoch training keeps (None: it keeps the last epoch)."""
    stopping = params.train.early_stopping
    return stopping.monitor if stopping.restore_best_weights else None


def best_epoch(history: pd.DataFrame, monitor: str | None) -> int | None:
    """The epoch whose weights training kept: the best value of the monitored metric."""
    if monitor is None or monitor not in history or history[monitor].isna().all():
        return None
    values = history[monitor]
    best = values.idxmin() if "loss" in monitor or "error" in monitor else values.idxmax()
    return int(history.loc[best, "epoch"])


def plot_curves(history: pd.DataFrame, monitor: str | None = "val_loss") -> Any:
    """Training vs validation curves, one panel per metric; the kept (best) epoch marked."""
    plt = _pyplot()
    names = [
        c
        for c in history.columns
        if not c.startswith("val_") and c not in ("epoch", "learning_rate")
    ]
    kept = best_epoch(history, monitor)
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=False):
        axis.plot(history["epoch"], history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(history["epoch"], history[f"val_{name}"], label="validation")
        if kept is not None:
            axis.axvline(kept, color="grey", linestyle="--", label=f"kept: epoch {kept}")
        axis.set(title=name, xlabel="epoch", ylabel=name.replace("_", " "))
        axis.legend()
    figure.tight_layout()
    return figure
