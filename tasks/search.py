"""The search over `tune.grid`: the full grid, or successive halving over it, with each grid
point's nested MLflow run (`TrialLog`).

`tune.pruning: halving` gives every point a small epoch budget and lets the best 1/eta
continue from where they stopped, on the batches the full grid would have given them (an
epoch's order depends on its number only). The best point has the best `tune.metric`; ties go
to the lower validation loss, then to the earlier grid point.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tasks.callbacks import Carry
from tasks.config import Params, TuneParams
from tasks.datafiles import Split
from tasks.metrics import minimize
from tasks.runners import worker_threads
from tasks.runtime import UserError
from tasks.tracking import point_label
from tasks.trials import Trial, TrialJob, TrialMap, TrialResult, run_sequentially, to_trial

log = logging.getLogger(__name__)


def grid_points(tune: TuneParams) -> list[dict[str, Any]]:
    """Every combination of the grid's axes ([{}] for an empty grid)."""
    axes = list(tune.grid)
    return [
        dict(zip(axes, values, strict=True)) for values in itertools.product(*tune.grid.values())
    ]


def rank_key(metric: str) -> Callable[[Trial], tuple[float, float]]:
    """Sort key, best trial first: the score, then the lower validation loss.

    A small validation split often gives several points the same accuracy (1.0 on digits);
    the loss says which of them fits the validation data better. Points tied on both keep
    grid order (sorting and min are stable).
    """
    sign = 1 if minimize(metric) else -1
    return lambda t: (sign * t.score, t.val_loss if math.isfinite(t.val_loss) else math.inf)


class TuneFailed(UserError):
    """No trial of the grid succeeded."""


def best_trial(trials: Iterable[Trial], metric: str) -> Trial | None:
    """The trial with the best score (None when none succeeded); ties go to the lower
    validation loss, then the earlier grid point."""
    scored = [t for t in trials if t.status == "ok"]
    return min(scored, key=rank_key(metric)) if scored else None


def pick_best(trials: Iterable[Trial], metric: str) -> Trial:
    """best_trial, or TuneFailed naming the first trial's error when every trial failed."""
    trials = list(trials)
    best = best_trial(trials, metric)
    if best is None:
        first = trials[0] if trials else None
        why = f"; the first, {first.point}: {first.error}" if first else ""
        raise TuneFailed(f"tune: every trial failed ({len(trials)} of {len(trials)}){why}")
    return best


@dataclass
class TrialLog:
    """Each grid point's accumulated curves and, with a client, its nested MLflow run."""

    client: Any = None
    experiment_id: str = ""
    parent_id: str = ""
    run_ids: dict[str, str] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    total: int = 0  # grid points, for `trial 2/4` names
    names: dict[str, str] = field(default_factory=dict)

    def start(self, point: dict[str, Any], extra: dict[str, Any]) -> None:
        name = trial_name(point, len(self.names) + 1, self.total or len(self.names) + 1)
        self.names[str(point)] = name
        if self.client is None:
            return
        from mlflow.entities import Param

        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
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
        if result.worker is not None:  # the last rung's, under halving
            tags.append(RunTag("tune.worker", result.worker))
        self.client.log_batch(self.run_ids[key], metrics=rows, tags=tags)

    def finish(self, trial: Trial, pruned: bool, metric: str = "score") -> None:
        """One line for the trial as it ends; its nested run's tags and status."""
        name = self.names.get(str(trial.point), trial_name(trial.point, 0, 0))
        outcome = f"{metric} {trial.score:.4f}" if trial.status == "ok" else "failed"
        log.info("tune: %s: %s after %d epochs%s", name, outcome, trial.epochs, ", pruned" * pruned)
        if self.client is None:
            return
        from mlflow.entities import RunTag

        tags = {"tune.pruned": str(pruned).lower(), "tune.epochs_trained": str(trial.epochs)}
        tags |= {"error": trial.error} if trial.error else {}
        run_id = self.run_ids[str(trial.point)]
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(run_id, "FINISHED" if trial.status == "ok" else "FAILED")


def trial_name(point: dict[str, Any], number: int, total: int) -> str:
    """`trial 2/4 · lr=0.003 drop=0.1`: readable, and told apart, in the MLflow UI."""
    return (
        f"trial {number}/{total} · {point_label(point)}"
        if number
        else f"trial {point_label(point)}"
    )


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
                trial_log.finish(trial, not last and trial.status == "ok", tune.metric)
        alive, done = [t.point for t in keep], epochs
        models = {str(p): models[str(p)] for p in alive}  # let the pruned models go
        if not last:  # with pruning on: how far the search has got
            log.info(
                "tune: rung %d/%d at %d epochs, %d go on", index + 1, len(rungs), epochs, len(alive)
            )
    return [latest[str(p)] for p in points], trained


def _ok(latest: dict[str, Trial], alive: list[dict[str, Any]]) -> list[Trial]:
    return [latest[str(p)] for p in alive if latest[str(p)].status == "ok"]
