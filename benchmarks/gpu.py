"""GPU readiness, measured: the pipeline's training throughput against a bare Keras loop on the
same GPU and data (goal: ratio >= 0.95), float16 vs float32, and the devices used.

    python benchmarks/gpu.py              # unattended, at most about 5 minutes
    python benchmarks/gpu.py --cpu-check  # the same code on the CPU, tiny, nothing written

Needs TensorFlow with CUDA (`uv sync --extra gpu`). On a machine where TensorFlow sees no GPU
it says so in one line, writes nothing and exits 0; otherwise it writes
benchmarks/results/gpu.json and prints a summary. `--cpu-check` runs every measurement on
360 images for 2 epochs on the CPU (float16 forced, slow there), to check the script where no
GPU is. A run still going at LIMIT_S is cut off, and what was measured is written.

- Data: MNIST-shaped (55,000 training and 5,000 validation images of 28x28), made from
  scikit-learn's bundled digits (upscaled, with a little noise), so nothing is downloaded.
- Model: train_mnist.py's CNN (params.yaml's model and train with OVERRIDES), built by the
  pipeline's own `build_model` in both loops, so only the training loop differs.
- Pipeline: `tasks.fitting.train_model`, as `python -m tasks.train` calls it (per-epoch
  shuffled batches by `tf.data`, early stopping that keeps the best weights, a backup after
  every epoch); MLflow's per-epoch logging is left out.
- Bare Keras: `model.fit(x, y, batch_size, shuffle=True, validation_data=...)` on NumPy arrays.
- Throughput: training images per second over the epochs after the first (which traces and
  autotunes), validation included, in both loops alike; each configuration runs in turns with
  the others, and its best run counts. Both use the first GPU only (the others, if any, are
  hidden), so the comparison is on one device; the pipeline's MirroredStrategy over several
  GPUs is not measured here.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
sys.path.insert(0, str(ROOT))

GOAL = 0.95  # pipeline throughput / bare Keras throughput
BUDGET_S = 240.0  # no further round starts after this long
LIMIT_S = 285  # a run still going then is stopped, and what was measured is written
OVERRIDES = {  # as benchmarks/train_mnist.py
    "model.conv_filters": [32, 64],
    "model.hidden_units": [128],
    "model.dropout": 0.25,
    "train.learning_rate": 0.001,
}


def gpu_or_exit(cpu_check: bool) -> Any:
    """TensorFlow, with only the first GPU visible; one line and exit 0 when there is none."""
    from tasks.runtime import configure, import_tensorflow

    configure()
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if cpu_check:
        force_float16_on_cpu()
        return tf
    if not gpus:
        cuda = tf.test.is_built_with_cuda()
        print(
            f"benchmarks/gpu.py: no GPU visible to TensorFlow {tf.__version__} (built with "
            f"CUDA: {cuda}); nothing measured, nothing written"
        )
        sys.exit(0)
    tf.config.set_visible_devices(gpus[0], "GPU")
    return tf


def force_float16_on_cpu() -> None:
    """For --cpu-check: mixed precision where asked, although the pipeline refuses it on a
    CPU, so that the float16 runs go through the code they take on a GPU."""
    import tasks.devices
    import tasks.fitting

    def policy(train: Any) -> str:
        return "mixed_float16" if train.mixed_precision else "float32"

    tasks.devices.precision_policy = policy
    tasks.fitting.precision_policy = policy


def mnist_like(train_rows: int, val_rows: int) -> tuple[Any, Any]:
    """28x28 images from digits' 8x8 ones (4x upscaled, 2 pixels cropped each side) + noise."""
    from sklearn.datasets import load_digits

    from tasks.datafiles import Split

    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((4, 4)))[:, 2:30, 2:30, None]
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(images), train_rows + val_rows)
    noisy = images[rows] + rng.normal(0, 0.05, (len(rows), 28, 28, 1))
    x, y = np.clip(noisy, 0, 1).astype("float32"), digits.target[rows].astype("int64")
    return Split(x[:train_rows], y[:train_rows]), Split(x[train_rows:], y[train_rows:])


