"""dvc.yaml and tasks/ agree, and `dvc repro` runs the same steps without Prefect."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from flows.retrain import STEPS
from tests.conftest import FAST_PARAMS, ROOT, make_project, run_cli, update_params

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_stages_are_the_flow_steps_in_order() -> None:
    assert tuple(DVC) == STEPS


@pytest.mark.parametrize("stage", STEPS)
def test_each_stage_runs_and_depends_on_its_module(stage: str) -> None:
    spec = DVC[stage]
    assert spec["cmd"] == f"python -m tasks.{stage}"
    assert f"tasks/{stage}.py" in spec["deps"]
    assert (ROOT / "tasks" / f"{stage}.py").is_file()


@pytest.mark.parametrize("stage", STEPS)
def test_stage_params_exist_in_params_yaml(stage: str) -> None:
    for key in DVC[stage].get("params", []):
        node = PARAMS
        for part in key.split("."):
            assert part in node, f"{stage}: params key {key} not in params.yaml"
            node = node[part]


def test_paths_are_templated_from_params() -> None:
    text = (ROOT / "dvc.yaml").read_text()
    assert "data/" not in text and "models/" not in text
    for ref in re.findall(r"\$\{paths\.(\w+)\}", text):
        assert ref in PARAMS["paths"]


@pytest.mark.slow
def test_dvc_repro_runs_every_stage_and_then_only_what_changed(tmp_path: Path) -> None:
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
