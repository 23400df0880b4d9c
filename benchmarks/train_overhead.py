"""Overhead of our train step against a bare Keras script, on MNIST for 2 epochs.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/train_overhead.py [--epochs 2 --rounds 2]

Set-up (not timed): a temporary project with MNIST in its own split written as the split
stage's arrays, the pipeline's `standardize.run` for the processed arrays and preprocessor,
an empty tune report (train with params.yaml) and the MLflow store created. Then, each in a
fresh child process, timed from start to exit, alternating which goes first in each round:

- ours: `python -m tasks.train` in that project (params, MLflow run with per-epoch metrics,
  device tags, epoch backups, curves figure, saved model, the logged model bundle);
- bare: this script with --bare: load the same processed arrays, build the same network with
  plain Keras, `fit` it for the same epochs and batch size, save it.

Writes benchmarks/results/train_overhead.json with every time, mean(ours)/mean(bare)
(target <= 1.10), each round's ratio, and the seconds each side spent outside Keras' epochs
(process time minus the whole seconds Keras prints per epoch: imports, data, MLflow, saving),
which tells fixed overhead from the machine's noise on a shared CPU.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

import yaml
from train_common import ROOT, mnist_splits, write_result

TARGET = 1.10
BATCH = 128


def prepare(project: Path, epochs: int) -> None:
    """A project with processed MNIST arrays, a preprocessor and an MLflow store."""
    from tasks import standardize
    from tasks.config import parse_params
    from tasks.datafiles import write_data, write_json
    from tasks.tracking import start_tracking

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"] |= {"epochs": epochs, "batch_size": BATCH}
    raw["tune"]["grid"] = {}
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    os.chdir(project)
    params = parse_params(raw)
    for name, arrays in mnist_splits().items():
        write_data(arrays, params.paths.split, name)
    standardize.run(params)
    write_json(params.paths.reports / "tune.json", {})
    start_tracking(params)


def bare(project: Path, epochs: int) -> None:
    """The baseline: the same network and data with plain Keras and nothing else."""
    import keras
    import numpy as np

    data = {n: np.load(project / f"data/processed/{n}.npz") for n in ("train", "val")}
    model = yaml.safe_load((project / "params.yaml").read_text())["model"]
    keras.utils.set_random_seed(42)
    common = {"activation": "relu", "kernel_initializer": "he_normal"}
    layers: list[object] = [keras.Input((28, 28, 1))]
    for filters in model["conv_filters"]:
        layers += [
            keras.layers.Conv2D(filters, model["kernel_size"], padding="same", **common),
            keras.layers.MaxPooling2D(2, padding="same"),
        ]
    layers += [keras.layers.Dropout(model["dropout"]), keras.layers.Flatten()]
    for units in model["hidden_units"]:
        layers += [keras.layers.Dense(units, **common), keras.layers.Dropout(model["dropout"])]
    network = keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax")])
    network.compile(
        keras.optimizers.Adam(0.002), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    network.fit(
        data["train"]["x"],
        data["train"]["y"],
        batch_size=BATCH,
        epochs=epochs,
        validation_data=(data["val"]["x"], data["val"]["y"]),
        verbose=2,
    )
    network.save(project / "bare.keras")


def timed(command: list[str], project: Path, log: Path) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    start = time.perf_counter()
    with log.open("a") as out:
        subprocess.run(command, cwd=project, env=env, stdout=out, stderr=out, check=True)
    return time.perf_counter() - start


def outside_epochs(log: str, total: float) -> float:
    """Seconds of a run not spent in Keras' epochs (Keras prints whole seconds per epoch)."""
    return total - sum(int(s) for s in re.findall(r"^\d+/\d+ - (\d+)s - ", log, re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare(args.bare, args.epochs)
        return
    commands = {
        "ours": [sys.executable, "-m", "tasks.train"],
        "bare": [sys.executable, str(Path(__file__).resolve()), "--bare", ".", "--epochs"],
    }
    commands["bare"].append(str(args.epochs))
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    outside: dict[str, list[float]] = {"ours": [], "bare": []}
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        prepare(project, args.epochs)
        for round_ in range(args.rounds):
            order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
            for side in order:
                log = project / f"{side}-{round_}.log"
                seconds = timed(commands[side], project, log)
                times[side].append(round(seconds, 2))
                outside[side].append(round(outside_epochs(log.read_text(), seconds), 1))
                print(f"round {round_ + 1}: {side} {seconds:.1f} s", flush=True)
        tail = (project / "ours-0.log").read_text().splitlines()[-3:]
    ratio = mean(times["ours"]) / mean(times["bare"])
    write_result(
        "train_overhead",
        {
            "dataset": "MNIST, its own split: 55,000 train / 5,000 validation",
            "epochs": args.epochs,
            "batch_size": BATCH,
            "seconds": times,
            "mean_seconds": {side: round(mean(values), 2) for side, values in times.items()},
            "ratio": round(ratio, 3),
            "ratio_per_round": [round(o / b, 3) for o, b in zip(*times.values(), strict=True)],
            "seconds_outside_epochs": outside,
            "target": TARGET,
            "met": ratio <= TARGET,
            "ours_log_tail": tail,
        },
    )


if __name__ == "__main__":
    main()
