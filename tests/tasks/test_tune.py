from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tasks.config import Params, TuneParams, parse_params, with_overrides
from tasks.datafiles import Split
from tasks.runners import _shared_prefect_api, open_runner
from tasks.runtime import UserError
from tasks.search import (
    TrialLog,
    TuneFailed,
    grid_points,
    halving_rungs,
    pick_best,
    rank_key,
    search,
)
from tasks.sklearn_mlp import search_sklearn
from tasks.trials import (
    Trial,
    TrialJob,
    TrialResult,
    run_trial,
    score_history,
    to_trial,
    train_trial,
    train_trial_remotely,
)
from tasks.tune import run as tune_run


def test_grid_points_cover_every_combination() -> None:
    tune = TuneParams(grid={"train.learning_rate": [0.1, 0.01], "model.dropout": [0.0, 0.2, 0.4]})
    points = grid_points(tune)
    assert len(points) == 6
    assert {"train.learning_rate": 0.01, "model.dropout": 0.4} in points
    assert grid_points(TuneParams()) == [{}]


def test_score_direction_follows_the_metric() -> None:
    history = {"val_loss": [0.5, 0.2, 0.3], "val_accuracy": [0.6, 0.9, 0.8]}
    assert score_history(history, "val_loss") == 0.2
    assert score_history(history, "val_accuracy") == 0.9
    with pytest.raises(KeyError, match="val_auc"):
        score_history(history, "val_auc")


def test_pick_best_skips_failed_trials() -> None:
    trials = [
        Trial({"a": 1}, 0.8, 3, "ok"),
        Trial({"a": 2}, math.nan, 0, "failed", "boom"),
        Trial({"a": 3}, 0.9, 3, "ok"),
    ]
    assert pick_best(trials, "val_accuracy").point == {"a": 3}
    assert pick_best(trials, "val_loss").point == {"a": 1}
    with pytest.raises(
        TuneFailed, match=r"every trial failed \(1 of 1\); the first, \{'a': 2\}: boom"
    ):
        pick_best(trials[1:2], "val_accuracy")


def test_ties_on_the_metric_go_to_the_lower_validation_loss() -> None:
    trials = [
        Trial({"a": 1}, 1.0, 3, "ok", val_loss=0.05),
        Trial({"a": 2}, 1.0, 3, "ok", val_loss=0.02),
        Trial({"a": 3}, 0.9, 3, "ok", val_loss=0.01),
        Trial({"a": 4}, 1.0, 3, "ok", val_loss=0.02),  # tied on both with a=2: grid order
        Trial({"a": 5}, 1.0, 3, "ok"),  # no loss recorded: after the tied ones that have one
    ]
    ranked = sorted(trials, key=rank_key("val_accuracy"))
    assert [t.point["a"] for t in ranked] == [2, 4, 1, 5, 3]
    assert pick_best(trials, "val_accuracy").point == {"a": 2}
    assert pick_best(reversed(trials), "val_accuracy").point == {"a": 4}


def test_a_trial_keeps_its_lowest_validation_loss() -> None:
    curves = {"val_accuracy": [0.5, 1.0, 1.0], "val_loss": [0.9, 0.3, 0.4]}
    trial = to_trial(TrialResult({}, curves), "val_accuracy")
    assert (trial.score, trial.val_loss, trial.epochs) == (1.0, 0.3, 3)
    assert math.isnan(to_trial(TrialResult({}, {"val_mae": [2.0]}), "val_mae").val_loss)


def _splits() -> tuple[Split, Split]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return Split(x[:48], y[:48]), Split(x[48:], y[48:])


def test_a_failing_trial_is_recorded_not_raised() -> None:
    params = parse_params({"model": {"type": "cnn"}, "tune": {"epochs": 1}})
    trial = run_trial(params, {}, *_splits())  # a CNN cannot take flat rows
    assert trial.status == "failed" and "cnn needs images" in (trial.error or "")


def test_a_job_without_arrays_runs_only_in_a_started_worker() -> None:
    result = train_trial(TrialJob(parse_params({"tune": {"epochs": 1}}), {}, 1, None))
    assert "outside a started worker process" in (result.error or "")


