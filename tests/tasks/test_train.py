from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from keras.callbacks import Callback

from tasks.callbacks import Carry, early_stopping
from tasks.config import ModelParams, Params, TrainParams, parse_params, with_overrides
from tasks.datafiles import Split
from tasks.devices import describe_devices, precision_policy
from tasks.fitting import fit_model, train_model
from tasks.models import build_model, build_optimizer, head_for
from tasks.resume import backup_dir_for
from tasks.runtime import UserError
from tasks.sklearn_mlp import sklearn_estimator, train_sklearn


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


def _images(n: int = 48, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    return Split(rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, 3, n))


AUGMENT = {"rotation": 0.1, "translation": 0.2, "zoom": 0.2}
SMALL_CNN = {"type": "cnn", "conv_filters": [4], "hidden_units": [8], "dropout": 0.0}


def test_augmentation_changes_training_inputs_but_not_predictions() -> None:
    network = build_model(
        ModelParams(**SMALL_CNN),  # type: ignore[arg-type]
        TrainParams(augmentation=AUGMENT),  # type: ignore[arg-type]
        (8, 8, 1),
        head_for("classification", 3),
    )
    augmenting = [layer for layer in network.layers if layer.name.startswith("random_")]
    assert {type(layer).__name__ for layer in augmenting} == {
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
    }
    images = _images().x
    for layer in augmenting:
        assert not np.allclose(np.asarray(layer(images, training=True)), images)
        np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    # no dropout here: any training-mode randomness comes from the augmentation
    assert not np.allclose(network(images, training=True), network(images, training=True))
    first = network.predict(images, verbose=0)
    np.testing.assert_array_equal(first, network.predict(images, verbose=0))
    np.testing.assert_allclose(first, np.asarray(network(images, training=False)), rtol=1e-6)


def test_augmentation_off_adds_no_layers_and_needs_images_when_on() -> None:
    plain = build_model(
        ModelParams(**SMALL_CNN),  # type: ignore[arg-type]
        TrainParams(),
        (8, 8, 1),
        head_for("classification", 3),
    )
    assert not [layer for layer in plain.layers if layer.name.startswith("random_")]
    with pytest.raises(UserError, match="augmentation needs images"):
        build_model(
            ModelParams(type="dense"),
            TrainParams(augmentation={"zoom": 0.1}),  # type: ignore[arg-type]
            (12,),
            head_for("regression", 0),
        )


@pytest.fixture
def op_determinism() -> Iterator[None]:
    """Op determinism is process-wide: switch it off again for the tests that follow."""
    yield
    from tensorflow.python.framework import config  # no public way back

    config.disable_op_determinism()


def _small_training(seed: int, epochs: int = 3, **train: object) -> Params:
    return parse_params(
        {
            "model": SMALL_CNN,
            "train": {
                **train,
                "epochs": epochs,
                "batch_size": 8,
                "seed": seed,
                "deterministic": True,
                "augmentation": AUGMENT,
                "early_stopping": {"patience": epochs},
            },
        }
    )


def test_deterministic_training_repeats_exactly(op_determinism: None) -> None:
    train_split, val_split = _images(48, 1), _images(16, 2)
    runs = [train_model(_small_training(seed), train_split, val_split)[1] for seed in (7, 7, 8)]
    assert runs[0].history == runs[1].history
    assert runs[0].history != runs[2].history  # the comparison can tell trainings apart
    from tensorflow.python.framework import config

    assert config.is_op_determinism_enabled()


def test_a_model_is_built_from_train_seed_alone() -> None:
    # Prefect's threads or another trial may draw from Python's global random meanwhile
    import random

    params = _small_training(7)
    models = []
    for other in (1, 2):
        random.seed(other)
        np.random.seed(other)
        models.append(
            build_model(params.model, params.train, (8, 8, 1), head_for("classification", 3))
        )
    assert _same(models[0].get_weights(), models[1].get_weights())
    states = [[np.asarray(v) for v in m.variables if "seed_generator" in v.path] for m in models]
    assert len(states[0]) >= 3 and _same(*states)  # dropout and augmentation seeds too
    reseeded = _small_training(8)
    other = build_model(reseeded.model, reseeded.train, (8, 8, 1), head_for("classification", 3))
    assert not _same(models[0].get_weights(), other.get_weights())


def test_mixed_precision_only_where_a_gpu_is() -> None:
    import tensorflow as tf

    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert precision_policy(TrainParams()) == "float32"
    expected = "mixed_float16" if on_gpu else "float32"
    assert precision_policy(TrainParams(mixed_precision=True)) == expected
    assert describe_devices(TrainParams())["replicas"] == max(
        1, len(tf.config.list_physical_devices("GPU"))
    )


