"""Your own data as it really comes (issue 16), from the command line, on small files the
tests write: a headerless file, `?` markers and padded text, a `;` file with a byte-order
mark, regression's metrics, a column that is text only because of blanks, a renamed column,
a one-row file. Each refusal is one line and a non-zero exit, and changes nothing: data/raw,
dvc.lock, the reports, the splits and the MLflow store (no registry, so no champion, moves)
stay byte for byte as they were; the refused batch is kept in data/rejected/ with its report.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import make_project, run_cli, update_params

pytestmark = pytest.mark.slow

COLUMNS = ["age", "town", "label"]
AS_GIVEN = ("data/source", "data/rejected", ".dvc/tmp", ".dvc/cache", ".git")


def _people(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.uniform(1, 80, rows).round(1).astype(object),
            "town": rng.choice([" a", "b ", " c "], rows).astype(object),
            "label": np.where(np.arange(rows) % 2, " yes", " no"),
        }
    )
    frame.loc[frame.index % 9 == 4, "town"] = " ?"  # a missing marker, with a leading space
    frame.loc[frame.index % 11 == 5, "age"] = "?"
    return frame


def _snapshot(project: Path) -> dict[str, str]:
    """Every file's md5, but for the sources, the rejected batch and DVC's/git's own."""
    return {
        str(path.relative_to(project)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(project.rglob("*"))
        if path.is_file() and not str(path.relative_to(project)).startswith(AS_GIVEN)
    }


def _refused(project: Path, command: list[str], *needles: str) -> str:
    """The command fails with exactly one `error:` line, as the last line, holding needles."""
    result = run_cli(command, project, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def csv_project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "project",
        {
            "ingest": {"source": "csv", "path": "data/source/people.csv"},
            "validate": {"labels": None, "value_range": None, "min_rows_per_class": 5}
            | {"max_null_fraction": 0.3, "min_rows": 50},
            "model": {"type": "dense"},
        },
    )


def test_a_headerless_semicolon_file_with_markers_reads_as_meant_and_a_bad_batch_changes_nothing(
    csv_project: Path,
) -> None:
    project, source = csv_project, csv_project / "data/source/people.csv"
    _people().to_csv(source, sep=";", header=False, index=False, encoding="utf-8-sig")
    _refused(project, ["python", "-m", "tasks.ingest"], "ingest.csv.header: none")  # issue 1
    assert not (project / "data/raw").exists()

    update_params(project, {"ingest": {"csv": {"header": "none", "columns": COLUMNS}}})
    out = run_cli(["dvc", "repro", "split"], project)
    detected = "delimiter ';' (sniffed), encoding utf-8-sig with a byte-order mark"  # issue 3
    assert detected in out.stderr
    assert detected in json.loads((project / "reports/validation/raw.json").read_text())["read"]
    raw = pd.read_parquet(project / "data/raw/data.parquet")  # issue 2
    assert raw["town"].isna().sum() == (_people()["town"] == " ?").sum()
    assert raw["age"].dtype == "float64" and set(raw["town"].dropna()) == {"a", "b", "c"}
    manifest = json.loads((project / "data/split/manifest.json").read_text())
    assert set(manifest["train"]["class_counts"]) == {"no", "yes"}, "no ' yes' class"

    before = _snapshot(project)  # issues 6 and 7: a renamed column, through `dvc repro`
    _people().rename(columns={"town": "city"}).to_csv(source, sep=";", index=False)
    update_params(project, {"ingest": {"csv": {"header": "first_row", "columns": None}}})
    before["params.yaml"] = _snapshot(project)["params.yaml"]
    message = _refused(project, ["dvc", "repro", "split"], "missing ['town'], unexpected ['city']")
    assert "as expected" not in message and "data/raw is unchanged" in message
    assert _snapshot(project) == before, "data/raw, dvc.lock, reports and splits as they were"
    rejected = project / "data/rejected"
    assert {p.name for p in rejected.iterdir()} >= {"data.parquet", "validation-failed.html"}
    assert "unexpected ['city']" in html.unescape((rejected / "validation-failed.html").read_text())
    assert not (project / "mlruns").exists(), "no MLflow store opened: no registry change"


def test_the_suite_holds_a_column_as_cleaning_gives_it(tmp_path: Path) -> None:
    """Issue 5: numbers with a few blanks are text in the file, numbers after cleaning."""
    project = make_project(
        tmp_path / "project",
        {
            "ingest": {"source": "parquet", "path": "data/source/people.parquet"},
            "validate": {"labels": None, "value_range": None, "min_rows_per_class": 5}
            | {"max_null_fraction": 0.3},
        },
    )
    source = project / "data/source/people.parquet"
    clean = _people().assign(age=lambda f: pd.to_numeric(f["age"], errors="coerce").fillna(40.0))
    clean.assign(age=clean["age"].astype(str).mask(clean.index % 7 == 3, " ")).to_parquet(source)
    for step in ("ingest", "validate"):
        run_cli(["python", "-m", f"tasks.{step}"], project)
    suite = json.loads((project / "expectations/people.json").read_text())["expectations"]
    assert {"column": "age", "kind": "number"} in [e["kwargs"] for e in suite]
    clean.to_parquet(source)  # the same data without blanks: accepted
    for step in ("ingest", "validate"):
        run_cli(["python", "-m", f"tasks.{step}"], project)

    before = _snapshot(project)
    clean.assign(age=clean["age"].astype(str).mask(clean.index < 4, "old")).to_parquet(source)
    message = _refused(project, ["python", "-m", "tasks.ingest"], "column 'age'", "4 rows")
    assert "found text" in message and _snapshot(project) == before
    clean.iloc[:1].to_parquet(source)  # issue 6: a one-row file, no false kind line
    result = run_cli(["python", "-m", "tasks.ingest"], project, check=False)
    assert result.returncode == 1 and "expect_table_row_count_to_be_between" in result.stderr
    assert "expect_column_kind_to_be" not in result.stderr and _snapshot(project) == before


def test_regression_metrics_are_defaulted_or_refused_before_anything_runs(tmp_path: Path) -> None:
    """Issue 4: the shipped params.yaml says val_accuracy and accuracy: 0.9."""
    project = make_project(
        tmp_path / "project",
        {"dataset": {"task": "regression"}, "ingest": {"name": "diabetes"}},
    )
    _refused(
        project,
        ["dvc", "repro"],
        "params.yaml: tune.metric: 'val_accuracy' does not fit dataset.task regression",
    )
    assert not (project / "data/raw").exists() and not (project / "reports").exists()

    params = yaml.safe_load((project / "params.yaml").read_text())
    del params["tune"]["metric"], params["register"]["metric"], params["register"]["thresholds"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    code = "from tasks.config import load_params as l; p = l(); r = p.register_"
    code += "; print(p.tune.metric, r.metric, r.thresholds)"
    shown = run_cli(["python", "-c", code], project).stdout.split()
    assert shown == ["val_loss", "r2", "{}"]