def test_a_trial_trains_and_scores_on_validation() -> None:
    params = parse_params(
        {
            "model": {"type": "dense", "hidden_units": [8]},
            "tune": {"epochs": 2},
            "train": {"batch_size": 16},
        }
    )
    trial = run_trial(params, {"train.learning_rate": 0.01}, *_splits())
    assert trial.status == "ok" and trial.epochs == 2 and 0 <= trial.score <= 1


@pytest.fixture(scope="module")
def prefect() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _dense(tune: dict[str, object], model: dict[str, object] | None = None) -> Params:
    return parse_params(
        {
            "model": {"type": "dense", "hidden_units": [8], **(model or {})},
            "train": {"batch_size": 16},
            "tune": tune,
        }
    )


def test_halving_rungs_shrink_the_field_and_end_at_the_full_budget() -> None:
    # the last rung trains eta finalists to the full budget, so the winner is picked there
    assert halving_rungs(8, 8, 2) == [(8, 1), (4, 2), (2, 8)]
    assert halving_rungs(8, 48, 2) == [(8, 6), (4, 12), (2, 48)]
    assert halving_rungs(9, 9, 3) == [(9, 1), (3, 9)]
    assert halving_rungs(27, 27, 3) == [(27, 1), (9, 3), (3, 27)]
    assert halving_rungs(8, 2, 2) == [(8, 1), (2, 2)]  # no rung below one epoch
    assert halving_rungs(1, 8, 2) == [(1, 8)]


def test_threads_runner_gives_the_same_trials_as_sequential(prefect: None) -> None:
    grid = {"train.learning_rate": [0.01, 0.05], "model.type": ["dense", "cnn"]}
    params = _dense({"epochs": 1, "grid": grid, "runner": "threads", "workers": 2})
    points = grid_points(params.tune)
    one_by_one, _ = search(params, points, _splits())
    with open_runner(params.tune) as parallel:
        in_parallel, trained = search(params, points, _splits(), parallel)
    # Keras seeds one global generator, so threads may not reproduce the scores exactly
    assert [(t.point, t.status, t.epochs) for t in in_parallel] == [
        (t.point, t.status, t.epochs) for t in one_by_one
    ]
    assert [t.status for t in in_parallel] == ["ok", "failed", "ok", "failed"] and trained == 2


def test_a_failing_grid_point_is_recorded_and_the_search_goes_on() -> None:
    params = _dense({"epochs": 1, "grid": {"model.type": ["dense", "cnn"]}})
    trials, trained = search(params, grid_points(params.tune), _splits())
    assert [t.status for t in trials] == ["ok", "failed"] and trained == 1
    assert "cnn needs images" in (trials[1].error or "")
    assert pick_best(trials, "val_accuracy").point == {"model.type": "dense"}


def test_halving_keeps_the_best_and_trains_fewer_epochs() -> None:
    # learning rate 0 never learns: halving must drop those points first
    grid = {"train.learning_rate": [1e-9, 0.05, 2e-9, 3e-9], "model.l2": [0.0]}
    full = _dense({"epochs": 4, "grid": grid, "metric": "val_loss"})
    halving = _dense({"epochs": 4, "grid": grid, "metric": "val_loss", "pruning": "halving"})
    points = grid_points(full.tune)
    full_curves, curves = TrialLog(), TrialLog()
    full_trials, full_epochs = search(full, points, _splits(), trial_log=full_curves)
    halving_trials, halving_epochs = search(halving, points, _splits(), trial_log=curves)
    assert full_epochs == 16 and halving_epochs == 4 * 1 + 2 * 3 < full_epochs
    best = pick_best(halving_trials, "val_loss")
    assert best.point == pick_best(full_trials, "val_loss").point == points[1]
    assert best.epochs == 4 and len(curves.curves[str(points[1])]["val_loss"]) == 4
    assert sorted(t.epochs for t in halving_trials) == [1, 1, 4, 4]
    # continued rung by rung, the survivor trained on the full grid's batches: same curves
    assert curves.curves[str(points[1])] == full_curves.curves[str(points[1])]
    assert best == pick_best(full_trials, "val_loss")


