"""Where MLflow records runs: `MLFLOW_TRACKING_URI` when set, else SQLite under `paths.mlruns`.

The model registry always lives in the same store as the runs.

MLflow 3 refuses its plain file store, so the local default is `mlruns/mlflow.db` with the
artifacts beside it in `mlruns/artifacts/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.config import Params
from tasks.databases import seed
from tasks.runtime import UserError

if TYPE_CHECKING:
    import pandas as pd


def local_store(mlruns: Path) -> str:
    return f"sqlite:///{mlruns.resolve()}/mlflow.db"


def tracking_uri(mlruns: Path) -> str:
    """The tracking URI in force: the environment's, or the project's SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or local_store(mlruns)


SHORT_AXES = {"learning_rate": "lr", "dropout": "drop", "batch_size": "batch"}


def point_label(point: dict[str, Any]) -> str:
    """`lr=0.003 drop=0.1`: each setting by its last name, shortened where common."""
    names = [key.rpartition(".")[2] for key in point]
    return " ".join(
        f"{SHORT_AXES.get(n, n)}={v}" for n, v in zip(names, point.values(), strict=True)
    )


def _data_name(params: Params) -> str:
    source = params.ingest.name if params.ingest.source == "sklearn" else params.ingest.path
    return Path(str(source)).name.split(".")[0]


def run_name(params: Params) -> str:
    """A pipeline run's name while it tunes: what, on what, when (`cnn digits 12-02 03:00`)."""
    return f"{params.model.type} {_data_name(params)} {time.strftime('%m-%d %H:%M')}"


def training_name(params: Params) -> str:
    """The run's name once it trains (`train · cnn lr=0.002 drop=0.25 · digits`); register
    adds the version (`train v3 · ...`)."""
    settings = {"lr": params.train.learning_rate}
    if params.model.type != "sklearn_mlp":
        settings["drop"] = params.model.dropout
    what = f"{params.model.type} {point_label(settings)}"
    return f"train · {what} · {_data_name(params)}"


def check_server(uri: str) -> None:
    """A tracking server that does not answer is named in one line, before any run starts."""
    from tasks.runtime import answers

    if uri.startswith(("http://", "https://")) and not answers(f"{uri.rstrip('/')}/health"):
        raise UserError(
            f"the MLflow tracking server {uri} does not answer: start it, or unset "
            "MLFLOW_TRACKING_URI to use the project's own store"
        )


def start_tracking(params: Params) -> str:
    """Point MLflow at the store and the configured experiment; return the experiment id."""
    import mlflow

    params.paths.mlruns.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(params.paths.mlruns)
    check_server(uri)
    if uri == local_store(params.paths.mlruns):
        seed("mlflow", params.paths.mlruns / "mlflow.db")  # no migrations on a new store
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = params.mlflow.experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        local = uri == local_store(params.paths.mlruns)  # a server decides its own artifacts
        artifacts = (params.paths.mlruns / "artifacts").resolve().as_uri() if local else None
        # classic model training, not GenAI: MLflow 3's UI opens it on runs and models
        tags = {
            "mlflow.experimentKind": "custom_model_development",
            "mlflow.note.content": (
                f"Retraining runs of this project ({name}): one run per training, named "
                "`train vN · model settings · data` once registered, with its tuning trials nested "
                "(`trial i/n · settings`); test scores as `test_*` metrics and the table "
                "`evaluation/test_metrics.json`; data-quality reports under `data_quality/`."
            ),
        }
        from mlflow.exceptions import MlflowException

        try:
            experiment_id = mlflow.create_experiment(name, artifact_location=artifacts, tags=tags)
        except MlflowException as error:
            # another clone created it between our lookup and our create (a shared server)
            created = mlflow.get_experiment_by_name(name)
            if error.error_code != "RESOURCE_ALREADY_EXISTS" or created is None:
                raise
            experiment_id = created.experiment_id
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def log_curves(curves: pd.DataFrame) -> None:
    """Every epoch's values as step metrics of the active run, in one batch (steps from 0, as
    Keras's MlflowCallback logs them)."""
    import mlflow
    from mlflow.entities import Metric

    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("train: no active MLflow run to log the curves to")
    stamp = int(time.time() * 1000)
    metrics = [
        Metric(name, float(value), stamp, int(epoch) - 1)
        for name in curves.columns.drop("epoch")
        for epoch, value in zip(curves["epoch"], curves[name], strict=True)
    ]
    mlflow.MlflowClient().log_batch(active.info.run_id, metrics=metrics)


