"""Thirteen bad inputs, through both doors: each ends in one line naming what is wrong and
where, a non-zero exit, and nothing changed: dvc.lock and the registry (versions, champion)
as they were, and, with the good params and source back, `dvc status` finds every output
equal to its dvc.lock entry."""

from __future__ import annotations

import shutil
import subprocess
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


def _source(project: Path, name: str, content: bytes, source: str = "csv") -> None:
    (project / "data/source" / name).write_bytes(content)
    update_params(project, {"ingest": {"source": source, "path": f"data/source/{name}"}})


def _npz_without_arrays(project: Path) -> str:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros((5, 2)))
    _source(project, "bad.npz", buffer.getvalue(), "npz")
    return "data/source/bad.npz: needs arrays 'x' and 'y', holds ['a']"


def _no_label_column(project: Path) -> str:
    _source(project, "bad.csv", b"a,b\n" + b"1,2\n3,4\n" * 20)
    return "data/source/bad.csv: label column 'label' missing"


def _empty_labels(project: Path) -> str:
    _source(project, "bad.csv", b"a,label\n" + b"1,\n" * 30)
    return "data/source/bad.csv: label column 'label' is empty in every row"


def _not_text(project: Path) -> str:
    _source(project, "bad.csv", bytes(range(256)) * 40)
    return "data/source/bad.csv: not cp1252 text"


def _missing_source(project: Path) -> str:
    update_params(project, {"ingest": {"source": "csv", "path": "data/source/gone.csv"}})
    return "data/source/gone.csv: file not found"


def _params(changes: dict[str, dict[str, object]], expected: str) -> Callable[[Path], str]:
    def case(project: Path) -> str:
        update_params(project, changes)
        return expected

    return case


def _broken_yaml(project: Path) -> str:
    with (project / "params.yaml").open("a") as params:
        params.write("train: [unclosed\n")
    return "params.yaml: not valid YAML"


CASES: dict[str, Callable[[Path], str]] = {
    "bad params": _bad_epochs,
    "bad split ratios": _bad_ratios,
    "bad source": _empty_source,
    "unknown key": _params({"train": {"epochz": 3}}, "params.yaml: unknown key 'train.epochz'"),
    "wrong type": _params(
        {"train": {"learning_rate": "fast"}}, "params.yaml: train.learning_rate: Input should"
    ),
    "tune metric of another task": _params(
        {"tune": {"metric": "val_rmse"}}, "params.yaml: tune.metric: 'val_rmse' does not fit"
    ),
    "unknown register metric": _params(
        {"register": {"metric": "auc_pr"}}, "params.yaml: register.metric: 'auc_pr' does not fit"
    ),
    "broken yaml": _broken_yaml,
    "missing source": _missing_source,
    "no label column": _no_label_column,
    "empty labels": _empty_labels,
    "not text": _not_text,
    "npz without arrays": _npz_without_arrays,
}
DOORS = {"dvc": ["dvc", "repro"], "prefect": ["python", "-m", "flows.retrain"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project reproduced once (a champion registered); each case breaks it and puts it
    back."""
    path = make_project(tmp_path_factory.mktemp("survive") / "project", FAST_PARAMS)
    run_cli(["dvc", "repro"], path)
    shutil.copy(path / "params.yaml", path / "good-params.yaml")
    return path


def _registry(project: Path) -> tuple[list[str], str]:
    """Every version of the model and the champion's, from the project's own store."""
    from mlflow import MlflowClient

    store = f"sqlite:///{project}/mlruns/mlflow.db"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    versions = sorted(v.version for v in client.search_model_versions("name = 'digits-test'"))
    return versions, client.get_model_version_by_alias("digits-test", "champion").version


def _the_error(result: subprocess.CompletedProcess[str], door: str, case: str) -> str:
    """The one line that says what is wrong (DVC reads params.yaml itself: a file it cannot
    parse is reported by DVC, before any stage of ours runs)."""
    prefix = "ERROR: " if (door, case) == ("dvc", "broken yaml") else "error: "
    errors = [line for line in result.stderr.splitlines() if line.startswith(prefix)]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failing_step_keeps_the_last_good_outputs(project: Path, door: str, case: str) -> None:
    lock, registry = (project / "dvc.lock").read_bytes(), _registry(project)
    expected = CASES[case](project)
    try:
        result = run_cli(DOORS[door], project, check=False)
    finally:
        shutil.copy(project / "good-params.yaml", project / "params.yaml")
        for name in ("empty.csv", "bad.csv", "bad.npz"):
            (project / "data/source" / name).unlink(missing_ok=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    line = _the_error(result, door, case)
    assert (expected if line.startswith("error: ") else "params.yaml") in line, line
    assert (project / "dvc.lock").read_bytes() == lock and _registry(project) == registry
    status = run_cli(["dvc", "status"], project).stdout
    assert status.strip().endswith("up to date."), status
