"""Lineage end to end: a registered version names its commit and data, one command rebuilds
it through the DVC door with the same metrics and model file as the Prefect door made, and
the MLflow store follows DVC when it lost its record."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from tests.conftest import FAST_PARAMS, make_project, run_cli

DETERMINISTIC = {**FAST_PARAMS, "train": {"epochs": 4, "deterministic": True}}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _client(project: Path) -> object:
    from mlflow import MlflowClient

    from tasks.tracking import local_store

    store = local_store(project / "mlruns")
    return MlflowClient(tracking_uri=store, registry_uri=store)


@pytest.mark.slow
def test_a_version_rebuilds_with_one_command_and_the_store_follows_dvc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    project = make_project(tmp_path / "project", DETERMINISTIC)
    run_cli(["python", "-m", "flows.retrain"], project)
    client = _client(project)
    version = client.get_model_version("digits-test", "1")  # type: ignore[attr-defined]
    head = run_cli(["git", "rev-parse", "HEAD"], project).stdout.strip()
    assert version.tags["mlflow.source.git.commit"] == head
    assert version.tags["lineage.git_dirty"] == "false"
    stages = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    lock = {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])}
    for path in ("data/raw", "data/split", "data/processed", "models/model"):
        assert version.tags[f"dvc.md5.{path}"] == lock[path]
    run = client.get_run(version.run_id)  # type: ignore[attr-defined]
    for key in ("lineage.train.params_sha256", "lineage.uv_lock_sha256", "lineage.python"):
        assert run.data.tags[key] and version.tags[key] == run.data.tags[key]
    assert run.data.tags["prefect.flow_run_id"]

    rebuilt = tmp_path / "rebuilt"
    out = run_cli(
        ["python", "-m", "tasks.reproduce", "models:/digits-test/1", "--workdir", str(rebuilt)],
        project,
    )
    assert "must agree exactly" in out.stdout and "DIFFERS" not in out.stdout, out.stdout
    # the Prefect door (project) and the DVC door (rebuilt) from one commit and data
    assert (rebuilt / "reports/metrics.json").read_bytes() == (
        project / "reports/metrics.json"
    ).read_bytes()
    assert _md5(rebuilt / "models/model/model.keras") == _md5(project / "models/model/model.keras")

    # a new, empty store (another database, as after pointing at a new server): the next run
    # records everything again, though DVC finds every stage current
    store = f"sqlite:///{tmp_path / 'new-store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    summary = run_cli(["python", "-m", "flows.retrain"], project).stdout
    assert "steps run: tune, train, evaluate, register" in summary, summary
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    current = client.get_model_version_by_alias("digits-test", "champion")  # type: ignore[attr-defined]
    assert str(current.version) == "1", summary
    assert f"MLflow run: {current.run_id}" in summary, summary[-600:]
    parent = client.get_run(current.run_id)  # type: ignore[attr-defined]
    trials = client.search_runs(  # type: ignore[attr-defined]
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(trials) == 2 and "test_accuracy" in parent.data.metrics


def test_reproduce_refuses_an_unknown_commit_and_a_dirty_tree_in_one_line() -> None:
    from tasks.reproduce import check_lineage
    from tasks.runtime import UserError

    with pytest.raises(UserError, match=r"its commit 0000000000ab is not in this repository"):
        check_lineage({"mlflow.source.git.commit": "0000000000ab" + "0" * 28}, "models:/m/1", False)
    head = run_cli(["git", "rev-parse", "HEAD"], Path(__file__).parent).stdout.strip()
    dirty = {"mlflow.source.git.commit": head, "lineage.git_dirty": "true"}
    with pytest.raises(UserError, match="made from a dirty tree") as error:
        check_lineage(dirty, "models:/m/1", False)
    assert "\n" not in str(error.value)
    assert check_lineage(dirty, "models:/m/1", True) == head
