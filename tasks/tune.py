"""tune: grid search over `tune.grid`, each point trained on the training split and scored on
the validation split (the test split is never read here).

Writes `reports/tune.json` (the winning params, the score and the trial table) and
`reports/tune.csv`. Each trial is a nested MLflow run under the pipeline's parent run, which
also holds the trial table; `train` continues in that parent run.

Trials run one by one or in parallel through a Prefect task runner (`tune.runner`: threads,
processes, or a Dask cluster through prefect-dask). Worker processes start once per search,
each with its share of the cores for TensorFlow, talk to this process's Prefect API rather
than starting servers of their own, and (`processes`) map the arrays from files written once
instead of receiving them with every trial. Workers only train and return their curves:
every MLflow call is made by this process with an explicit `MlflowClient`, so a trial never
depends on the fluent active-run stack (thread- and process-local) nor on a worker reaching
the tracking store. `tune.pruning: halving` runs successive halving: every point gets a
small epoch budget, the best 1/eta continue from where they stopped, on the batches the full
grid would have given them (an epoch's order depends on its number only). The best point has the
best `tune.metric`; ties go to the lower validation loss, then to the earlier grid point.
`model.type: sklearn_mlp` tunes scikit-learn's MLP with GridSearchCV on a predefined
train/validation split instead.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import Params, TuneParams, load_params, with_overrides
from tasks.datafiles import write_json
from tasks.runtime import UserError, import_tensorflow, importing, run_entry
from tasks.train import (
    Carry,
    Split,
    fit_model,
    flat_rows,
    load_split,
    random_state_variables,
    sklearn_estimator,
    sklearn_point,
    train_model,
)

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


def grid_points(tune: TuneParams) -> list[dict[str, Any]]:
    """Every combination of the grid's axes ([{}] for an empty grid)."""
    axes = list(tune.grid)
    return [
        dict(zip(axes, values, strict=True)) for values in itertools.product(*tune.grid.values())
    ]


def minimize(metric: str) -> bool:
    return any(word in metric for word in ("loss", "mae", "mse", "error"))


def score_history(history: dict[str, list[float]], metric: str) -> float:
    """The best value of metric over the epochs."""
    if metric not in history:
        raise KeyError(f"tune.metric {metric!r} is not one of {sorted(history)}")
    values = history[metric]
    return float(min(values) if minimize(metric) else max(values))


def _limit_threads(threads: int | None) -> None:
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


@contextmanager
def _splits_on_disk(splits: tuple[Split, Split] | None) -> Iterator[str | None]:
    """The (train, val) arrays written once as .npy files, for process workers to map.

    Passing them as the workers' start-up arguments instead would make the parent wait for
    each worker to import Prefect before it can start the next (a spawned worker reads its
    arguments while unpickling them, and the arrays do not fit in the pipe's buffer).
    """
    if splits is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="tune-splits-") as folder:
        for name, split in zip(SPLIT_NAMES, splits, strict=True):
            np.save(Path(folder) / f"{name}-x.npy", split.x)
            np.save(Path(folder) / f"{name}-y.npy", split.y)
        yield folder


def start_worker(threads: int, folder: str | None) -> None:
    """Set up a `processes` worker once, before its first trial: TF limited to its share of
    the cores and imported, and the (train, val) arrays mapped from `folder`, so that jobs
    need not carry them."""
    # importing() freezes what the imports built, sparing every later collection and the
    # worker's exit (about 0.7 s with TensorFlow loaded) from scanning it again
    with importing():
        _limit_threads(threads)
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


def _from_bytes(weights: bytes, random_states: list[np.ndarray] | None = None) -> Any:
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trial.keras"
        path.write_bytes(weights)
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
        _limit_threads(job.threads)
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
                network = _from_bytes(network, job.carry.random if job.carry else None)
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


def train_trial_remotely(job: TrialJob) -> TrialResult:
    """train_trial in a worker process: the model it keeps travels back as .keras bytes."""
    result = train_trial(job)
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


