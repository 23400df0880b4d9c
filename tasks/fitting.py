"""The Keras training loop: seeded per-epoch batches, fit with the restartable callbacks, on
every visible GPU or the CPU's devices (see `tasks.devices`), with an optional backup to resume
from after a kill.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tasks.callbacks import (
    Carry,
    early_stopping,
    plateau_decay,
    random_states,
    restore_random_states,
)
from tasks.config import Params, TrainParams
from tasks.datafiles import Split, n_classes_of
from tasks.devices import distribution_strategy, precision_policy
from tasks.models import build_model, head_for
from tasks.runtime import import_tensorflow

log = logging.getLogger(__name__)


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


def seed_training(train: TrainParams) -> None:
    """Seed Python, NumPy and TensorFlow; with train.deterministic also make TF ops deterministic.

    Op determinism is process-wide and TensorFlow offers no public way back, so it stays on for
    the rest of the process once a deterministic training ran.
    """
    import keras

    keras.utils.set_random_seed(train.seed)
    if train.deterministic:
        import_tensorflow().config.experimental.enable_op_determinism()


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
    """Build and fit the configured model on the devices of distribution_strategy; return
    (model, history). `carry` and `final` are fit_model's.

    With backup_dir, the state after each epoch is backed up there and a later call with the
    same params resumes from it (history.epoch then starts at the resumed epoch) as if it had
    never stopped: the same batches, dropout and augmentation, early stopping's patience and
    plateau decay's counters; the backup is deleted when fit ends.
    """
    import keras

    strategy = distribution_strategy(params.train)  # first: it may split the CPU, before any op
    seed_training(params.train)
    keras.mixed_precision.set_global_policy(precision_policy(params.train))
    head = head_for(params.dataset.task, n_classes_of(params.dataset.task, train_split, val_split))
    steps = steps_per_epoch(train_split, params.train.batch_size)
    # two generations, so a kill in the middle of writing one still leaves a readable backup
    backup = (
        [keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True)]
        if backup_dir
        else []
    )
    with strategy.scope():  # the optimizer's variables a backup restores are built here too
        network = build_model(params.model, params.train, train_split.x.shape[1:], head, steps)
        initial_epoch = _restore(network, backup[0]) if backup else 0
    history = fit_model(
        network,
        train_split,
        val_split,
        params.train,
        epochs=params.train.epochs,
        initial_epoch=initial_epoch,
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
