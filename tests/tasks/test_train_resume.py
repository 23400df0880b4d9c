"""A `python -m tasks.train` killed with SIGKILL mid-way resumes from its last epoch, on one
CPU device or on two (`train.cpu_replicas`, MirroredStrategy)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tasks import clean, ingest, split, standardize, validate
from tasks.config import load_params
from tasks.datafiles import write_json
from tasks.tracking import local_store
from tests.conftest import run_cli, update_params

pytestmark = pytest.mark.slow

EPOCHS = 40
KILL_AFTER = 3  # finished epochs


def prepare_training(project: Path, epochs: int, **train: object) -> None:
    """The data steps run and no tuning: `python -m tasks.train` trains params.yaml's point."""
    stopping = {"monitor": "val_loss", "patience": epochs}
    update_params(project, {"train": {"epochs": epochs, "early_stopping": stopping, **train}})
    params = load_params()
    for step in (ingest, validate, clean, split, standardize):
        step.run(params)  # type: ignore[attr-defined]
    write_json(params.paths.reports / "tune.json", {})  # no tuning: train with params.yaml


def _backed_up_epoch(checkpoints: Path) -> int:
    for metadata in checkpoints.glob("train-*/training_metadata.json"):
        try:
            return int(json.loads(metadata.read_text())["epoch"])
        except (ValueError, KeyError):  # caught mid-write
            return 0
    return 0


def _train_until_killed(project: Path) -> int:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = (project / "first.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.train"], cwd=project, env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 180
    while _backed_up_epoch(project / "models/.checkpoints") < KILL_AFTER:
        assert process.poll() is None, (project / "first.log").read_text()
        assert time.monotonic() < deadline, "no epochs backed up in time"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return _backed_up_epoch(project / "models/.checkpoints")


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_killed_training_resumes_where_it_stopped(project: Path, replicas: int) -> None:
    prepare_training(project, EPOCHS, cpu_replicas=replicas)
    killed_at = _train_until_killed(project)
    assert KILL_AFTER <= killed_at < EPOCHS
    assert not (project / "models/model").exists()

    second = run_cli(["python", "-m", "tasks.train"], project)

    summary = json.loads((project / "models/model/run.json").read_text())
    assert summary["replicas"] == replicas
    assert summary["resumed_at_epoch"] >= KILL_AFTER
    assert summary["epochs_run"] == EPOCHS
    started = summary["resumed_at_epoch"] + 1
    assert f"Epoch {started}/{EPOCHS}" in second.stdout
    assert f"Epoch {started - 1}/{EPOCHS}" not in second.stdout  # nothing retrained
    history = pd.read_csv(project / "reports/history.csv")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert not (project / "models/.checkpoints").exists()
    # one MLflow run: the killed one went on, rather than staying RUNNING beside a new one
    client = MlflowClient(local_store(project / "mlruns"))
    runs = client.search_runs(client.search_experiments()[0].experiment_id)
    assert [(r.info.run_id, r.info.status) for r in runs] == [
        (summary["mlflow_run_id"], "FINISHED")
    ]
    steps = {m.step for m in client.get_metric_history(summary["mlflow_run_id"], "loss")}
    assert steps == set(range(EPOCHS)), "every epoch's metrics, across both attempts"
    strategy = "MirroredStrategy" if replicas > 1 else "_DefaultDistributionStrategy"
    tags = runs[0].data.tags
    assert (tags["train.strategy"], tags["train.replicas"]) == (strategy, str(replicas))
