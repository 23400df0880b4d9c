"""tune: grid search over `tune.grid`, each point trained on the training split and scored on
the validation split (the test split is never read here).

Writes `reports/tune.json` (the winning params, the score and the trial table) and
`reports/tune.csv`. Each trial is a nested MLflow run under the pipeline's parent run, which
also holds the trial table; `train` continues in that parent run.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from tasks.config import Params, TuneParams, load_params, with_overrides
from tasks.datafiles import write_json
from tasks.runtime import import_tensorflow, run_entry
from tasks.train import Split, load_split, train_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    point: dict[str, Any]
    score: float
    epochs: int
    status: str
    error: str | None = None


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


def run_trial(
    params: Params,
    point: dict[str, Any],
    train_split: Split,
    val_split: Split,
    callbacks: list[Any] | None = None,
) -> Trial:
    """Train one grid point for tune.epochs and score it on the validation split."""
    trial_params = with_overrides(params, {**point, "train.epochs": params.tune.epochs})
    try:
        _, history = train_model(trial_params, train_split, val_split, callbacks)
        score = score_history(history.history, params.tune.metric)
        return Trial(point, score, len(history.epoch), "ok")
    except Exception as error:  # one failed trial must not sink the search
        log.warning("tune: trial %s failed: %s", point, error)
        return Trial(point, math.nan, 0, "failed", f"{type(error).__name__}: {error}")


def pick_best(trials: Iterable[Trial], metric: str) -> Trial:
    """The trial with the best score; ties go to the earlier grid point."""
    scored = [t for t in trials if t.status == "ok"]
    if not scored:
        raise RuntimeError("tune: every trial failed; see reports/tune.json")
    sign = 1 if minimize(metric) else -1
    return min(scored, key=lambda t: sign * t.score)


def _tracked_trial(
    params: Params, point: dict[str, Any], train_split: Split, val_split: Split
) -> Trial:
    import mlflow

    with mlflow.start_run(run_name=f"trial {point}", nested=True):
        mlflow.log_params({**point, "tune.epochs": params.tune.epochs})
        trial = run_trial(params, point, train_split, val_split, [mlflow.keras.MlflowCallback()])
        mlflow.log_metrics({"score": trial.score}) if trial.status == "ok" else mlflow.set_tag(
            "error", trial.error or ""
        )
    return trial


TrialRunner = Callable[[Params, list[dict[str, Any]], Split, Split], list[Trial]]


def run_sequentially(
    params: Params, points: list[dict[str, Any]], train_split: Split, val_split: Split
) -> list[Trial]:
    return [_tracked_trial(params, p, train_split, val_split) for p in points]


def run(
    params: Params, tags: dict[str, str] | None = None, runner: TrialRunner = run_sequentially
) -> dict[str, Any]:
    """Run the grid inside a new pipeline MLflow run; write reports/tune.{json,csv}."""
    import mlflow

    from tasks.tracking import start_tracking

    import_tensorflow()
    train_split = load_split(params.paths.processed, "train")
    val_split = load_split(params.paths.processed, "val")
    start_tracking(params)
    points = grid_points(params.tune)
    with mlflow.start_run(run_name="pipeline", tags=tags) as parent:
        trials = runner(params, points, train_split, val_split) if params.tune.grid else []
        best = pick_best(trials, params.tune.metric) if trials else None
        table = pd.DataFrame([{**t.point, **asdict(t)} for t in trials])
        report = {
            "mlflow_run_id": parent.info.run_id,
            "metric": params.tune.metric,
            "best_params": best.point if best else {},
            "best_score": best.score if best else None,
            "trials": [asdict(t) for t in trials],
        }
        if trials:
            mlflow.log_table(table.drop(columns="point").astype(str), "tune/trials.json")
            mlflow.log_metric(f"tune_best_{params.tune.metric}", report["best_score"])
            mlflow.set_tag("tune.best_params", str(report["best_params"]))
    write_json(params.paths.reports / "tune.json", report)
    table.to_csv(params.paths.reports / "tune.csv", index=False)
    log.info(
        "tune: %d trials, best %s = %s with %s",
        len(trials),
        params.tune.metric,
        report["best_score"],
        report["best_params"],
    )
    return report


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.tune")