def rank_key(metric: str) -> Callable[[Trial], tuple[float, float]]:
    """Sort key, best trial first: the score, then the lower validation loss.

    A small validation split often gives several points the same accuracy (1.0 on digits);
    the loss says which of them fits the validation data better. Points tied on both keep
    grid order (sorting and min are stable).
    """
    sign = 1 if minimize(metric) else -1
    return lambda t: (sign * t.score, t.val_loss if math.isfinite(t.val_loss) else math.inf)


def pick_best(trials: Iterable[Trial], metric: str) -> Trial:
    """The trial with the best score; ties go to the lower validation loss, then the earlier
    grid point."""
    scored = [t for t in trials if t.status == "ok"]
    if not scored:
        raise RuntimeError("tune: every trial failed; see reports/tune.json")
    return min(scored, key=rank_key(metric))


# --- runners: map a list of jobs to their results, in order ---------------------------------

TrialMap = Callable[[list[TrialJob]], list[TrialResult]]


def run_sequentially(jobs: list[TrialJob]) -> list[TrialResult]:
    return [train_trial(job) for job in jobs]


def _task_runner(tune: TuneParams, folder: str | None) -> Any:
    """The Prefect task runner `tune.runner` names; process workers map the splits in folder."""
    if tune.runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=tune.workers)
    if tune.runner == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(
            max_workers=tune.workers,
            initializer=start_worker,
            initargs=(max(1, _cores() // tune.workers), folder),
        )
    from prefect_dask import DaskTaskRunner

    if tune.dask_address:
        return DaskTaskRunner(address=tune.dask_address)
    local = {"n_workers": tune.workers, "threads_per_worker": 1, "processes": True}
    return DaskTaskRunner(cluster_kwargs={**local, "dashboard_address": None})


def _cores() -> int:
    return len(os.sched_getaffinity(0))  # the cores this process may use, not the machine's


def worker_threads(tune: TuneParams) -> int | None:
    """TF threads per trial set by the job: a local Dask worker's share of the cores (None:
    in-process runners keep TF's default, process workers set theirs when they start)."""
    if tune.runner != "dask" or tune.dask_address:
        return None
    return max(1, _cores() // tune.workers)


@contextmanager
def _shared_prefect_api() -> Iterator[None]:
    """Point the runner's workers at this process's Prefect API.

    Without PREFECT_API_URL, every worker process would start a temporary Prefect server of
    its own before its first trial (about 6 s each, plus a server process per worker taking
    CPU from the trials); the URL travels to the workers in the runner's settings context.
    Not for an existing Dask cluster, whose workers may not reach this machine's 127.0.0.1.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    # starts this process's temporary server if need be; the client is only asked its URL
    url = str(get_client(sync_client=True).api_url).rstrip("/")
    with temporary_settings({PREFECT_API_URL: url}):
        yield


@contextmanager
def open_runner(tune: TuneParams, splits: tuple[Split, Split] | None = None) -> Iterator[TrialMap]:
    """A TrialMap for `tune.runner`, kept open across halving rungs (workers start once).

    With `processes`, each worker process receives `splits` once when it starts, and jobs on
    those very splits are sent without their arrays.
    """
    if tune.runner == "sequential":
        yield run_sequentially
        return
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    remote = tune.runner != "threads"
    trial = train_trial_remotely if remote else train_trial
    trial_task = task(name="tune-trial", cache_policy=NO_CACHE)(trial)
    held = splits if tune.runner == "processes" else None
    with (
        _shared_prefect_api() if not tune.dask_address else nullcontext(),
        _splits_on_disk(held) as folder,
        _task_runner(tune, folder) as runner,
    ):

        def run_parallel(jobs: list[TrialJob]) -> list[TrialResult]:
            light = [replace(j, splits=None) if held and j.splits is held else j for j in jobs]
            futures = [runner.submit(trial_task, parameters={"job": job}) for job in light]
            return [future.result() for future in futures]

        yield run_parallel


# --- search: the full grid, or successive halving ------------------------------------------


@dataclass
class TrialLog:
    """Each grid point's accumulated curves and, with a client, its nested MLflow run."""

    client: Any = None
    experiment_id: str = ""
    parent_id: str = ""
    run_ids: dict[str, str] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def start(self, point: dict[str, Any], extra: dict[str, Any]) -> None:
        if self.client is None:
            return
        from mlflow.entities import Param

        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial {point}",
            tags={"mlflow.parentRunId": self.parent_id},
        )
        self.run_ids[str(point)] = run.info.run_id
        values = {**point, **extra}
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in values.items()])

    def record(self, result: TrialResult, metric: str) -> Trial:
        """Add this rung's epochs to the point's curves (and nested run); score the point."""
        key = str(result.point)
        before = self.curves.get(key, {})
        done = len(next(iter(before.values()), []))
        merged = {k: before.get(k, []) + v for k, v in result.history.items()}
        self.curves[key] = merged
        trial = to_trial(TrialResult(result.point, merged, result.error), metric)
        if self.client is not None:
            self._log_curves(key, result, done, trial)
        return trial

    def _log_curves(self, key: str, result: TrialResult, done: int, trial: Trial) -> None:
        from mlflow.entities import Metric, RunTag

        rows = [
            Metric(name, value, 0, done + step)
            for name, values in result.history.items()
            for step, value in enumerate(values)
        ]
        tags = []
        if trial.status == "ok":
            rows.append(Metric("score", trial.score, 0, trial.epochs))
        if result.tf_threads is not None:
            tags.append(RunTag("tune.tf_threads", str(result.tf_threads)))
        self.client.log_batch(self.run_ids[key], metrics=rows, tags=tags)

    def finish(self, trial: Trial, pruned: bool) -> None:
        if self.client is None:
            return
        run_id = self.run_ids[str(trial.point)]
        tags = {"tune.pruned": str(pruned).lower(), "tune.epochs_trained": str(trial.epochs)}
        for name, value in {**tags, **({"error": trial.error} if trial.error else {})}.items():
            self.client.set_tag(run_id, name, value)
        self.client.set_terminated(run_id, "FINISHED" if trial.status == "ok" else "FAILED")


