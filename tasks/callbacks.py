"""Keras callbacks that survive a restart: early stopping and plateau decay whose counters
are saved after every epoch (or handed from one fit to the next, for halving's rungs), and the
random generators' states (dropout, augmentation), so a resumed training goes on exactly as
an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.config import EarlyStopping
from tasks.datafiles import read_json, replace_file, write_json


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


def epoch_logger() -> Any:
    """MLflow's Keras callback (the epoch's metrics in one call), with one name per metric:
    its `on_test_end` would log every validation score again as `validation_<name>`."""
    import mlflow.keras

    class EpochLogger(mlflow.keras.MlflowCallback):  # type: ignore[misc,name-defined]
        def on_test_end(self, logs: Any = None) -> None:
            pass

    return EpochLogger()