@pytest.fixture
def float32_after() -> Iterator[None]:
    """The precision policy is process-wide: put float32 back for the tests that follow."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


def _digits(rows: slice) -> Split:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[..., None] / 16.0).astype("float32")
    return Split(images[rows], digits.target[rows].astype("int64"))


def test_mixed_precision_computes_in_float16_and_still_learns(
    monkeypatch: pytest.MonkeyPatch, float32_after: None
) -> None:
    # no GPU here, so the policy precision_policy refuses on a CPU is forced
    monkeypatch.setattr("tasks.fitting.precision_policy", lambda train: "mixed_float16")
    params = parse_params(
        {
            "model": {**SMALL_CNN, "conv_filters": [8, 16], "hidden_units": [32]},
            "train": {"epochs": 4, "learning_rate": 0.003, "early_stopping": {"patience": 4}},
        }
    )
    network, history = train_model(params, _digits(slice(0, 1200)), _digits(slice(1200, 1500)))
    *body, output = network.layers
    assert {layer.compute_dtype for layer in body} == {"float16"}
    assert network.layers[0].output.dtype == "float16"
    assert (output.compute_dtype, output.variable_dtype) == ("float32", "float32")
    assert {w.dtype for w in network.trainable_weights} == {"float32"}
    assert network.predict(_digits(slice(1500, 1510)).x, verbose=0).dtype == np.float32
    import keras

    assert isinstance(network.optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(network.optimizer.dynamic_scale) > 1  # losses are scaled up, not left as is
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    assert history.history["val_accuracy"][-1] > 0.9


def test_more_cpu_replicas_than_a_started_runtime_has_warn_and_train_on_those(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("train.cpu_replicas is for machines without a GPU")
    tf.constant(1.0) + 1  # the runtime has started: its devices are fixed from here on
    existing = len(tf.config.list_logical_devices("CPU"))
    with caplog.at_level("WARNING", logger="tasks.devices"):
        devices = [describe_devices(TrainParams(cpu_replicas=existing + 5)) for _ in range(2)]
    assert devices[0]["replicas"] == devices[1]["replicas"] == existing
    warnings = [r.getMessage() for r in caplog.records if r.name == "tasks.devices"]
    assert len(warnings) == 1, warnings
    assert f"train.cpu_replicas {existing + 5}: TensorFlow already started" in warnings[0]
    assert (
        describe_devices(TrainParams(cpu_replicas=1))["strategy"] == "_DefaultDistributionStrategy"
    )


class _StopAt(Callback):  # type: ignore[misc]
    """Fails the training at the start of an epoch, like a crash mid-way."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def test_an_interrupted_training_resumes_from_its_backup_as_if_never_stopped(
    tmp_path: Path, op_determinism: None
) -> None:
    params = _small_training(3, epochs=6, lr_decay="plateau")
    train_split, val_split = _images(48, 1), _images(16, 2)
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="interrupted"):
        train_model(params, train_split, val_split, [_StopAt(4)], backup_dir=backup)
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 4
    resumed, history = train_model(params, train_split, val_split, backup_dir=backup)
    assert history.epoch == [4, 5]
    assert not backup.exists() and not backup.with_suffix(".state").exists()
    # epochs 4 and 5 saw the batches, dropout, augmentation and learning rates of an
    # uninterrupted training
    whole, uninterrupted = train_model(params, train_split, val_split)
    assert {k: v[4:] for k, v in uninterrupted.history.items()} == history.history
    assert _same(resumed.get_weights(), whole.get_weights())


def test_fitting_on_from_an_epoch_gives_the_same_model_as_fitting_at_once(
    op_determinism: None,
) -> None:
    # plateau decay, and a validation loss that gets worse after epoch 1: the first fit must
    # hand on its counters and keep its last weights rather than restore its best ones
    params = _small_training(5, epochs=6, lr_decay="plateau", learning_rate=0.003)
    train_split, val_split = _images(48, 1), _images(16, 2)
    whole, at_once = train_model(params, train_split, val_split)
    assert min(at_once.history["val_loss"][:3]) < at_once.history["val_loss"][2]
    shorter = params.model_copy(update={"train": params.train.model_copy(update={"epochs": 3})})
    carry = Carry()
    network, first = train_model(shorter, train_split, val_split, carry=carry, final=False)
    second = fit_model(
        network, train_split, val_split, params.train, epochs=6, initial_epoch=3, carry=carry
    )
    assert second.epoch == [3, 4, 5]
    joined = {k: first.history[k] + second.history[k] for k in at_once.history}
    assert joined == at_once.history
    assert _same(network.get_weights(), whole.get_weights())  # both back at their best epoch


def test_early_stopping_keeps_its_patience_and_best_weights_across_a_restart(
    tmp_path: Path,
) -> None:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stop = TrainParams().early_stopping.model_copy(update={"patience": 2})
    first = early_stopping(stop, tmp_path)
    first.set_model(model)
    first.on_train_begin()
    best_weights = None
    for epoch, val_loss in enumerate([1.0, 0.5, 0.7]):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        best_weights = model.get_weights() if epoch == 1 else best_weights
        first.on_epoch_end(epoch, {"val_loss": val_loss})
    # a restart: a new callback over the same state, and weights that moved on
    model.set_weights([np.full_like(w, 9) for w in model.get_weights()])
    resumed = early_stopping(stop, tmp_path)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert (resumed.wait, resumed.best, resumed.best_epoch) == (1, 0.5, 1)
    assert _same(resumed.best_weights, best_weights)
    resumed.on_epoch_end(3, {"val_loss": 0.8})  # patience 2 runs out here, not 2 epochs later
    assert model.stop_training
    resumed.on_train_end()
    assert _same(model.get_weights(), best_weights)


