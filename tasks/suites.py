"""Expectation suites: what a data source is expected to look like, as plain data.

A suite is a list of expectations (`{"type", "kwargs", "meta": {"origin"}}`) in two parts.
The inferred part (column set, column kinds, numeric ranges, null fractions, label set; for
arrays the sample shape and value range) is read off the data by `infer_suite` and kept in a
reviewable JSON file, `paths.expectations/<suite>.json` (`load_suite`, `save_suite`). The
user part comes from params.yaml's `validate:` (`user_expectations`); `full_suite` joins the
two. Running a suite on data is `tasks.checks`'s work; this module only defines it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import DatasetParams, Params, ValidateParams
from tasks.datafiles import Arrays, Data, replace_file
from tasks.runtime import UserError

Expectation = dict[str, Any]  # {"type": ..., "kwargs": {...}, "meta": {"origin": ...}}

# the expectation types that tasks.checks runs itself (the keys of its LOCAL_CHECKS);
# every other type is Great Expectations' own
LOCAL_TYPES = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_column_kind_to_be",
        "expect_sample_shape_to_be",
        "expect_at_least_two_classes",
        "expect_rows_per_class_at_least",
    }
)


NOT_NULL = "expect_column_values_to_not_be_null"


def _expect(name: str, origin: str, **kwargs: Any) -> Expectation:
    return {"type": name, "kwargs": kwargs, "meta": {"origin": origin}}


def summarize_arrays(data: Arrays, label: str) -> pd.DataFrame:
    """One row per sample: its label and the min, max and finiteness of its values."""
    flat = data.x.reshape(len(data), -1)
    if flat.dtype.kind == "f":
        finite = np.isfinite(flat).all(axis=1)
    else:
        finite = np.ones(len(flat), dtype=bool)
    empty = flat.size == 0  # no samples, or samples without values
    with np.errstate(invalid="ignore"):
        low = np.zeros(len(flat)) if empty else flat.min(axis=1)
        high = np.zeros(len(flat)) if empty else flat.max(axis=1)
    return pd.DataFrame(
        {
            label: data.y,
            "x_min": np.where(finite, low.astype("float64"), np.nan),
            "x_max": np.where(finite, high.astype("float64"), np.nan),
        }
    )


def column_kind(series: pd.Series) -> str:
    """number | bool | datetime | text: what a column holds, independent of pandas' dtype names."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "text"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _infer_column(
    frame: pd.DataFrame, column: str, dataset: DatasetParams, key: str | None = None
) -> list[Expectation]:
    series = frame[column]
    if series.isna().all() and column == dataset.label:
        raise UserError(f"label column {column!r} is empty in every row: nothing to learn from")
    if series.isna().all():
        raise UserError(
            f"column {column!r} is entirely empty; leave it out (ingest.drop_columns) "
            "before a suite can be inferred"
        )
    kind = column_kind(series)
    result = [_expect("expect_column_kind_to_be", "inferred", column=column, kind=kind)]
    present = float(series.notna().mean())
    if column != dataset.label:
        mostly = math.floor(present * 100) / 100
        result.append(_expect(NOT_NULL, "inferred", column=column, mostly=mostly))
    if column == key:  # row names: always present, but new rows bring new values
        return [*result[:1], _expect(NOT_NULL, "inferred", column=column, mostly=1.0)]
    if kind == "number":
        values = series.dropna()
        if not np.isfinite(values.to_numpy(dtype="float64")).all():
            raise UserError(f"column {column!r} holds infinite values; fix the source data")
        result.append(
            _expect(
                "expect_column_values_to_be_between",
                "inferred",
                column=column,
                min_value=_plain(values.min()),
                max_value=_plain(values.max()),
            )
        )
    return result


def infer_suite(data: Data, dataset: DatasetParams, key: str | None = None) -> list[Expectation]:
    """Expectations read off the data: schema, kinds, ranges, null fractions, label set
    (for the `split.key` column, its kind and no nulls only)."""
    if isinstance(data, Arrays):
        frame = summarize_arrays(data, dataset.label)
        if frame[["x_min", "x_max"]].isna().any().any():
            raise UserError("the arrays hold NaN or infinite values; fix the source data")
        suite = [
            _expect("expect_sample_shape_to_be", "inferred", shape=list(data.x.shape[1:])),
            _expect(
                "expect_column_values_to_be_between",
                "inferred",
                column="x_min",
                min_value=_plain(frame["x_min"].min()),
            ),
            _expect(
                "expect_column_values_to_be_between",
                "inferred",
                column="x_max",
                max_value=_plain(frame["x_max"].max()),
            ),
        ]
    else:
        frame = data
        suite = [
            _expect(
                "expect_table_columns_to_match_set",
                "inferred",
                column_set=list(frame.columns),
                exact_match=True,
            )
        ]
        for column in frame.columns:
            suite += _infer_column(frame, column, dataset, key)
    if dataset.task == "classification" and dataset.label in frame.columns:
        labels = sorted(_plain(v) for v in frame[dataset.label].dropna().unique())
        suite.append(
            _expect(
                "expect_column_values_to_be_in_set",
                "inferred",
                column=dataset.label,
                value_set=labels,
            )
        )
    return suite