def _run(client: Any, run_id: str | None) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id) if run_id else None
    except MlflowException:
        return None


def missing_record(params: Params, step: str) -> str | None:
    """Why the store in use lacks the MLflow record of a step's current outputs (the runs,
    trials, test metrics or version they name), or None when it has it (or keeps none)."""
    from mlflow import MlflowClient

    reports, model = params.paths.reports, params.paths.model
    files = {"tune": reports / "tune.json", "train": model / "run.json"}
    files |= {"evaluate": model / "run.json", "register": reports / "registry.json"}
    if step not in files or not files[step].is_file():
        return None
    start_tracking(params)
    client = MlflowClient()
    recorded = json.loads(files[step].read_text())
    run = _run(client, recorded.get("mlflow_run_id") or recorded.get("run_id"))
    if run is None:
        return f"the store has no run {recorded.get('mlflow_run_id') or recorded.get('run_id')}"
    if step == "tune" and len(_trials(client, run)) < len(recorded["trials"]):
        return f"run {run.info.run_id} lacks its {len(recorded['trials'])} trial runs"
    if step == "evaluate" and not any(k.startswith("test_") for k in run.data.metrics):
        return f"run {run.info.run_id} has no test metrics"
    if step == "register":
        return _missing_version(client, recorded)
    return None


def _trials(client: Any, run: Any) -> list[Any]:
    query = f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    return list(client.search_runs([run.info.experiment_id], query, max_results=1000))


def _missing_version(client: Any, recorded: dict[str, Any]) -> str | None:
    from mlflow.exceptions import MlflowException

    name, version = recorded["model_name"], str(recorded["version"])
    try:
        found = client.get_model_version(name, version)
    except MlflowException:
        return f"the registry has no {name} v{version}"
    return None if found.run_id == recorded["run_id"] else f"{name} v{version} is another run's"


RECORDED_STEPS = ("tune", "train", "evaluate", "register")  # steps whose outputs name records
STAMP = "records.json"  # in the local store's folder: it goes when the store goes


def _store_state(params: Params) -> dict[str, Any] | None:
    """dvc.lock's hash and the local store's file state (inode, size, mtime): what the records
    were checked against. None for a tracking server, which only it can answer for."""
    database = params.paths.mlruns / "mlflow.db"
    lock = Path("dvc.lock")
    if tracking_uri(params.paths.mlruns) != local_store(params.paths.mlruns):
        return None
    if not database.is_file() or not lock.is_file():
        return None
    stat = database.stat()
    return {
        "dvc_lock": hashlib.sha256(lock.read_bytes()).hexdigest(),
        "store": [stat.st_ino, stat.st_size, stat.st_mtime_ns],
    }


def stamp_records(params: Params) -> None:
    """Note that the store holds every record of dvc.lock's outputs, as it is now."""
    state = _store_state(params)
    if state is not None:
        (params.paths.mlruns / STAMP).write_text(json.dumps(state))


def records_current(params: Params) -> bool:
    """Whether the store holds the record of every output in dvc.lock: at once when nothing
    changed since the last check (the stamp matches), else asked of the store (MLflow)."""
    stamp, state = params.paths.mlruns / STAMP, _store_state(params)
    if state is not None and stamp.is_file() and json.loads(stamp.read_text()) == state:
        return True
    if any(missing_record(params, step) is not None for step in RECORDED_STEPS):
        return False
    stamp_records(params)
    return True
