"""Keras model builders: the network for `model.type` (dense, CNN, LSTM) with the task's head,
its optimizer, and image augmentation; every random part seeded from `train.seed`.

Used by tune (trials) and train alike, so a grid point and the final model share one
definition.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from tasks.config import Augmentation, ModelParams, TrainParams
from tasks.runtime import UserError


@dataclass(frozen=True)
class Head:
    units: int
    activation: str
    loss: str
    metrics: tuple[str, ...]


def head_for(task: str, n_classes: int) -> Head:
    """Output layer and loss: softmax/CE, sigmoid/BCE for two classes, linear/MSE for regression."""
    if task == "regression":
        return Head(1, "linear", "mse", ("mae",))
    if n_classes == 2:
        return Head(1, "sigmoid", "binary_crossentropy", ("accuracy",))
    return Head(n_classes, "softmax", "sparse_categorical_crossentropy", ("accuracy",))


def _regularizer(model: ModelParams) -> Any:
    import keras

    if model.l1 == 0 and model.l2 == 0:
        return None
    return keras.regularizers.L1L2(l1=model.l1, l2=model.l2)


class Seeds:
    """Seeds for every random part of one model (initialisers, dropout, augmentation), drawn
    from train.seed alone.

    Left unseeded, Keras draws them from Python's global `random` while the model is built,
    and anything else in the process that draws from it at that moment (a Prefect worker
    thread, another trial) would change the model.
    """

    def __init__(self, seed: int) -> None:
        self._draw = random.Random(seed)

    def __call__(self) -> int:
        return self._draw.randint(1, 2**31 - 1)

    def initializer(self, name: str) -> Any:
        import keras

        initializer = keras.initializers.get(name)
        config = initializer.get_config()
        if "seed" not in config:  # constant ones (zeros, ones) draw nothing
            return initializer
        return type(initializer).from_config({**config, "seed": self()})


def _body(model: ModelParams, input_shape: tuple[int, ...], seeds: Seeds) -> list[Any]:
    from keras import layers

    def common() -> dict[str, Any]:
        return {
            "activation": model.activation,
            "kernel_initializer": seeds.initializer(model.initializer),
            "kernel_regularizer": _regularizer(model),
        }

    body: list[Any] = []
    if model.type == "cnn":
        if len(input_shape) != 3:
            raise UserError(f"model.type cnn needs images [h, w, c]; the data has {input_shape}")
        for filters in model.conv_filters:
            body += [
                layers.Conv2D(filters, model.kernel_size, padding="same", **common()),
                layers.MaxPooling2D(pool_size=2, padding="same"),
            ]
        body += [layers.Dropout(model.dropout, seed=seeds()), layers.Flatten()]
    elif model.type == "lstm":
        if len(input_shape) != 2:
            raise UserError(f"model.type lstm needs sequences [steps, features]; got {input_shape}")
        for i, units in enumerate(model.lstm_units):
            body.append(
                layers.LSTM(
                    units,
                    return_sequences=i < len(model.lstm_units) - 1,
                    kernel_initializer=seeds.initializer("glorot_uniform"),
                    recurrent_initializer=seeds.initializer("orthogonal"),
                    seed=seeds(),
                )
            )
    else:
        body.append(layers.Flatten())
    for units in model.hidden_units:
        body += [layers.Dense(units, **common()), layers.Dropout(model.dropout, seed=seeds())]
    return body


def augmentation_layers(
    augmentation: Augmentation, input_shape: tuple[int, ...], seeds: Seeds
) -> list[Any]:
    """Random rotation/translation/zoom layers: active in training, identity at inference."""
    from keras import layers

    if not augmentation.active:
        return []
    if len(input_shape) != 3:
        raise UserError(f"train.augmentation needs images [h, w, c]; the data has {input_shape}")
    fill = {"fill_mode": "constant", "fill_value": 0.0}
    stack: list[Any] = []
    if augmentation.rotation > 0:
        stack.append(layers.RandomRotation(augmentation.rotation, seed=seeds(), **fill))
    if augmentation.translation > 0:
        shift = augmentation.translation
        stack.append(layers.RandomTranslation(shift, shift, seed=seeds(), **fill))
    if augmentation.zoom > 0:
        stack.append(layers.RandomZoom(augmentation.zoom, seed=seeds(), **fill))
    return stack


def build_optimizer(train: TrainParams, steps_per_epoch: int) -> Any:
    """The configured optimizer, with exponential learning-rate decay when asked."""
    import keras

    rate: Any = train.learning_rate
    if train.lr_decay == "exponential":
        rate = keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate, decay_steps=max(steps_per_epoch, 1), decay_rate=0.9
        )
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=train.momentum, name="sgd")
    classes = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
    }
    return classes[train.optimizer](rate, name=train.optimizer)  # not Keras' counter


def _snake_case(name: str) -> str:
    """`MaxPooling2D` -> `max_pooling2d`, as Keras names its layers."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def build_model(
    model: ModelParams,
    train: TrainParams,
    input_shape: tuple[int, ...],
    head: Head,
    steps_per_epoch: int = 1,
) -> Any:
    """An unfitted, compiled Keras model: dense, CNN or LSTM body with the task's head; its
    random parts are seeded from train.seed (see Seeds)."""
    import keras

    seeds = Seeds(train.seed)
    output = keras.layers.Dense(
        head.units,
        activation=head.activation,
        kernel_initializer=seeds.initializer("glorot_uniform"),
        dtype="float32",
    )
    layers = [*augmentation_layers(train.augmentation, input_shape, seeds)]
    layers += [*_body(model, input_shape, seeds), output]
    for number, layer in enumerate(layers):
        # by position, not Keras' per-process counter: the same model, wherever it was built,
        # has the same variable names, config and saved file
        layer.name = f"{_snake_case(type(layer).__name__)}_{number}"
    inputs = keras.Input(input_shape, name="input")
    network = keras.Sequential([inputs, *layers], name=f"{model.type}")
    network.compile(
        optimizer=build_optimizer(train, steps_per_epoch),
        loss=head.loss,
        metrics=list(head.metrics),
    )
    return network
