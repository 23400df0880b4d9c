"""train: fit the model (`model.type`) with the best grid point on the training split.

Reads `paths.processed/{train,val}.npz`, `paths.preprocessor` and `reports/tune.json`;
writes `paths.model/` (the network in its own format: `model.keras` for Keras, `model.pkl` for
scikit-learn's MLP; `run.json` naming the MLflow run and logged model) and
`reports/history.csv`. The MLflow run gets the params, per-epoch curves for training and
validation, the device used, and the model bundle (preprocessor + network) that serves raw rows.

`dense`, `cnn` and `lstm` are Keras networks. `sklearn_mlp` is scikit-learn's MLPClassifier or
MLPRegressor (the baseline tune scores with GridSearchCV), built by the same factory for both
steps and trained epoch by epoch so it gets the same curves and early stopping as Keras.

While a Keras model trains, `paths.checkpoints/train-<key>/` holds a backup of the last finished
epoch (and `train-<key>.csv` the epochs so far): a training that is killed and started again
with the same params and data resumes there. Both are removed when the training succeeds.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import (
    Augmentation,
    EarlyStopping,
    ModelParams,
    Params,
    TrainParams,
    load_params,
    with_overrides,
)
from tasks.datafiles import read_data, read_json, replace_dir, replace_file, write_json
from tasks.runtime import UserError, import_tensorflow, run_entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray


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
        return keras.optimizers.SGD(rate, momentum=train.momentum)
    classes = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
    }
    return classes[train.optimizer](rate)


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
    network = keras.Sequential(
        [
            keras.Input(input_shape),
            *augmentation_layers(train.augmentation, input_shape, seeds),
            *_body(model, input_shape, seeds),
            output,
        ],
        name=f"{model.type}",
    )
    network.compile(
        optimizer=build_optimizer(train, steps_per_epoch),
        loss=head.loss,
        metrics=list(head.metrics),
    )
    return network


def _dataset(split: Split, batch_size: int) -> Any:
    """The split in order, batched: validation and evaluation data."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _epochs_dataset(split: Split, batch_size: int, seed: int, epochs: range) -> Any:
    """The batches of `epochs`, epoch after epoch, each epoch in its own shuffled order.

    Epoch e's order depends on (seed, e) alone, so a training resumed at epoch e (from a
    backup, or continued by halving) sees the very batches an uninterrupted one would have;
    a reshuffling tf.data pipeline would start its sequence of orders over. Use it with
    `steps_per_epoch` so that Keras keeps one iterator across the epochs.
    """
    import tensorflow as tf

    n = len(split.y)
    x, y = tf.constant(split.x), tf.constant(split.y)

    def one_epoch(epoch: Any) -> Any:
        seeds = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.random.experimental.index_shuffle(tf.range(n, dtype=tf.int64), seeds, n - 1)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    batches = tf.data.Dataset.range(epochs.start, epochs.stop).flat_map(one_epoch)
    gathered = batches.map(
        lambda rows: (tf.gather(x, rows), tf.gather(y, rows)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return gathered.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(split: Split, batch_size: int) -> int:
    return int(np.ceil(len(split.y) / batch_size))


@dataclass
class Carry:
    """What one fit of a model hands on to the next fit of it (halving's rungs): early
    stopping's count, best value and best weights, and plateau decay's counters, so that the
    fits add up to one uninterrupted training."""

    stopping: dict[str, Any] | None = None
    plateau: dict[str, Any] | None = None
    random: list[np.ndarray] | None = None  # random_state_variables, when the model travels


def early_stopping(
    stop: EarlyStopping, state: Path | None = None, carry: Carry | None = None, final: bool = True
) -> Any:
    """Keras' EarlyStopping; with `state`, a folder, it survives a restart of the training.

    After every epoch its count of epochs without improvement, its best value and (with
    restore_best_weights) the best weights are saved in `state`, and a training resumed from
    a backup starts from them instead of from a fresh patience. A kill between this save and
    the epoch's backup repeats that epoch, so patience can be off by that one epoch.
    With `carry`, it starts from (and leaves) its state there instead; when the fit is not
    `final` and did not stop early, the model keeps its last weights rather than going back
    to its best ones, since training goes on from them.
    """
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[misc]
        def on_train_begin(self, logs: Any = None) -> None:
            super().on_train_begin(logs)
            if state is not None and (state / "state.json").exists():
                saved = read_json(state / "state.json")
                self.wait, self.best, self.best_epoch = saved["wait"], saved["best"], saved["epoch"]
                if self.restore_best_weights and (state / "best.npz").exists():
                    with np.load(state / "best.npz") as weights:
                        self.best_weights = [weights[f"arr_{i}"] for i in range(len(weights.files))]
            elif carry is not None and carry.stopping is not None:
                for name, value in carry.stopping.items():
                    setattr(self, name, value)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            super().on_epoch_end(epoch, logs)
            if state is None or self.best is None:
                return
            state.mkdir(parents=True, exist_ok=True)
            if self.best_epoch == epoch and self.best_weights is not None:
                with replace_file(state / "best.npz") as staging:
                    with staging.open("wb") as out:
                        np.savez(out, *self.best_weights)
            with replace_file(state / "state.json") as staging:
                write_json(
                    staging, {"wait": self.wait, "best": float(self.best), "epoch": self.best_epoch}
                )

        def on_train_end(self, logs: Any = None) -> None:
            if carry is not None:
                names = ("wait", "best", "best_epoch", "best_weights")
                carry.stopping = {name: getattr(self, name) for name in names}
            if final or self.model.stop_training:
                super().on_train_end(logs)

    return ResumableEarlyStopping(
        monitor=stop.monitor, patience=stop.patience, restore_best_weights=stop.restore_best_weights
    )


def plateau_decay(monitor: str, state: Path | None = None, carry: Carry | None = None) -> Any:
    """Keras' ReduceLROnPlateau (patience 2); with `state`, its counters survive a restart.

    The learning rate it lowered is an optimizer variable and comes back with the backup; its
    count of epochs without improvement, its best value and its cooldown are saved in `state`
    after every epoch, as early stopping's are (or, with `carry`, handed on there).
    """
    import keras

    class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):  # type: ignore[misc]
        def on_train_begin(self, logs: Any = None) -> None:
            super().on_train_begin(logs)
            saved = None
            if state is not None and (state / "plateau.json").exists():
                saved = read_json(state / "plateau.json")
            elif carry is not None:
                saved = carry.plateau
            if saved is not None:
                self.wait, self.best = saved["wait"], saved["best"]
                self.cooldown_counter = saved["cooldown"]

        def _counters(self) -> dict[str, Any]:
            return {"wait": self.wait, "best": float(self.best), "cooldown": self.cooldown_counter}

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            super().on_epoch_end(epoch, logs)
            if state is None:
                return
            state.mkdir(parents=True, exist_ok=True)
            with replace_file(state / "plateau.json") as staging:
                write_json(staging, self._counters())

        def on_train_end(self, logs: Any = None) -> None:
            super().on_train_end(logs)
            if carry is not None:
                carry.plateau = self._counters()

    return ResumablePlateau(monitor=monitor, patience=2)


def random_state_variables(network: Any) -> list[Any]:
    """The states of the network's random generators (dropout, augmentation): not weights, so
    neither in a backup nor in a saved .keras file."""
    return [v for v in network.variables if v.path.endswith("seed_generator_state")]


def random_states(state: Path) -> Any:
    """A callback that saves the random generators' states after each epoch, under the number
    of the epoch that comes next, so that a training resumed there (restore_random_states)
    draws the dropout masks and augmentations an uninterrupted one would."""
    import keras

    class RandomStates(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            state.mkdir(parents=True, exist_ok=True)
            with replace_file(state / f"random-{epoch + 1}.npz") as staging:
                with staging.open("wb") as out:
                    np.savez(out, *(np.asarray(v) for v in random_state_variables(self.model)))
            # the backup keeps two generations; keep their two states
            (state / f"random-{epoch - 1}.npz").unlink(missing_ok=True)

    return RandomStates()


def restore_random_states(network: Any, state: Path, epoch: int) -> None:
    path = state / f"random-{epoch}.npz"
    if epoch == 0 or not path.exists():
        return
    with np.load(path) as saved:
        for index, variable in enumerate(random_state_variables(network)):
            variable.assign(saved[f"arr_{index}"])


def fit_model(
    network: Any,
    train_split: Split,
    val_split: Split,
    train: TrainParams,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: list[Any] | None = None,
    verbose: int | str = 0,
    state: Path | None = None,
    carry: Carry | None = None,
    final: bool = True,
) -> Any:
    """Fit epochs initial_epoch..epochs-1 (as Keras counts them) with early stopping (and
    plateau decay when asked); return the Keras History.

    Each epoch's batches depend on the seed and the epoch's number only, so fitting 0..4 and
    then 4..8 gives the same model as fitting 0..8 at once. With `state`, a folder, the
    callbacks' counters and the random generators' states are saved there after each epoch
    and picked up by a fit resumed from a backup. With `carry`, they are handed from one fit
    to the next one of the same model instead; a fit that is not `final` leaves the model at
    its last epoch, for the next fit to go on from (see early_stopping).
    """
    extra: list[Any] = [early_stopping(train.early_stopping, state, carry, final)]
    if train.lr_decay == "plateau":
        extra.append(plateau_decay(train.early_stopping.monitor, state, carry))
    if state is not None:
        restore_random_states(network, state, initial_epoch)
        extra.append(random_states(state))
    batches = _epochs_dataset(
        train_split, train.batch_size, train.seed, range(initial_epoch, max(epochs, initial_epoch))
    )
    return network.fit(
        batches,
        steps_per_epoch=steps_per_epoch(train_split, train.batch_size),
        validation_data=_dataset(val_split, train.batch_size),
        initial_epoch=initial_epoch,
        epochs=epochs,
        callbacks=extra + (callbacks or []),
        verbose=verbose,
        shuffle=False,
    )


@functools.cache
def distribution_strategy() -> Any:
    """MirroredStrategy over every visible GPU when there are several, else the default one."""
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def precision_policy(train: TrainParams) -> str:
    """`mixed_float16` when asked for and a GPU is visible (where it pays off), else float32."""
    tf = import_tensorflow()
    if not train.mixed_precision:
        return "float32"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    log.warning("train.mixed_precision: no GPU visible, training in float32")
    return "float32"


def seed_training(train: TrainParams) -> None:
    """Seed Python, NumPy and TensorFlow; with train.deterministic also make TF ops deterministic.

    Op determinism is process-wide and TensorFlow offers no public way back, so it stays on for
    the rest of the process once a deterministic training ran.
    """
    import keras

    keras.utils.set_random_seed(train.seed)
    if train.deterministic:
        import_tensorflow().config.experimental.enable_op_determinism()


def describe_devices() -> dict[str, Any]:
    """The device, strategy and TensorFlow version training uses (logged on every run)."""
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    strategy = distribution_strategy()
    return {
        "device": "GPU" if gpus else "CPU",
        "gpus": len(gpus),
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "tensorflow": tf.__version__,
    }


def load_split(folder: Path, name: str) -> Split:
    path = folder / f"{name}.npz"
    if not path.is_file():
        raise UserError(f"{path}: not found (run the standardize stage first)")
    with np.load(path) as npz:
        return Split(npz["x"], npz["y"])


def n_classes_of(task: str, *splits: Split) -> int:
    return 0 if task == "regression" else int(max(int(s.y.max()) for s in splits) + 1)


def train_model(
    params: Params,
    train_split: Split,
    val_split: Split,
    callbacks: list[Any] | None = None,
    verbose: int | str = 0,
    *,
    backup_dir: Path | None = None,
    carry: Carry | None = None,
    final: bool = True,
) -> tuple[Any, Any]:
    """Build and fit the configured model on every visible GPU (or the CPU); return
    (model, history). `carry` and `final` are fit_model's.

    With backup_dir, the state after each epoch is backed up there and a later call with the
    same params resumes from it (history.epoch then starts at the resumed epoch) as if it had
    never stopped: the same batches, dropout and augmentation, early stopping's patience and
    plateau decay's counters; the backup is deleted when fit ends.
    """
    import keras

    seed_training(params.train)
    keras.mixed_precision.set_global_policy(precision_policy(params.train))
    head = head_for(params.dataset.task, n_classes_of(params.dataset.task, train_split, val_split))
    steps = steps_per_epoch(train_split, params.train.batch_size)
    with distribution_strategy().scope():
        network = build_model(params.model, params.train, train_split.x.shape[1:], head, steps)
    # two generations, so a kill in the middle of writing one still leaves a readable backup
    backup = (
        [keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True)]
        if backup_dir
        else []
    )
    history = fit_model(
        network,
        train_split,
        val_split,
        params.train,
        epochs=params.train.epochs,
        initial_epoch=_restore(network, backup[0]) if backup else 0,
        callbacks=(callbacks or []) + backup,
        verbose=verbose,
        state=backup_dir.with_suffix(".state") if backup_dir else None,
        carry=carry,
        final=final,
    )
    if backup_dir:  # as BackupAndRestore deletes its backup once fit ends
        shutil.rmtree(backup_dir.with_suffix(".state"), ignore_errors=True)
    return network, history


def _restore(network: Any, backup: Any) -> int:
    """Load BackupAndRestore's backup into the network now; return the epoch to resume at.

    fit would load it too, but only after its input pipeline was built, and that pipeline has
    to start at the resumed epoch's batches. Loading twice gives the same weights.
    """
    backup.set_model(network)
    backup.on_train_begin()
    return int(getattr(network, "_initial_epoch", None) or 0)  # where Keras keeps it


# --- scikit-learn's MLP: the classic baseline, one factory for tune (GridSearchCV) and train ---

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
    monitor, names = params.train.early_stopping.monitor, _curve_names(params.dataset.task)
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


def flat_rows(x: np.ndarray) -> np.ndarray:
    """The MLP's input: one flat row per sample (images and sequences are flattened)."""
    return x.reshape(len(x), -1)


def _curve_names(task: str) -> list[str]:
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
    names = _curve_names(task)
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


def backup_dir_for(params: Params, train_split: Split) -> Path:
    """Where this training backs up its epochs: keyed by its params and a sample of its data,
    so a restart with other params or data starts afresh instead of loading a stale state."""
    digest = hashlib.sha256()
    for section in (params.dataset, params.model, params.train):
        digest.update(section.model_dump_json().encode())
    step = max(1, len(train_split.y) // 1000)
    digest.update(str(train_split.x.shape).encode())
    digest.update(np.ascontiguousarray(train_split.x[::step]).tobytes())
    digest.update(np.ascontiguousarray(train_split.y).tobytes())
    return params.paths.checkpoints / f"train-{digest.hexdigest()[:16]}"


def _read_epoch_log(path: Path) -> pd.DataFrame:
    """Per-epoch logs across restarts: an epoch logged twice (killed before its backup) keeps
    its last row; epochs are numbered from 1."""
    logged = pd.read_csv(path).drop_duplicates(subset="epoch", keep="last")
    return logged.assign(epoch=logged["epoch"] + 1).reset_index(drop=True)


def _remove_backup(backup: Path, epoch_log: Path) -> None:
    """What a finished training leaves (train_model already removed `.state`)."""
    shutil.rmtree(backup, ignore_errors=True)
    epoch_log.unlink(missing_ok=True)
    backup.with_suffix(".run").unlink(missing_ok=True)
    if backup.parent.is_dir() and not any(backup.parent.iterdir()):
        backup.parent.rmdir()


def best_params(params: Params, tune_report: Path) -> Params:
    """params with the winning grid point of `reports/tune.json` applied."""
    return with_overrides(params, read_json(tune_report).get("best_params", {}))


def plot_curves(history: pd.DataFrame) -> Any:
    """Training vs validation curves, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        c
        for c in history.columns
        if not c.startswith("val_") and c not in ("epoch", "learning_rate")
    ]
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=False):
        axis.plot(history["epoch"], history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(history["epoch"], history[f"val_{name}"], label="validation")
        axis.set(title=name, xlabel="epoch")
        axis.legend()
    figure.tight_layout()
    return figure


def _training_run(tune_run_id: str | None, tags: dict[str, str], resumed: str | None) -> Any:
    """Train inside the tuning run that chose the params; or in a new run, linked to it, when
    that run already trained a model or lives in another store (tune.json from git or DVC).
    A training resumed from a backup goes on in the run it was killed in (`resumed`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if resumed:
        try:
            if mlflow.get_run(resumed).info.status != "FINISHED":
                return mlflow.start_run(run_id=resumed, tags=tags)
        except MlflowException:
            pass  # the store was replaced: a new run
    if tune_run_id:
        try:
            trained = "retrain.trained" in mlflow.get_run(tune_run_id).data.tags
        except MlflowException:
            trained = True
        if not trained:
            return mlflow.start_run(run_id=tune_run_id, tags=tags)
        tags = {**tags, "retrain.tune_run_id": tune_run_id}
    return mlflow.start_run(run_name="pipeline", tags=tags)


@dataclass(frozen=True)
class Trained:
    """A fitted model and what the run records about it."""

    network: Any  # a Keras model, or a fitted scikit-learn estimator
    curves: pd.DataFrame  # one row per epoch, numbered from 1
    devices: dict[str, Any]  # what trained it: tagged `train.<key>`, written to run.json
    resumed_at: int = 0
    backup: Path | None = None  # the Keras backup, removed once the model is saved


def _prepare_backup(params: Params, train_split: Split) -> tuple[Path, str | None]:
    """The Keras training's backup folder, and the MLflow run a killed attempt left behind."""
    backup = backup_dir_for(params, train_split)
    epoch_log, run_file = backup.with_suffix(".csv"), backup.with_suffix(".run")
    if not backup.exists():  # a fresh start: epochs from an earlier attempt would mislead
        epoch_log.unlink(missing_ok=True)
        shutil.rmtree(backup.with_suffix(".state"), ignore_errors=True)
    backup.parent.mkdir(parents=True, exist_ok=True)
    return backup, run_file.read_text().strip() if run_file.exists() else None


def _fit_keras(params: Params, splits: tuple[Split, Split], backup: Path) -> Trained:
    """Train the Keras model in the active run: live per-epoch metrics, a resumable backup."""
    import_tensorflow()
    import keras
    import mlflow

    devices = describe_devices() | {"precision": precision_policy(params.train)}
    mlflow.set_tags({f"train.{k}": str(v) for k, v in devices.items()})
    epoch_log = backup.with_suffix(".csv")
    verbose = 1 if sys.stdout.isatty() else 2  # a progress bar, or one line per epoch
    # the epoch log comes before the backup, so a kill between them repeats an epoch's
    # row (deduplicated on reading) rather than losing it
    callbacks = [
        mlflow.keras.MlflowCallback(),
        keras.callbacks.CSVLogger(str(epoch_log), append=True),
    ]
    network, history = train_model(params, *splits, callbacks, verbose, backup_dir=backup)
    resumed_at = history.epoch[0] if history.epoch else 0
    mlflow.set_tag("train.resumed_at_epoch", str(resumed_at))
    return Trained(network, _read_epoch_log(epoch_log), devices, resumed_at, backup)


def _fit_sklearn(params: Params, splits: tuple[Split, Split]) -> Trained:
    """Train scikit-learn's MLP in the active run; its curves are logged as step metrics."""
    import mlflow
    import sklearn

    estimator = "MLPRegressor" if params.dataset.task == "regression" else "MLPClassifier"
    devices = {"device": "CPU", "estimator": estimator, "sklearn": sklearn.__version__}
    mlflow.set_tags({f"train.{k}": str(v) for k, v in devices.items()})
    network, curves = train_sklearn(params, *splits)
    for row in curves.to_dict("records"):
        log.info("train: %s", ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
    _log_curves(curves)
    return Trained(network, curves, devices)


def _log_curves(curves: pd.DataFrame) -> None:
    """Every epoch's values as step metrics of the active run, in one batch (steps from 0, as
    Keras's MlflowCallback logs them)."""
    import mlflow
    from mlflow.entities import Metric

    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("train: no active MLflow run to log the curves to")
    stamp = int(time.time() * 1000)
    metrics = [
        Metric(name, float(value), stamp, int(epoch) - 1)
        for name in curves.columns.drop("epoch")
        for epoch, value in zip(curves["epoch"], curves[name], strict=True)
    ]
    mlflow.MlflowClient().log_batch(active.info.run_id, metrics=metrics)


def _save_model(params: Params, trained: Trained, preprocessor: Any, run_id: str) -> dict[str, Any]:
    """Write `paths.model` (the network's own file and run.json); log the served bundle."""
    from tasks.bundle import log_bundle, raw_features, save_network

    with replace_dir(params.paths.model) as staging:
        network_path = save_network(trained.network, staging)
        example = raw_features(read_data(params.paths.split, "train"), params.dataset.label)[:5]
        info = log_bundle(
            trained.network, preprocessor, network_path, params.paths.preprocessor, example
        )
        summary = {
            "mlflow_run_id": run_id,
            "model_uri": info.model_uri,
            "network": network_path.name,
            "epochs_run": len(trained.curves),
            "resumed_at_epoch": trained.resumed_at,
            **trained.devices,
        }
        write_json(staging / "run.json", summary)
    return summary


def run(params: Params, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Train with the tuned params, log everything to MLflow, write `paths.model`."""
    import mlflow

    from tasks.standardize import load_preprocessor
    from tasks.tracking import start_tracking

    tune_report = params.paths.reports / "tune.json"
    tuned = best_params(params, tune_report)
    on_sklearn = tuned.model.type == "sklearn_mlp"
    if on_sklearn:
        check_sklearn(tuned)  # a setting the MLP cannot honour stops here, before any MLflow run
    splits = (
        load_split(params.paths.processed, "train"),
        load_split(params.paths.processed, "val"),
    )
    preprocessor = load_preprocessor(params.paths.preprocessor)
    start_tracking(params)
    # scikit-learn trains in seconds: no backup to resume from, nor a killed run to go on in
    backup, resumed = (None, None) if on_sklearn else _prepare_backup(tuned, splits[0])
    tune_run_id = read_json(tune_report).get("mlflow_run_id")
    with _training_run(tune_run_id, tags or {}, resumed) as active:
        if backup is not None:
            backup.with_suffix(".run").write_text(active.info.run_id)
        mlflow.log_params(_flat_params(tuned))
        mlflow.set_tag("retrain.trained", "true")
        if backup is None:
            trained = _fit_sklearn(tuned, splits)
        else:
            trained = _fit_keras(tuned, splits, backup)
        mlflow.log_figure(plot_curves(trained.curves), "plots/curves.png")
        summary = _save_model(params, trained, preprocessor, active.info.run_id)
        params.paths.reports.mkdir(parents=True, exist_ok=True)
        trained.curves.to_csv(params.paths.reports / "history.csv", index=False)
    if trained.backup is not None:
        _remove_backup(trained.backup, trained.backup.with_suffix(".csv"))
    resumed_at = f" (resumed at epoch {trained.resumed_at})" if trained.resumed_at else ""
    log.info(
        "train: %d epochs on %s%s, run %s",
        len(trained.curves),
        trained.devices["device"],
        resumed_at,
        summary["mlflow_run_id"],
    )
    return summary


def _flat_params(params: Params) -> dict[str, Any]:
    sections = ("dataset", "ingest", "clean", "split", "standardize", "model", "train")
    flat: dict[str, Any] = {}
    for section in sections:
        for key, value in getattr(params, section).model_dump(mode="json").items():
            flat[f"{section}.{key}"] = value
    return flat


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.train")
