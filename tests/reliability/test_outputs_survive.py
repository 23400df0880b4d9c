"""A failing step leaves every output as it was, through both doors: afterwards, with the good
params and source back, `dvc status` finds every output equal to its dvc.lock entry."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FAST_PARAMS, make_project, run_cli, update_params

pytestmark = pytest.mark.slow


def _bad_epochs(project: Path) -> str:
    update_params(project, {"train": {"epochs": -3}})
    return "params.yaml: train.epochs"


def _bad_ratios(project: Path) -> str:
    update_params(project, {"split": {"train": 0.8}})
    return "params.yaml: split: split.train + split.val + split.test must sum to 1"


def _empty_source(project: Path) -> str:
    (project / "data/source/empty.csv").write_text("")
    update_params(project, {"ingest": {"source": "csv", "path": "data/source/empty.csv"}})
    return "data/source/empty.csv: file is empty"


CASES: dict[str, Callable[[Path], str]] = {
    "bad params": _bad_epochs,
    "bad split ratios": _bad_ratios,
    "bad source": _empty_source,
}
DOORS = {"dvc": ["dvc", "repro"], "prefect": ["python", "-m", "flows.retrain"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project reproduced once; each case breaks it and puts it back."""
    path = make_project(tmp_path_factory.mktemp("survive") / "project", FAST_PARAMS)
    run_cli(["dvc", "repro"], path)
    shutil.copy(path / "params.yaml", path / "good-params.yaml")
    return path


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failing_step_keeps_the_last_good_outputs(project: Path, door: str, case: str) -> None:
    expected = CASES[case](project)
    try:
        result = run_cli(DOORS[door], project, check=False)
    finally:
        shutil.copy(project / "good-params.yaml", project / "params.yaml")
        (project / "data/source/empty.csv").unlink(missing_ok=True)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    status = run_cli(["dvc", "status"], project).stdout
    assert status.strip().endswith("up to date."), status
