"""tune: grid search over `tune.grid`, each point trained on the training split and scored on
the validation split (the test split is never read here).

Writes `reports/tune.json` (the winning params, the score and the trial table) and
`reports/tune.csv`. Each trial is a nested MLflow run under the pipeline's parent run, which
also holds the trial table; `train` continues in that parent run.

This module is the step's adapter; the logic lives in library modules: `tasks.search` (the
grid and successive halving, the trial log), `tasks.trials` (one trial's training),
`tasks.runners` (sequential, threads, processes or Dask) and, for `model.type: sklearn_mlp`,
`tasks.sklearn_mlp` (GridSearchCV on the predefined train/validation split).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import pandas as pd

from tasks.config import Params, TuneParams, load_params
from tasks.datafiles import Split, load_split, write_json
from tasks.lineage import lineage_tags
from tasks.runners import check_cluster, open_runner
from tasks.runtime import import_tensorflow, no_options, run_entry
from tasks.search import TrialLog, best_trial, grid_points, pick_best, search
from tasks.sklearn_mlp import search_sklearn
from tasks.tracking import run_name
from tasks.trials import Trial, TrialMap, TrialResult

log = logging.getLogger(__name__)


def tune_trials(
    params: Params, splits: tuple[Split, Split], trial_log: TrialLog, runner: TrialMap | None
) -> tuple[list[Trial], int]:
    """The trials of the grid, by the configured model type, runner and pruning."""
    points = grid_points(params.tune)
    trial_log.total = len(points)
    for point in points:
        trial_log.start(point, {"tune.epochs": params.tune.epochs})
    if params.model.type == "sklearn_mlp":
        trials = search_sklearn(params, points, splits)
        for trial in trials:
            curves = {params.tune.metric: [trial.score]} if trial.status == "ok" else {}
            trial_log.record(TrialResult(trial.point, curves, trial.error), params.tune.metric)
            trial_log.finish(trial, False, params.tune.metric)
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

    check_cluster(params.tune)  # before any MLflow run exists
    splits = (
        load_split(params.paths.processed, "train"),
        load_split(params.paths.processed, "val"),
    )
    experiment_id = start_tracking(params)
    client = mlflow.MlflowClient(tracking_uri(params.paths.mlruns))
    started = time.perf_counter()
    tags = {**lineage_tags(params, "tune"), **(tags or {})}
    with mlflow.start_run(run_name=run_name(params), tags=tags) as parent:
        trial_log = TrialLog(client, experiment_id, parent.info.run_id)
        trials, trained = (
            tune_trials(params, splits, trial_log, runner) if params.tune.grid else ([], 0)
        )
        report = _report(params, parent.info.run_id, trials, trained, time.perf_counter() - started)
        _log_parent(params.tune, report)
        # written before the verdict: a failed search leaves its own trials, not the last one's
        write_json(params.paths.reports / "tune.json", report)
        pd.DataFrame(report["trials"]).to_csv(params.paths.reports / "tune.csv", index=False)
        if trials:
            pick_best(trials, params.tune.metric)  # every trial failed: the first one's error
    log.info(
        "tune: %d trials (%d epochs in %.1f s), best %s = %s with %s",
        len(trials),
        trained,
        report["seconds"],
        params.tune.metric,
        "none" if report["best_score"] is None else f"{report['best_score']:.4f}",
        report["best_params"],
    )
    return report


def _report(
    params: Params, run_id: str, trials: list[Trial], trained: int, seconds: float
) -> dict[str, Any]:
    best = best_trial(trials, params.tune.metric)
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
    cost = {"tune_epochs_trained": report["epochs_trained"], "tune_seconds": report["seconds"]}
    if report["best_score"] is None:  # every trial failed
        mlflow.log_metrics(cost)
        return
    mlflow.log_metrics({f"tune_best_{tune.metric}": report["best_score"], **cost})
    mlflow.set_tag("tune.best_params", str(report["best_params"]))


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.tune")
