"""dvc.yaml and tasks/ agree, and `dvc repro` runs the same steps without Prefect."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from flows.stages import STEPS
from tests.conftest import FAST_PARAMS, ROOT, make_project, run_cli, update_params

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
# a profile a user copies over params.yaml must name every key dvc.yaml reads, too
PARAMS_FILES = ("params.yaml", "examples/titanic/params.yaml")


def test_stages_are_the_flow_steps_in_order() -> None:
    assert tuple(DVC) == STEPS


@pytest.mark.parametrize("stage", STEPS)
def test_each_stage_runs_and_depends_on_its_module(stage: str) -> None:
    spec = DVC[stage]
    assert spec["cmd"] == f"python -m tasks.{stage}"
    assert f"tasks/{stage}.py" in spec["deps"]
    assert (ROOT / "tasks" / f"{stage}.py").is_file()


@pytest.mark.parametrize("params_file", PARAMS_FILES)
@pytest.mark.parametrize("stage", STEPS)
def test_stage_params_exist_in_params_yaml(stage: str, params_file: str) -> None:
    params = yaml.safe_load((ROOT / params_file).read_text())
    for key in DVC[stage].get("params", []):
        node = params
        for part in key.split("."):
            assert part in node, f"{stage}: params key {key} not in {params_file}"
            node = node[part]


@pytest.mark.parametrize("params_file", PARAMS_FILES)
def test_paths_are_templated_from_params(params_file: str) -> None:
    text = (ROOT / "dvc.yaml").read_text()
    assert "data/" not in text and "models/" not in text
    paths = yaml.safe_load((ROOT / params_file).read_text())["paths"]
    for ref in re.findall(r"\$\{paths\.(\w+)\}", text):
        assert ref in paths


@pytest.mark.slow
def test_dvc_repro_runs_every_stage_and_then_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "project", FAST_PARAMS)
    first = run_cli(["dvc", "repro"], project).stdout
    assert all(f"Running stage '{stage}'" in first for stage in STEPS), first
    assert "up to date" in run_cli(["dvc", "status"], project).stdout
    assert "accuracy" in run_cli(["dvc", "metrics", "show"], project).stdout

    noop = run_cli(["dvc", "repro"], project).stdout
    assert "Running stage" not in noop

    update_params(project, {"train": {"epochs": 2}})
    rerun = run_cli(["dvc", "repro"], project).stdout
    ran = re.findall(r"Running stage '(\w+)'", rerun)
    assert ran == ["train", "evaluate", "register"], rerun

    # a new store: `dvc repro` alone would do nothing; `make repro` restores the record
    store = f"sqlite:///{tmp_path / 'new-store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    assert "Running stage" not in run_cli(["dvc", "repro"], project).stdout
    restored = run_cli(["python", "-m", "flows.repro"], project)
    assert "tune: the store has no run" in restored.stderr, restored.stderr
    ran = re.findall(r"Running stage '(\w+)'", restored.stdout)
    assert ran == ["tune", "train", "evaluate", "register"], restored.stdout
    from mlflow import MlflowClient

    version = MlflowClient(tracking_uri=store, registry_uri=store).get_model_version(
        "digits-test", "1"
    )
    assert version.tags["lineage.git_dirty"] == "true", "train.epochs changed after the commit"


@pytest.mark.slow
def test_a_stage_error_is_one_line_and_leaves_no_output(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "project", {"ingest": {"source": "csv", "path": "data/source/empty.csv"}}
    )
    (project / "data/source/empty.csv").write_text("")
    result = run_cli(["python", "-m", "tasks.ingest"], project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == ("error: data/source/empty.csv: file is empty")
    assert not (project / "data/raw").exists()

    (project / "params.yaml").write_text((project / "params.yaml").read_text() + "extra: 1\n")
    result = run_cli(["python", "-m", "tasks.ingest"], project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: params.yaml: unknown key 'extra'"
