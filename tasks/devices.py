"""Where a Keras model trains: every visible GPU, or the CPU split into `train.cpu_replicas`
logical devices; the distribution strategy over them, the precision policy, and what the
MLflow run is tagged with about them.

TensorFlow fixes its logical devices when its runtime starts (its first op), so the CPU is
split by the first training of a process; a later one that asks for more devices than exist
is told so in one warning and trains on those.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from tasks.config import TrainParams
from tasks.runtime import import_tensorflow

log = logging.getLogger(__name__)


def split_cpu(replicas: int) -> int:
    """Split the CPU into `replicas` logical devices if TensorFlow has not started yet; return
    how many of them training uses (fewer, after one warning, when it had already started).

    One replica changes nothing, so the default training is exactly the unsplit one.
    """
    tf = import_tensorflow()
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = len(tf.config.get_logical_device_configuration(cpu) or [cpu])
    if replicas <= configured:
        return replicas
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError:  # the runtime started with `configured` devices and keeps them
        _warn_too_few(replicas, configured)
        return configured
    return replicas


@functools.cache
def _warn_too_few(asked: int, existing: int) -> None:
    log.warning(
        "train.cpu_replicas %d: TensorFlow already started in this process with %d CPU "
        "device(s), which it cannot change; training on %d (run the step in its own process "
        "for %d)",
        asked,
        existing,
        existing,
        asked,
    )


def visible_gpus() -> list[Any]:
    return list(import_tensorflow().config.get_visible_devices("GPU"))


@functools.cache
def _strategy(gpus: int, cpus: int) -> Any:
    """One strategy per device set, reused: a model is built and fitted under the same one."""
    tf = import_tensorflow()
    if gpus > 1:
        return tf.distribute.MirroredStrategy()
    if gpus == 0 and cpus > 1:
        names = [device.name for device in tf.config.list_logical_devices("CPU")[:cpus]]
        return tf.distribute.MirroredStrategy(names)
    return tf.distribute.get_strategy()


def distribution_strategy(train: TrainParams) -> Any:
    """MirroredStrategy over every visible GPU when there are several, over
    `train.cpu_replicas` CPU devices when there is no GPU and it asks for more than one, else
    the default strategy (one device). `train.batch_size` is the global batch."""
    gpus = len(visible_gpus())
    return _strategy(gpus, split_cpu(train.cpu_replicas) if gpus == 0 else 1)


def precision_policy(train: TrainParams) -> str:
    """`mixed_float16` when asked for and a GPU is visible (where it pays off), else float32."""
    if not train.mixed_precision:
        return "float32"
    if visible_gpus():
        return "mixed_float16"
    log.warning("train.mixed_precision: no GPU visible, training in float32")
    return "float32"


def describe_devices(train: TrainParams) -> dict[str, Any]:
    """The device, strategy and TensorFlow version training uses (tagged on every run)."""
    gpus = visible_gpus()
    strategy = distribution_strategy(train)
    return {
        "device": "GPU" if gpus else "CPU",
        "gpus": len(gpus),
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "tensorflow": import_tensorflow().__version__,
    }