def epoch_clock() -> Any:
    """A Keras callback that keeps the seconds of each epoch (its validation included)."""
    import keras

    class EpochClock(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.started, self.seconds = 0.0, []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    return EpochClock()


def throughput(seconds: list[float], images: int) -> float:
    """Images per second over the epochs after the first (which traces and autotunes)."""
    return images * (len(seconds) - 1) / sum(seconds[1:])


def run_pipeline(params: Any, splits: tuple[Any, Any]) -> tuple[list[float], Any]:
    """train_model, as the train step calls it (backup included); (epoch seconds, model)."""
    from tasks.fitting import train_model

    clock = epoch_clock()
    with tempfile.TemporaryDirectory() as folder:
        network, _ = train_model(params, *splits, [clock], backup_dir=Path(folder) / "backup")
    return clock.seconds, network


def run_bare(params: Any, splits: tuple[Any, Any]) -> tuple[list[float], Any]:
    """The same network, fitted by Keras on NumPy arrays; (epoch seconds, model)."""
    import keras

    from tasks.devices import precision_policy
    from tasks.models import build_model, head_for

    keras.utils.set_random_seed(params.train.seed)
    keras.mixed_precision.set_global_policy(precision_policy(params.train))
    train, val = splits
    network = build_model(
        params.model, params.train, train.x.shape[1:], head_for("classification", 10)
    )
    clock = epoch_clock()
    network.fit(
        train.x,
        train.y,
        batch_size=params.train.batch_size,
        epochs=params.train.epochs,
        validation_data=(val.x, val.y),
        shuffle=True,
        callbacks=[clock],
        verbose=0,
    )
    return clock.seconds, network


def describe(network: Any, params: Any) -> dict[str, Any]:
    """Where the model's variables live and what it computes in."""
    from tasks.devices import describe_devices

    return {
        **describe_devices(params.train),
        "variables_on": sorted({v.value.device for v in network.weights}),
        "policy": network.dtype_policy.name,
        "compute_dtype": network.layers[0].compute_dtype,
        "optimizer": type(network.optimizer).__name__,
    }


class OutOfTime(Exception):
    """LIMIT_S has passed: the script must end within 5 minutes."""


def _out_of_time(signum: int, frame: Any) -> None:
    raise OutOfTime


def measure(configs: dict[str, Any], splits: tuple[Any, Any], rounds: int) -> dict[str, Any]:
    """Each configuration once per round, in turns; no round starts that would end after
    BUDGET_S (judged by the last one), and a run going on at LIMIT_S is cut off."""
    started, runs = time.perf_counter(), {name: [] for name in configs}
    devices: dict[str, Any] = {}
    try:
        for _ in range(rounds):
            round_started = time.perf_counter()
            for name, (loop, params) in configs.items():
                seconds, network = loop(params, splits)
                runs[name].append(round(throughput(seconds, len(splits[0].y)), 1))
                devices.setdefault(name, describe(network, params))
                print(f"{name}: {runs[name][-1]:.0f} images/s", flush=True)
            now = time.perf_counter()
            if now - started + (now - round_started) > BUDGET_S:
                break
    except OutOfTime:
        print(f"stopped at the {LIMIT_S} s limit; writing what was measured", flush=True)
        return {"images_per_second": runs, "devices": devices, "cut_off": True}
    return {"images_per_second": runs, "devices": devices, "cut_off": False}


def gpu_details(tf: Any) -> list[dict[str, Any]]:
    return [
        {"name": gpu.name, **tf.config.experimental.get_device_details(gpu)}
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def summarize(measured: dict[str, Any]) -> dict[str, Any]:
    """Best throughput of each configuration, and the ratios (None where one is missing)."""
    best = {name: max(v) if v else None for name, v in measured["images_per_second"].items()}
    ratios = {
        precision: _ratio(best[f"pipeline {precision}"], best[f"bare {precision}"])
        for precision in ("float32", "float16")
    }
    speedups = {
        loop: _ratio(best[f"{loop} float16"], best[f"{loop} float32"])
        for loop in ("pipeline", "bare")
    }
    return {
        "best_images_per_second": best,
        "pipeline_vs_bare": ratios,
        "goal": GOAL,
        "met": all(ratio is not None and ratio >= GOAL for ratio in ratios.values()),
        "float16_speedup": speedups,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="per run; the first is warm-up")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-check", action="store_true", help="see above")
    args = parser.parse_args()
    if args.cpu_check:
        args.epochs, args.rounds = 2, 1
    began = time.perf_counter()
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(LIMIT_S)
    tf = gpu_or_exit(args.cpu_check)
    from tasks.config import load_params, with_overrides

    base = with_overrides(
        load_params(ROOT / "params.yaml"),
        {
            **OVERRIDES,
            "train.batch_size": args.batch_size,
            "train.epochs": args.epochs,
            "train.early_stopping": {"patience": args.epochs},
        },
    )
    fp16 = with_overrides(base, {"train.mixed_precision": True})
    configs = {
        "pipeline float32": (run_pipeline, base),
        "bare float32": (run_bare, base),
        "pipeline float16": (run_pipeline, fp16),
        "bare float16": (run_bare, fp16),
    }
    splits = mnist_like(300, 60) if args.cpu_check else mnist_like(55000, 5000)
    measured = measure(configs, splits, args.rounds)
    signal.alarm(0)
    result = {
        **summarize(measured),
        **measured,
        "gpus": gpu_details(tf),
        "data": "MNIST-shaped: 55,000 train / 5,000 validation 28x28 images from digits",
        "batch_size": args.batch_size,
        "epochs_per_run": args.epochs,
        "model": base.model.model_dump(mode="json"),
        "tensorflow": tf.__version__,
        "seconds": round(time.perf_counter() - began, 1),
    }
    if not args.cpu_check:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "gpu.json").write_text(json.dumps(result, indent=2) + "\n")
    shown = (
        "pipeline_vs_bare",
        "float16_speedup",
        "met",
        *(("devices",) if args.cpu_check else ()),
    )
    print(json.dumps({key: result[key] for key in shown}, indent=1))


if __name__ == "__main__":
    main()
