"""The data steps from the command line: bad input gets one line and leaves nothing behind,
and the real data beside the repository (`../shared/data`) goes from ingest to standardize."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, make_project, run_cli, update_params

pytestmark = pytest.mark.slow

SHARED = ROOT.parent / "shared" / "data"
DATA_STEPS = ("ingest", "validate", "clean", "split", "standardize")


def _fails(project: Path, step: str, *needles: str) -> str:
    result = run_cli(["python", "-m", f"tasks.{step}"], project, check=False)
    assert result.returncode == 1, result.stderr
    message = result.stderr.strip().split("error: ", 1)[-1]
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in message, message
    return message


def _people(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.uniform(1, 80, rows).round(1),
            "town": rng.choice(["a", "b", "c"], rows),
            "label": np.arange(rows) % 2,
        }
    )


@pytest.fixture
def table_project(tmp_path: Path) -> Path:
    project = make_project(
        tmp_path / "project",
        {
            "ingest": {"source": "csv", "path": "data/source/people.csv"},
            "validate": {"labels": None, "value_range": None, "min_rows_per_class": 5},
        },
    )
    _people().to_csv(project / "data/source/people.csv", index=False)
    return project


def test_bad_tables_stop_with_one_line_and_no_outputs(table_project: Path) -> None:
    project, source = table_project, table_project / "data/source/people.csv"
    for step in ("ingest", "validate"):
        run_cli(["python", "-m", f"tasks.{step}"], project)
    assert (project / "expectations/people.json").is_file(), "the first run saved the suite"

    raw = (project / "data/raw/data.parquet").read_bytes()
    _people().assign(age=lambda f: f["age"].astype(str).mask(f.index < 4, "old")).to_csv(
        source, index=False
    )
    message = _fails(project, "ingest", "people.csv", "column 'age'", "expect_column_kind_to_be")
    assert "4 rows" in message and "data/raw is unchanged" in message
    assert (project / "data/raw/data.parquet").read_bytes() == raw, "the batch was refused"
    assert (project / "reports/validation/raw.json").exists(), "validate never saw it"
    assert (project / "data/rejected/validation-failed.html").is_file()

    _people().assign(town=None).to_csv(source, index=False)  # an all-null column
    _fails(project, "ingest", "column 'town'", "expect_column_values_to_not_be_null")

    _people().assign(label=1).to_csv(source, index=False)  # a single class
    _fails(project, "ingest", "column 'label'", "expect_at_least_two_classes")

    suite = project / "expectations/people.json"  # the data stays, the suite gets stricter
    stricter = json.loads(suite.read_text())
    for expectation in stricter["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_between":
            expectation["kwargs"]["max_value"] = 10
    suite.write_text(json.dumps(stricter))
    message = _fails(project, "validate", "data/raw", "column 'age'")
    assert not (project / "reports/validation/raw.json").exists()
    _fails(project, "clean", "reports/validation/raw.json: not found")
    assert not (project / "data/clean").exists()

    _people().drop(columns="label").to_csv(source, index=False)
    _fails(project, "ingest", "people.csv", "label column 'label' missing")
    source.write_text("")
    _fails(project, "ingest", "people.csv: file is empty")


def test_bad_params_and_bad_images_stop_with_one_line(table_project: Path) -> None:
    project = table_project
    good = (project / "params.yaml").read_text()
    update_params(project, {"split": {"train": 0.8, "val": 0.1, "test": 0.2}})
    _fails(project, "split", "params.yaml", "split.train + split.val + split.test must sum to 1")
    update_params(project, {"split": {"train": 0.7}, "clean": {"strategy": "drop"}})
    _fails(project, "clean", "params.yaml: unknown key 'clean.strategy'")
    assert not (project / "data/split").exists() and not (project / "data/clean").exists()
    (project / "params.yaml").write_text(good)

    mnist = project / "data/source/mnist"
    mnist.mkdir()
    for prefix, n in (("train", 40), ("t10k", 10)):
        images = np.zeros((n, 28, 28), dtype=np.uint8).tobytes()
        header = bytes([0, 0, 8, 3]) + np.array([n, 28, 28], dtype=">u4").tobytes()
        (mnist / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images))
        labels = (np.arange(n) % 2).astype(np.uint8).tobytes()
        header = bytes([0, 0, 8, 1]) + np.array([n], dtype=">u4").tobytes()
        (mnist / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + labels))
    broken = mnist / "t10k-images-idx3-ubyte.gz"
    whole = broken.read_bytes()
    broken.write_bytes(whole[: len(whole) // 2])
    update_params(project, {"ingest": {"source": "idx", "path": "data/source/mnist"}})
    _fails(project, "ingest", "t10k-images-idx3-ubyte.gz: not a complete gzip file")
    assert not (project / "data/raw").exists()

    np.savez(project / "data/source/wrong.npz", x=np.zeros((120, 8, 8, 1)), y=np.arange(120) % 2)
    update_params(project, {"ingest": {"source": "npz", "path": "data/source/wrong.npz"}})
    run_cli(["python", "-m", "tasks.ingest"], project)
    run_cli(["python", "-m", "tasks.validate"], project)  # infers expectations/wrong.json
    np.savez(project / "data/source/wrong.npz", x=np.zeros((120, 9, 8, 1)), y=np.arange(120) % 2)
    _fails(project, "ingest", "expect_sample_shape_to_be", "[9, 8, 1]")


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data folder at {SHARED}")
def test_titanic_example_runs_through_the_data_steps_with_dvc(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    shutil.copy(ROOT / "examples/titanic/params.yaml", project / "params.yaml")
    shutil.copy(SHARED / "titanic/titanic.csv", project / "data/source/titanic.csv")
    suite = (project / "expectations/titanic.json").read_text()
    out = run_cli(["dvc", "repro", "standardize"], project)
    assert all(f"Running stage '{step}'" in out.stdout for step in DATA_STEPS), out.stdout
    assert (project / "expectations/titanic.json").read_text() == suite, "the committed suite"
    assert "inferred the suite" not in out.stderr

    report = json.loads((project / "reports/clean.json").read_text())
    assert report["rows_kept"] == 891 and report["clipped_by_column"]["Fare"] > 0
    for name in ("raw", "clean"):
        assert json.loads((project / f"reports/validation/{name}.json").read_text())["success"]
        assert "0 failed" in (project / f"reports/validation/{name}.html").read_text()
    manifest = json.loads((project / "data/split/manifest.json").read_text())
    assert {k: v["rows"] for k, v in manifest.items()} == {"train": 636, "val": 78, "test": 177}
    train = np.load(project / "data/processed/train.npz")
    assert train["x"].shape[0] == 636 and not np.isnan(train["x"]).any()
    status = run_cli(["dvc", "status", *DATA_STEPS], project).stdout
    assert "changed" not in status, status


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data folder at {SHARED}")
def test_mnist_runs_through_the_image_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks import clean, ingest, split, standardize, validate
    from tasks.config import load_params

    project = make_project(
        tmp_path / "project",
        {
            "ingest": {"source": "idx", "path": str(SHARED / "mnist")},
            "validate": {"value_range": [0, 255], "min_rows_per_class": 5000},
        },
    )
    monkeypatch.chdir(project)
    params = load_params()
    for step in (ingest, validate, clean, split, standardize):
        step.run(params)  # type: ignore[attr-defined]
    suite = json.loads((project / "expectations/mnist.json").read_text())["expectations"]
    assert {"type": "expect_sample_shape_to_be", "kwargs": {"shape": [28, 28, 1]}} in [
        {k: e[k] for k in ("type", "kwargs")} for e in suite
    ]
    test = np.load(project / "data/processed/test.npz")
    assert test["x"].shape[1:] == (28, 28, 1) and test["x"].dtype == np.float32
    train = np.load(project / "data/processed/train.npz")["x"]
    assert train.min() == 0.0 and train.max() == pytest.approx(1.0), "minmax fitted on train"
    counts = json.loads((project / "data/split/manifest.json").read_text())
    assert (
        sum(v["rows"] for v in counts.values())
        + json.loads((project / "reports/clean.json").read_text())["rows_dropped"]
        == 70000
    )