def test_halving_trains_each_point_exactly_as_the_full_grid_does_as_far_as_it_goes() -> None:
    # fast rates overshoot (the loss goes up: early stopping's best weights, plateau decay and
    # stops within a rung all come into play); a pruned point's curves are a prefix of the
    # full grid's, a survivor's are all of them, and an early-stopped one trains no further
    grid = {"train.learning_rate": [0.3, 1.0, 0.03, 3.0], "model.hidden_units": [[16]]}
    train = {"batch_size": 16, "lr_decay": "plateau", "early_stopping": {"patience": 1}}
    tune = {"epochs": 8, "grid": grid, "metric": "val_loss"}
    full = parse_params({"model": {"type": "dense"}, "train": train, "tune": tune})
    halving = with_overrides(full, {"tune.pruning": "halving"})
    points = grid_points(full.tune)
    full_curves, curves = TrialLog(), TrialLog()
    full_trials, _ = search(full, points, _splits(), trial_log=full_curves)
    halving_trials, _ = search(halving, points, _splits(), trial_log=curves)
    assert any(t.epochs < 8 for t in full_trials), "no point stopped early: the test needs one"
    for point, trial, in_full in zip(points, halving_trials, full_trials, strict=True):
        whole, part = full_curves.curves[str(point)], curves.curves[str(point)]
        assert trial.epochs <= in_full.epochs  # one stopped at a rung's end stays stopped
        assert {k: v[: trial.epochs] for k, v in whole.items()} == part
    best = pick_best(halving_trials, "val_loss")
    assert best == pick_best(full_trials, "val_loss")


def test_a_model_sent_between_processes_goes_on_as_if_kept_in_one() -> None:
    # a .keras file keeps the optimizer's state but not dropout's random generators
    params = _dense({"epochs": 4}, {"dropout": 0.5, "hidden_units": [16]})
    point = {"train.learning_rate": 0.01}
    first = TrialJob(params, point, 2, _splits(), keep_model=True)
    kept, sent = train_trial(first), train_trial_remotely(first)
    assert isinstance(sent.model, bytes) and kept.history == sent.history
    later = [
        train_trial(TrialJob(params, point, 2, _splits(), r.model, start=2, carry=r.carry))
        for r in (kept, sent)
    ]
    assert later[0].error is None and later[0].history == later[1].history


def test_sklearn_mlp_is_tuned_on_the_validation_split() -> None:
    grid = {"model.hidden_units": [[4], [16]], "model.activation": ["relu", "swish"]}
    params = _dense({"epochs": 20, "grid": grid}, {"type": "sklearn_mlp"})
    trials = search_sklearn(params, grid_points(params.tune), _splits())
    assert [t.status for t in trials] == ["ok", "failed", "ok", "failed"]  # no swish in sklearn
    assert all(0 <= t.score <= 1 for t in trials if t.status == "ok")
    with pytest.raises(UserError, match="model.dropout"):
        search_sklearn(
            _dense({"grid": {"model.dropout": [0.1]}}), [{"model.dropout": 0.1}], _splits()
        )


def test_run_nests_one_mlflow_run_per_trial_under_the_pipeline_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    processed = tmp_path / "processed"
    processed.mkdir()
    for name, split in zip(("train", "val"), _splits(), strict=True):
        np.savez(processed / f"{name}.npz", x=split.x, y=split.y)
    grid = {"train.learning_rate": [0.05, 1e-9, 0.001], "model.type": ["dense", "cnn"]}
    params = parse_params(
        {
            "paths": {
                "processed": str(processed),
                "reports": str(tmp_path / "reports"),
                "mlruns": str(tmp_path / "mlruns"),
            },
            "model": {"type": "dense", "hidden_units": [8]},
            "train": {"batch_size": 16},
            "tune": {"epochs": 4, "grid": grid, "pruning": "halving", "metric": "val_loss"},
        }
    )
    report = tune_run(params)
    assert report["best_params"] == {"train.learning_rate": 0.05, "model.type": "dense"}
    assert [t["status"] for t in report["trials"]] == ["ok", "failed"] * 3
    # rungs: 6 points (3 fail) at 1 epoch, the best 3 at 2, two finalists at 4
    assert [t["epochs"] for t in report["trials"]] == [4, 0, 2, 0, 4, 0]
    assert report["epochs_trained"] == 3 + 3 + 2 * 2
    assert (tmp_path / "reports" / "tune.csv").read_text().count("\n") == 7
    nested = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{report['mlflow_run_id']}'"
    ).set_index("params.model.type")
    assert sorted(nested["status"]) == ["FAILED"] * 3 + ["FINISHED"] * 3
    winner = nested[nested["params.train.learning_rate"] == "0.05"].loc["dense", "run_id"]
    curve = mlflow.MlflowClient().get_metric_history(winner, "val_loss")
    assert [m.step for m in curve] == [0, 1, 2, 3]  # continued across rungs, one nested run
    assert (
        nested[nested["params.train.learning_rate"] == "1e-09"].loc["dense", "tags.tune.pruned"]
        == "true"
    )
    parent = mlflow.get_run(report["mlflow_run_id"])
    assert parent.data.metrics["tune_epochs_trained"] == 10
    assert "tune.best_params" in parent.data.tags