def user_expectations(
    rules: ValidateParams, dataset: DatasetParams, columns: list[str], value_columns: list[str]
) -> list[Expectation]:
    """The expectations written in params.yaml's `validate:` section."""
    wanted = rules.columns or columns
    suite = [_expect("expect_table_row_count_to_be_between", "params", min_value=rules.min_rows)]
    suite += [  # the data's own columns need no existence check: only the ones asked for
        _expect("expect_column_to_exist", "params", column=c)
        for c in dict.fromkeys([*(rules.columns or []), dataset.label])
    ]
    suite += [
        _expect(
            "expect_column_values_to_not_be_null",
            "params",
            column=c,
            mostly=1 - rules.max_null_fraction,
        )
        for c in wanted
        if c in columns and c != dataset.label
    ]
    suite.append(_expect("expect_column_values_to_not_be_null", "params", column=dataset.label))
    if rules.labels is not None:
        suite.append(
            _expect(
                "expect_column_values_to_be_in_set",
                "params",
                column=dataset.label,
                value_set=rules.labels,
            )
        )
    if rules.value_range is not None:
        low, high = rules.value_range
        suite += [
            _expect(
                "expect_column_values_to_be_between",
                "params",
                column=c,
                min_value=low,
                max_value=high,
            )
            for c in value_columns
        ]
    if dataset.task == "classification":
        suite.append(_expect("expect_at_least_two_classes", "params", column=dataset.label))
        suite.append(
            _expect(
                "expect_rows_per_class_at_least",
                "params",
                column=dataset.label,
                min_value=rules.min_rows_per_class,
            )
        )
    return suite


def _domain(configuration: Any, expectation: Expectation) -> Any:
    """A GX expectation object; a misspelt type or argument is the user's error, in one line."""
    kwargs = {k: v for k, v in expectation["kwargs"].items() if k != "batch_id"}
    try:
        return configuration(type=expectation["type"], kwargs=kwargs).to_domain_obj()
    except Exception as error:  # GX raises its own errors and pydantic v1 ones
        first = str(error).replace("\n", " ")[:200]
        raise UserError(
            f"expectation {expectation['type']} {kwargs} is not valid: {first}"
        ) from None


def _columns(data: Data, label: str) -> tuple[list[str], list[str]]:
    if isinstance(data, Arrays):
        return [label, "x_min", "x_max"], ["x_min", "x_max"]
    numeric = [c for c in data.select_dtypes("number").columns if c != label]
    return list(data.columns), numeric


def full_suite(
    data: Data, rules: ValidateParams, dataset: DatasetParams, suite: list[Expectation] | None
) -> list[Expectation]:
    columns, value_columns = _columns(data, dataset.label)
    return _merge_not_null(
        [*(suite or []), *user_expectations(rules, dataset, columns, value_columns)]
    )


def _merge_not_null(expectations: list[Expectation]) -> list[Expectation]:
    """One not-null expectation per column: the strictest `mostly` of the suite and params."""
    position: dict[str, int] = {}
    merged: list[Expectation] = []
    for expectation in expectations:
        kwargs = expectation["kwargs"]
        if expectation["type"] != "expect_column_values_to_not_be_null":
            merged.append(expectation)
        elif kwargs["column"] not in position:
            position[kwargs["column"]] = len(merged)
            merged.append(expectation)
        else:
            kept = merged[position[kwargs["column"]]]
            if kwargs.get("mostly", 1.0) > kept["kwargs"].get("mostly", 1.0):
                merged[position[kwargs["column"]]] = expectation  # the stricter one
    return merged


def suite_name(params: Params) -> str:
    """`validate.suite`, else the source's name: the sklearn set, or the file/folder stem."""
    if params.validate_.suite:
        return params.validate_.suite
    if params.ingest.source == "sklearn" or params.ingest.path is None:
        return params.ingest.name
    return params.ingest.path.name.split(".")[0] or "data"


def suite_path(params: Params) -> Path:
    return params.paths.expectations / f"{suite_name(params)}.json"


def load_suite(path: Path) -> list[Expectation]:
    """Read a suite file: {"name": ..., "expectations": [{"type", "kwargs", "meta"}, ...]}."""
    try:
        payload = json.loads(path.read_text())
        expectations: list[Expectation] = payload["expectations"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not a valid suite file ({error!r})") from None
    if not isinstance(expectations, list) or not all(isinstance(e, dict) for e in expectations):
        raise UserError(f"{path}: 'expectations' must be a list of objects")
    entries = [{"kwargs": {}, "meta": {}, **e} for e in expectations]
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    for entry in entries:
        if entry.get("type") not in LOCAL_TYPES:
            try:
                _domain(ExpectationConfiguration, entry)
            except UserError as error:
                raise UserError(f"{path}: {error}") from None
    return entries


def save_suite(path: Path, name: str, expectations: list[Expectation]) -> None:
    """Write the suite with one expectation per line, so a review or a diff reads easily."""
    lines = ",\n".join(f"    {json.dumps(e, default=str)}" for e in expectations)
    text = f'{{\n  "name": {json.dumps(name)},\n  "expectations": [\n{lines}\n  ]\n}}\n'
    with replace_file(path) as staging:
        staging.write_text(text)
