"""validate: check `paths.raw` against a Great Expectations suite; the gate before training.

Writes `reports/validation/raw.json` (the suite and every result) when the data passes.
When it fails, the stage exits non-zero with one line per failing expectation and writes
`raw-failed.json` beside it for a person to read; nothing downstream runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import DatasetParams, Params, ValidateParams, load_params
from tasks.datafiles import Arrays, Data, read_data, replace_file, write_json
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


class ValidationFailed(UserError):
    """The data broke one or more expectations."""


@dataclass(frozen=True)
class Check:
    expectation: str
    column: str | None
    success: bool
    expected: dict[str, Any]
    found: Any
    failing_rows: int | None

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        rows = f", {self.failing_rows} rows" if self.failing_rows else ""
        return f"{where}: {self.expectation} {self.expected} failed (found {self.found}{rows})"


def summarize_arrays(data: Arrays, label: str) -> pd.DataFrame:
    """One row per sample: its label and the min, max and finiteness of its values."""
    flat = data.x.reshape(len(data), -1).astype("float64")
    finite = np.isfinite(flat).all(axis=1)
    with np.errstate(invalid="ignore"):
        return pd.DataFrame(
            {
                label: data.y,
                "x_min": np.where(finite, np.nanmin(flat, axis=1, initial=np.inf), np.nan),
                "x_max": np.where(finite, np.nanmax(flat, axis=1, initial=-np.inf), np.nan),
            }
        )


def build_expectations(
    frame: pd.DataFrame, rules: ValidateParams, dataset: DatasetParams, value_columns: list[str]
) -> list[Any]:
    """The expectation suite for this data: schema, label set, ranges, nulls, row count."""
    import great_expectations as gx

    ex = gx.expectations
    columns = rules.columns or list(frame.columns)
    suite: list[Any] = [ex.ExpectTableRowCountToBeBetween(min_value=rules.min_rows)]
    suite += [ex.ExpectColumnToExist(column=c) for c in dict.fromkeys([*columns, dataset.label])]
    suite += [
        ex.ExpectColumnValuesToNotBeNull(column=c, mostly=1 - rules.max_null_fraction)
        for c in columns
        if c in frame.columns and c != dataset.label
    ]
    suite.append(ex.ExpectColumnValuesToNotBeNull(column=dataset.label))
    if rules.labels is not None:
        suite.append(ex.ExpectColumnValuesToBeInSet(column=dataset.label, value_set=rules.labels))
    if rules.value_range is not None:
        low, high = rules.value_range
        suite += [
            ex.ExpectColumnValuesToBeBetween(column=c, min_value=low, max_value=high)
            for c in value_columns
            if c in frame.columns
        ]
    return suite


def _run_suite(frame: pd.DataFrame, expectations: list[Any]) -> list[Check]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX pins this module's logger to INFO at import ("Created temporary directory ...")
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("pipeline").add_dataframe_asset("data")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    suite = context.suites.add(gx.ExpectationSuite(name="data", expectations=expectations))
    checks = []
    for result in batch.validate(suite).results:
        config = result.expectation_config
        assert config is not None  # GX fills it for every result of a suite
        kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "column")}
        checks.append(
            Check(
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=bool(result.success),
                expected=kwargs,
                found=result.result.get(
                    "observed_value", result.result.get("partial_unexpected_list", "missing")
                ),
                failing_rows=result.result.get("unexpected_count"),
            )
        )
    return checks


def _class_checks(labels: pd.Series, rules: ValidateParams) -> list[Check]:
    counts = labels.value_counts()
    smallest = int(counts.min()) if len(counts) else 0
    return [
        Check(
            "expect_at_least_two_classes",
            labels.name,
            len(counts) >= 2,
            {"min_classes": 2},
            len(counts),
            None,
        ),
        Check(
            "expect_rows_per_class_at_least",
            labels.name,
            smallest >= rules.min_rows_per_class,
            {"min_value": rules.min_rows_per_class},
            {str(k): int(v) for k, v in counts.items()},
            int((counts < rules.min_rows_per_class).sum()) or None,
        ),
    ]


def validate_data(data: Data, rules: ValidateParams, dataset: DatasetParams) -> list[Check]:
    """Run every expectation on the data and return one Check per expectation."""
    if isinstance(data, Arrays):
        frame, value_columns = summarize_arrays(data, dataset.label), ["x_min", "x_max"]
    else:
        frame = data
        value_columns = [c for c in frame.select_dtypes("number").columns if c != dataset.label]
    checks = _run_suite(frame, build_expectations(frame, rules, dataset, value_columns))
    if dataset.task == "classification" and dataset.label in frame.columns:
        checks += _class_checks(frame[dataset.label].dropna(), rules)
    return checks


def report_path(params: Params, name: str = "raw") -> Path:
    return params.paths.reports / "validation" / f"{name}.json"


def run(params: Params) -> list[Check]:
    """Validate `paths.raw`; raise ValidationFailed naming each failing expectation."""
    checks = validate_data(read_data(params.paths.raw, "data"), params.validate_, params.dataset)
    failed = [c for c in checks if not c.success]
    payload = {"success": not failed, "checks": [c.__dict__ for c in checks]}
    target = report_path(params)
    if failed:
        write_json(target.with_name(f"{target.stem}-failed.json"), payload)
        lines = "\n".join(f"  {params.paths.raw}: {c.describe()}" for c in failed)
        raise ValidationFailed(
            f"{len(failed)} expectation(s) failed on {params.paths.raw}:\n{lines}"
        )
    with replace_file(target) as staging:
        write_json(staging, payload)
    log.info("validate: %d expectations passed on %s", len(checks), params.paths.raw)
    return checks


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.validate")
