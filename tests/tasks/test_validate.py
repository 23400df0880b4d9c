from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.config import DatasetParams, ValidateParams
from tasks.datafiles import Arrays
from tasks.validate import validate_data

DATASET = DatasetParams(label="label")


def _failed(checks: list) -> dict[str, list]:  # type: ignore[type-arg]
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for check in checks:
        if not check.success:
            out.setdefault(check.expectation, []).append(check)
    return out


def _table(rows: int = 20) -> pd.DataFrame:
    return pd.DataFrame({"a": np.linspace(0, 1, rows), "label": [0, 1] * (rows // 2)})


def test_good_table_passes() -> None:
    rules = ValidateParams(min_rows=10, labels=[0, 1], value_range=(0, 1), min_rows_per_class=5)
    assert not _failed(validate_data(_table(), rules, DATASET))


def test_each_broken_rule_is_reported_with_column_and_rows() -> None:
    frame = _table()
    frame.loc[0, "a"] = np.nan
    frame.loc[1, "a"] = 7.0
    frame.loc[2, "label"] = 3
    rules = ValidateParams(
        min_rows=50, labels=[0, 1], value_range=(0, 1), columns=["a", "b", "label"]
    )
    failed = _failed(validate_data(frame, rules, DATASET))
    assert set(failed) >= {
        "expect_table_row_count_to_be_between",
        "expect_column_to_exist",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
    }
    null = failed["expect_column_values_to_not_be_null"][0]
    assert null.column == "a" and null.failing_rows == 1
    assert "column 'a'" in null.describe() and "1 rows" in null.describe()
    assert failed["expect_column_to_exist"][0].column == "b"


def test_single_class_label_fails() -> None:
    frame = pd.DataFrame({"a": range(20), "label": [1] * 20})
    failed = _failed(validate_data(frame, ValidateParams(), DATASET))
    assert "expect_at_least_two_classes" in failed


@pytest.mark.parametrize("bad", [np.nan, np.inf, 99.0])
def test_images_with_bad_values_fail(bad: float) -> None:
    x = np.random.default_rng(0).uniform(0, 16, (30, 8, 8, 1))
    x[3, 2, 2, 0] = bad
    data = Arrays(x, np.array([0, 1, 2] * 10))
    failed = _failed(validate_data(data, ValidateParams(value_range=(0, 16)), DATASET))
    assert failed, "a NaN, infinity or out-of-range pixel must fail validation"
