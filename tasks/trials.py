"""One grid point's trial: the job a worker gets, the training it does (from scratch, or on
from a model halving kept), and the result it returns, scored on the validation metric.

Workers only train and return their curves: every MLflow call is made by the searching
process (see `tasks.search`). A `processes` worker is set up once (`start_worker`): TF
limited to its share of the cores, and the (train, val) arrays mapped from files.
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tasks.callbacks import Carry, random_state_variables
from tasks.config import Params, TrainParams, with_overrides
from tasks.datafiles import Split
from tasks.devices import distribution_strategy
from tasks.fitting import fit_model, train_model
from tasks.metrics import minimize
from tasks.runtime import import_tensorflow, importing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    point: dict[str, Any]
    score: float
    epochs: int
    status: str
    error: str | None = None
    val_loss: float = math.nan  # the lowest validation loss over the epochs: breaks score ties


@dataclass(frozen=True)
class TrialJob:
    """One unit of work for a worker: train `point` for `epochs` more epochs."""

    params: Params
    point: dict[str, Any]
    epochs: int
    splits: tuple[Split, Split] | None  # None: the (train, val) its worker process started with
    model: Any = None  # the Keras model to continue (halving); its .keras bytes across processes
    keep_model: bool = False
    threads: int | None = None  # TF threads in a Dask worker (process workers set theirs once)
    start: int = 0  # epochs `model` has trained already (halving's earlier rungs)
    carry: Carry | None = None  # its callbacks' state at the end of those epochs


@dataclass(frozen=True)
class TrialResult:
    point: dict[str, Any]
    history: dict[str, list[float]]
    error: str | None = None
    model: Any = None  # with keep_model: the trained Keras model (.keras bytes from a worker)
    tf_threads: int | None = None  # TF's intra-op threads where it trained (0: TF's default)
    carry: Carry | None = None  # with keep_model: its callbacks' state, for the next rung
    stopped: bool = False  # early stopping ended it: it trains no further
    worker: str | None = None  # the Dask worker that trained it (its address)


def score_history(history: dict[str, list[float]], metric: str) -> float:
    """The best value of metric over the epochs."""
    if metric not in history:
        raise KeyError(f"tune.metric {metric!r} is not one of {sorted(history)}")
    values = history[metric]
    return float(min(values) if minimize(metric) else max(values))


def limit_threads(threads: int | None) -> None:
    """Keep parallel trials from fighting over the cores (only before TF starts its pools)."""
    if threads is None:
        return
    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF already initialised in this worker: keep its pools
        pass


_WORKER: dict[str, Any] = {}  # a process worker's own state, set once by start_worker


SPLIT_NAMES = ("train", "val")


def start_worker(threads: int, folder: str | None) -> None:
    """Set up a `processes` worker once, before its first trial: TF limited to its share of
    the cores and imported, and the (train, val) arrays mapped from `folder`, so that jobs
    need not carry them."""
    # importing() freezes what the imports built, sparing every later collection and the
    # worker's exit (about 0.7 s with TensorFlow loaded) from scanning it again
    with importing():
        limit_threads(threads)
        import keras  # noqa: F401  (imported here once, not inside the first trial)
    if folder is not None:
        _WORKER["splits"] = tuple(
            Split(
                np.load(Path(folder) / f"{name}-x.npy", mmap_mode="r"),
                np.load(Path(folder) / f"{name}-y.npy", mmap_mode="r"),
            )
            for name in SPLIT_NAMES
        )


def _job_splits(job: TrialJob) -> tuple[Split, Split]:
    if job.splits is not None:
        return job.splits
    if "splits" not in _WORKER:
        raise RuntimeError("a trial job without arrays ran outside a started worker process")
    splits: tuple[Split, Split] = _WORKER["splits"]
    return splits


def _to_bytes(network: Any) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trial.keras"
        network.save(path)
        return path.read_bytes()


def _from_bytes(
    weights: bytes, train: TrainParams, random_states: list[np.ndarray] | None = None
) -> Any:
    """The model of a .keras file, on the devices train_model would build it on."""
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trial.keras"
        path.write_bytes(weights)
        with distribution_strategy(train).scope():
            network = keras.models.load_model(path)
    if random_states is not None:
        for variable, value in zip(random_state_variables(network), random_states, strict=True):
            variable.assign(value)
    return network


def train_trial(job: TrialJob) -> TrialResult:
    """Train one grid point (from scratch, or on from a model); never raises.

    A model continued in the same process keeps its traced training step (about 0.7 s per
    job saved on small models); one from bytes is traced again.
    """
    try:
        limit_threads(job.threads)
        train_split, val_split = _job_splits(job)
        trial_params = with_overrides(job.params, {**job.point, "train.epochs": job.epochs})
        # a rung that others follow hands its callbacks' state on and keeps its last weights
        carry, final = replace(job.carry or Carry()), not job.keep_model
        if job.model is None:
            network, history = train_model(
                trial_params, train_split, val_split, carry=carry, final=final
            )
        else:
            network = job.model
            if isinstance(network, bytes):
                network = _from_bytes(
                    network, trial_params.train, job.carry.random if job.carry else None
                )
            history = fit_model(
                network,
                train_split,
                val_split,
                trial_params.train,
                epochs=job.start + job.epochs,
                initial_epoch=job.start,
                carry=carry,
                final=final,
            )
        curves = {k: [float(v) for v in values] for k, values in history.history.items()}
        threads = import_tensorflow().config.threading.get_intra_op_parallelism_threads()
        stopped = bool(network.stop_training)  # set by early stopping, on any epoch
        kept = network if job.keep_model and not stopped else None
        return TrialResult(job.point, curves, None, kept, threads, carry if kept else None, stopped)
    except Exception as error:  # one failed trial must not sink the search
        log.warning("tune: trial %s failed: %s", job.point, error)
        return TrialResult(job.point, {}, f"{type(error).__name__}: {error}")


def dask_worker() -> str | None:
    """The address of the Dask worker this runs on (None outside one)."""
    distributed = sys.modules.get("distributed")  # never imported outside a Dask worker
    if distributed is None:
        return None
    try:
        return str(distributed.get_worker().address)
    except ValueError:  # distributed imported, but this is no worker's task
        return None


def train_trial_remotely(job: TrialJob) -> TrialResult:
    """train_trial in a worker process: the model it keeps travels back as .keras bytes."""
    result = replace(train_trial(job), worker=dask_worker())
    if result.model is None:
        return result
    try:
        # a .keras file leaves the dropout/augmentation generators at their start: send them
        states = [np.asarray(v) for v in random_state_variables(result.model)]
        carry = replace(result.carry or Carry(), random=states)
        return replace(result, model=_to_bytes(result.model), carry=carry)
    except Exception as error:  # like a failed trial: recorded, and the search goes on
        log.warning("tune: trial %s could not be saved: %s", job.point, error)
        return TrialResult(job.point, {}, f"{type(error).__name__}: {error}")


def to_trial(result: TrialResult, metric: str) -> Trial:
    """Score a trial's (accumulated) curves on the validation metric."""
    if result.error is not None:
        return Trial(result.point, math.nan, 0, "failed", result.error)
    try:
        score = score_history(result.history, metric)
    except KeyError as error:
        return Trial(result.point, math.nan, 0, "failed", f"KeyError: {error}")
    epochs = len(next(iter(result.history.values()), []))
    losses = result.history.get("val_loss") or [math.nan]
    return Trial(result.point, score, epochs, "ok", val_loss=min(losses))


def run_trial(params: Params, point: dict[str, Any], train_split: Split, val_split: Split) -> Trial:
    """Train one grid point for tune.epochs and score it on the validation split."""
    job = TrialJob(params, point, params.tune.epochs, (train_split, val_split))
    return to_trial(train_trial(job), params.tune.metric)


TrialMap = Callable[[list[TrialJob]], list[TrialResult]]


def run_sequentially(jobs: list[TrialJob]) -> list[TrialResult]:
    return [train_trial(job) for job in jobs]