def halving_rungs(n_points: int, max_epochs: int, eta: int) -> list[tuple[int, int]]:
    """(points trained, cumulative epochs) per rung: each rung keeps the best 1/eta and
    trains them eta times longer; the last rung trains eta finalists to max_epochs.

    Plain successive halving ends with one point trained on alone, so its winner is chosen
    at the previous rung's budget, and which of two close points is ahead can change with
    more epochs. Finishing eta of them picks the winner on full-length training, as the
    full grid does (8 points, 48 epochs, eta 2: 2.7x fewer epochs than the grid, not 3.2x).
    """
    count = min(int(math.log(n_points, eta) + 1e-9), int(math.log(max_epochs, eta) + 1e-9))
    rungs = [
        (max(1, n_points // eta**i), max(1, max_epochs // eta ** (count - i)))
        for i in range(count + 1)
    ]
    if count >= 1:
        rungs[-1] = (min(n_points, eta), max_epochs)
        if rungs[-2][0] <= rungs[-1][0]:  # a rung that would prune nothing
            del rungs[-2]
    return rungs


def search(
    params: Params,
    points: list[dict[str, Any]],
    splits: tuple[Split, Split],
    run: TrialMap = run_sequentially,
    trial_log: TrialLog | None = None,
) -> tuple[list[Trial], int]:
    """Run the grid (or successive halving over it); return (trials, epochs trained in all).

    Halving's survivors continue from their trained models, so a point that reaches the last
    rung has trained tune.epochs in all, on the same batches as in the full grid: run where
    training is deterministic (one process, fixed threads), it ends with the full grid's score.
    """
    tune, trial_log = params.tune, trial_log or TrialLog()
    full = [(len(points), tune.epochs)]
    rungs = halving_rungs(len(points), tune.epochs, tune.eta) if tune.pruning == "halving" else full
    latest: dict[str, Trial] = {}
    models: dict[str, Any] = {str(p): None for p in points}
    carries: dict[str, Carry | None] = {str(p): None for p in points}
    stopped: set[str] = set()  # stopped early: they keep their score and train no further
    alive, done, trained = list(points), 0, 0
    for index, (_, epochs) in enumerate(rungs):
        last = index == len(rungs) - 1
        jobs = [
            TrialJob(
                params,
                p,
                epochs - done,
                splits,
                models[str(p)],
                not last,
                worker_threads(tune),
                start=done,
                carry=carries[str(p)],
            )
            for p in alive
            if str(p) not in stopped
        ]
        for result in run(jobs):
            key = str(result.point)
            models[key], carries[key] = result.model, result.carry
            if result.stopped:
                stopped.add(key)
            latest[key] = trial = trial_log.record(result, tune.metric)
            trained += max(trial.epochs - done, 0)
        ranked = sorted(_ok(latest, alive), key=rank_key(tune.metric))
        keep = ranked if last else ranked[: rungs[index + 1][0]]
        for trial in (latest[str(p)] for p in alive):
            if last or trial not in keep:
                trial_log.finish(trial, pruned=not last and trial.status == "ok")
        alive, done = [t.point for t in keep], epochs
        models = {str(p): models[str(p)] for p in alive}  # let the pruned models go
        log.info(
            "tune: rung %d/%d at %d epochs, %d go on", index + 1, len(rungs), epochs, len(alive)
        )
    return [latest[str(p)] for p in points], trained


def _ok(latest: dict[str, Trial], alive: list[dict[str, Any]]) -> list[Trial]:
    return [latest[str(p)] for p in alive if latest[str(p)].status == "ok"]


# --- scikit-learn baseline: GridSearchCV on the predefined train/validation split ----------


def sklearn_scoring(metric: str, task: str) -> str:
    """The scikit-learn scorer for a Keras-style `val_*` metric (higher is better)."""
    name = metric.removeprefix("val_")
    scorers = {
        "accuracy": "accuracy",
        "loss": "neg_log_loss" if task == "classification" else "neg_mean_squared_error",
        "mae": "neg_mean_absolute_error",
        "mse": "neg_mean_squared_error",
    }
    if name not in scorers:
        raise UserError(f"tune.metric {metric!r} has no scikit-learn scorer; use {sorted(scorers)}")
    return scorers[name]


def search_sklearn(
    params: Params, points: list[dict[str, Any]], splits: tuple[Split, Split]
) -> list[Trial]:
    """GridSearchCV over the points with one fold: fit on train, score on validation."""
    from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    train_split, val_split = splits
    x = np.concatenate([flat_rows(s.x) for s in splits])
    y = np.concatenate([train_split.y, val_split.y])
    fold = np.r_[np.full(len(train_split.y), -1), np.zeros(len(val_split.y))]
    grid = [{k: [v] for k, v in sklearn_point(p).items()} for p in points]
    tune = params.tune
    search_cv = GridSearchCV(
        sklearn_estimator(with_overrides(params, {"train.epochs": tune.epochs})),
        grid,
        scoring=sklearn_scoring(tune.metric, params.dataset.task),
        cv=PredefinedSplit(fold),
        n_jobs=None if tune.runner == "sequential" else tune.workers,
        error_score=np.nan,
        refit=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("always", FitFailedWarning)
        search_cv.fit(x, y)
    failures = [str(w.message).strip().splitlines()[-1] for w in caught if _failed(w)]
    error = f"fit failed: {failures[-1] if failures else 'see the log'}"
    sign = -1 if minimize(tune.metric) else 1
    return [
        Trial(p, sign * float(score), tune.epochs, "ok")
        if np.isfinite(score)
        else Trial(p, math.nan, 0, "failed", error)
        for p, score in zip(points, search_cv.cv_results_["mean_test_score"], strict=True)
    ]


def _failed(caught: warnings.WarningMessage) -> bool:
    from sklearn.exceptions import FitFailedWarning

    return issubclass(caught.category, FitFailedWarning)


# --- the file adapter -----------------------------------------------------------------------


def tune_trials(
    params: Params, splits: tuple[Split, Split], trial_log: TrialLog, runner: TrialMap | None
) -> tuple[list[Trial], int]:
    """The trials of the grid, by the configured model type, runner and pruning."""
    points = grid_points(params.tune)
    for point in points:
        trial_log.start(point, {"tune.epochs": params.tune.epochs})
    if params.model.type == "sklearn_mlp":
        trials = search_sklearn(params, points, splits)
        for trial in trials:
            curves = {params.tune.metric: [trial.score]} if trial.status == "ok" else {}
            trial_log.record(TrialResult(trial.point, curves, trial.error), params.tune.metric)
            trial_log.finish(trial, pruned=False)
        return trials, sum(t.epochs for t in trials)
    if params.tune.runner in ("sequential", "threads") or runner is not None:
        import_tensorflow()  # trials train in this process (worker processes import their own)
    if runner is not None:
        return search(params, points, splits, runner, trial_log)
    with open_runner(params.tune, splits) as run_map:
        return search(params, points, splits, run_map, trial_log)


def run(
    params: Params, tags: dict[str, str] | None = None, runner: TrialMap | None = None
) -> dict[str, Any]:
    """Run the grid inside a new pipeline MLflow run; write reports/tune.{json,csv}.

    runner maps trial jobs to results; by default the one `tune.runner` names.
    """
    import mlflow

    from tasks.tracking import start_tracking, tracking_uri

    splits = (
        load_split(params.paths.processed, "train"),
        load_split(params.paths.processed, "val"),
    )
    experiment_id = start_tracking(params)
    client = mlflow.MlflowClient(tracking_uri(params.paths.mlruns))
    started = time.perf_counter()
    with mlflow.start_run(run_name="pipeline", tags=tags) as parent:
        trial_log = TrialLog(client, experiment_id, parent.info.run_id)
        trials, trained = (
            tune_trials(params, splits, trial_log, runner) if params.tune.grid else ([], 0)
        )
        report = _report(params, parent.info.run_id, trials, trained, time.perf_counter() - started)
        _log_parent(params.tune, report)
    write_json(params.paths.reports / "tune.json", report)
    pd.DataFrame(report["trials"]).to_csv(params.paths.reports / "tune.csv", index=False)
    log.info(
        "tune: %d trials (%d epochs in %.1f s), best %s = %s with %s",
        len(trials),
        trained,
        report["seconds"],
        params.tune.metric,
        report["best_score"],
        report["best_params"],
    )
    return report


def _report(
    params: Params, run_id: str, trials: list[Trial], trained: int, seconds: float
) -> dict[str, Any]:
    best = pick_best(trials, params.tune.metric) if trials else None
    tune = params.tune
    return {
        "mlflow_run_id": run_id,
        "metric": tune.metric,
        "best_params": best.point if best else {},
        "best_score": best.score if best else None,
        "runner": tune.runner,
        "pruning": tune.pruning,
        "epochs_trained": trained,
        "seconds": round(seconds, 2),
        "trials": [{**t.point, **asdict(t)} for t in trials],
    }


def _log_parent(tune: TuneParams, report: dict[str, Any]) -> None:
    """The trial table, the winner and the search's cost on the pipeline run."""
    import mlflow

    mlflow.set_tags({"tune.runner": tune.runner, "tune.pruning": tune.pruning})
    if not report["trials"]:
        return
    table = pd.DataFrame(report["trials"]).drop(columns="point").astype(str)
    mlflow.log_table(table, "tune/trials.json")
    mlflow.log_metrics(
        {
            f"tune_best_{tune.metric}": report["best_score"],
            "tune_epochs_trained": report["epochs_trained"],
            "tune_seconds": report["seconds"],
        }
    )
    mlflow.set_tag("tune.best_params", str(report["best_params"]))


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.tune")