def test_a_search_where_every_trial_fails_rewrites_its_report_and_names_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No stale tune.json for train to pick up, and the real error in the one line."""
    import json

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    processed, reports = tmp_path / "processed", tmp_path / "reports"
    processed.mkdir()
    reports.mkdir()
    for name, split in zip(("train", "val"), _splits(), strict=True):
        np.savez(processed / f"{name}.npz", x=split.x, y=split.y)
    (reports / "tune.json").write_text('{"best_params": {"stale": true}}')
    params = parse_params(
        {
            "paths": {"processed": str(processed), "reports": str(reports)}
            | {"mlruns": str(tmp_path / "mlruns")},
            "model": {"type": "cnn"},  # a CNN cannot take flat rows: every trial fails
            "tune": {"epochs": 1, "grid": {"train.learning_rate": [0.01, 0.001]}},
        }
    )
    with pytest.raises(TuneFailed) as error:
        tune_run(params)
    message = str(error.value)
    assert "\n" not in message and "every trial failed (2 of 2)" in message
    assert "{'train.learning_rate': 0.01}" in message and "cnn needs images" in message
    report = json.loads((reports / "tune.json").read_text())
    assert report["best_params"] == {} and [t["status"] for t in report["trials"]] == ["failed"] * 2


def test_workers_are_pointed_at_this_process_prefect_api(prefect: None) -> None:
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    running = PREFECT_API_URL.value()  # the harness's temporary server
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert PREFECT_API_URL.value() is None  # as in `dvc repro` or a one-off flow run
        with _shared_prefect_api():
            # what the runner hands its workers: without it each starts a server of its own
            handed = get_current_settings().to_environment_variables(exclude_unset=True)
            assert handed["PREFECT_API_URL"] == running.rstrip("/")
    assert PREFECT_API_URL.value() == running


@pytest.mark.slow
def test_processes_runner_gives_each_worker_its_share_of_the_cores(prefect: None) -> None:
    grid = {"train.learning_rate": [0.05, 1e-9, 0.001], "model.type": ["dense", "cnn"]}
    tune = {"epochs": 4, "grid": grid, "pruning": "halving", "metric": "val_loss"}
    params = _dense({**tune, "runner": "processes", "workers": 2})
    points, splits = grid_points(params.tune), _splits()
    one_by_one, _ = search(_dense(tune), points, splits)
    results: list[TrialResult] = []
    with open_runner(params.tune, splits) as parallel:

        def recorded(jobs: list[TrialJob]) -> list[TrialResult]:
            results.extend(parallel(jobs))
            return results[-len(jobs) :]

        in_parallel, trained = search(params, points, splits, recorded)
    assert [(t.point, t.status, t.epochs) for t in in_parallel] == [
        (t.point, t.status, t.epochs) for t in one_by_one
    ]
    assert [t.status for t in in_parallel] == ["ok", "failed"] * 3 and trained == 10
    # three rungs, every job sent without its arrays: the workers read them once, from files
    assert len(results) == 6 + 3 + 2 and all("worker" not in (r.error or "") for r in results)
    cores = len(os.sched_getaffinity(0))
    assert {r.tf_threads for r in results if r.error is None} == {max(1, cores // 2)}