def _same(weights: list[np.ndarray], others: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(weights, others, strict=True))


def test_the_backup_is_keyed_by_params_and_data() -> None:
    params, data = _small_training(3), _images(48, 1)
    key = backup_dir_for(params, data)
    assert key == backup_dir_for(params, _images(48, 1))
    assert key.parent == params.paths.checkpoints
    assert key != backup_dir_for(with_overrides(params, {"train.epochs": 4}), data)
    assert key != backup_dir_for(params, _images(48, 5))


# --- scikit-learn's MLP (model.type sklearn_mlp) --------------------------------------------


def _mlp(task: str = "classification", **train: object) -> Params:
    return parse_params(
        {
            "dataset": {"task": task},
            "model": {"type": "sklearn_mlp", "hidden_units": [16], "dropout": 0.0},
            "train": {"learning_rate": 0.01, "batch_size": 32, **train},
        }
    )


def _separable(n: int = 400) -> tuple[Split, Split]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    cut = n * 3 // 4
    return Split(x[:cut], y[:cut]), Split(x[cut:], y[cut:])


def test_one_sklearn_factory_for_tune_and_train() -> None:
    params = with_overrides(
        _mlp(), {"model.activation": "sigmoid", "model.hidden_units": [8, 4], "train.epochs": 7}
    )
    estimator = sklearn_estimator(params)
    settings = estimator.get_params()
    assert type(estimator).__name__ == "MLPClassifier"
    assert settings["hidden_layer_sizes"] == (8, 4) and settings["activation"] == "logistic"
    assert (settings["max_iter"], settings["learning_rate_init"], settings["random_state"]) == (
        7,
        0.01,
        42,
    )
    assert type(sklearn_estimator(_mlp("regression"))).__name__ == "MLPRegressor"


def test_sklearn_mlp_trains_epoch_by_epoch_with_keras_style_curves() -> None:
    params = _mlp(epochs=12, early_stopping={"patience": 12})
    estimator, curves = train_sklearn(params, *_separable())
    assert list(curves.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert curves["epoch"].tolist() == list(range(1, 13))
    assert curves["loss"].tolist() == estimator.loss_curve_  # sklearn's own, one per epoch
    assert curves["loss"].iloc[-1] < curves["loss"].iloc[0]
    assert curves["val_accuracy"].max() > 0.9
    assert estimator.get_params()["random_state"] == 42  # saved with its seed, not a generator


def test_sklearn_mlp_stops_early_and_keeps_its_best_epoch() -> None:
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10)).astype("float32")
    y = rng.integers(0, 2, 300)  # nothing to learn: the validation loss soon only grows
    params = with_overrides(
        _mlp(epochs=60, learning_rate=0.02, early_stopping={"patience": 3}),
        {"model.hidden_units": [64]},
    )
    estimator, curves = train_sklearn(params, Split(x[:200], y[:200]), Split(x[200:], y[200:]))
    best = int(curves["val_loss"].idxmin())
    assert len(curves) == best + 1 + 3 < 60, "stopped `patience` epochs after the best one"
    restored = log_loss(y[200:], estimator.predict_proba(x[200:]))
    assert restored == pytest.approx(curves["val_loss"].min(), rel=1e-5)


def test_sklearn_mlp_flattens_images_and_does_regression() -> None:
    rng = np.random.default_rng(2)
    images = rng.random((80, 4, 4, 1)).astype("float32")
    target = (images.mean(axis=(1, 2, 3)) * 10).astype("float32")
    params = _mlp("regression", epochs=3, early_stopping={"monitor": "val_mae"})
    estimator, curves = train_sklearn(
        params, Split(images[:60], target[:60]), Split(images[60:], target[60:])
    )
    assert list(curves.columns) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert estimator.n_features_in_ == 16 and len(curves) == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"train": {"augmentation": {"zoom": 0.1}}}, "train.augmentation"),
        ({"train": {"optimizer": "rmsprop"}}, "train.optimizer"),
        ({"model": {"activation": "swish"}}, "model.activation"),
        ({"train": {"lr_decay": "plateau"}}, "train.lr_decay"),
        ({"model": {"l1": 0.01}}, "model.l1"),
        ({"train": {"early_stopping": {"monitor": "val_mae"}}}, "train.early_stopping.monitor"),
    ],
)
def test_what_the_sklearn_mlp_cannot_honour_stops_with_its_key(
    change: dict[str, dict[str, object]], key: str
) -> None:
    raw = {"model": {"type": "sklearn_mlp"}, "train": {}}
    for section, values in change.items():
        raw[section] = {**raw[section], **values}
    with pytest.raises(UserError, match=f"^{re.escape(key)} "):
        sklearn_estimator(parse_params(raw))
