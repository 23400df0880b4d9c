from __future__ import annotations

import numpy as np
import pytest

from tasks.config import ModelParams, TrainParams, parse_params
from tasks.runtime import UserError
from tasks.train import Split, build_model, build_optimizer, head_for, train_model


@pytest.mark.parametrize(
    ("task", "classes", "units", "loss"),
    [
        ("classification", 10, 10, "sparse_categorical_crossentropy"),
        ("classification", 2, 1, "binary_crossentropy"),
        ("regression", 0, 1, "mse"),
    ],
)
def test_heads(task: str, classes: int, units: int, loss: str) -> None:
    head = head_for(task, classes)
    assert (head.units, head.loss) == (units, loss)


@pytest.mark.parametrize(
    ("kind", "shape", "layer"),
    [("dense", (12,), "Dense"), ("cnn", (8, 8, 1), "Conv2D"), ("lstm", (5, 3), "LSTM")],
)
def test_each_model_family_builds(kind: str, shape: tuple[int, ...], layer: str) -> None:
    network = build_model(
        ModelParams(
            type=kind,
            conv_filters=[4],
            hidden_units=[8],  # type: ignore[arg-type]
            lstm_units=[4],
            l2=1e-4,
        ),
        TrainParams(),
        shape,
        head_for("classification", 3),
    )
    assert network.output_shape == (None, 3)
    assert layer in {type(item).__name__ for item in network.layers}


def test_wrong_data_shape_for_the_family() -> None:
    with pytest.raises(UserError, match="cnn needs images"):
        build_model(ModelParams(type="cnn"), TrainParams(), (64,), head_for("regression", 0))


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "adagrad", "adadelta"])
def test_optimizers(name: str) -> None:
    optimizer = build_optimizer(TrainParams(optimizer=name, lr_decay="exponential"), 10)  # type: ignore[arg-type]
    assert type(optimizer).__name__.lower() == name
    if name == "sgd":
        assert optimizer.momentum == pytest.approx(0.9)


def test_training_learns_a_separable_problem_and_stops_early() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    params = parse_params(
        {
            "model": {"type": "dense", "hidden_units": [16], "dropout": 0.0},
            "train": {
                "epochs": 60,
                "learning_rate": 0.01,
                "batch_size": 32,
                "early_stopping": {"monitor": "val_loss", "patience": 2},
            },
        }
    )
    network, history = train_model(params, Split(x[:300], y[:300]), Split(x[300:], y[300:]))
    assert max(history.history["val_accuracy"]) > 0.9
    assert len(history.epoch) < 60
