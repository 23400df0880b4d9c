from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tasks import validate
from tasks.checks import ValidationFailed
from tasks.clean import clean_data, duplicated_rows, run
from tasks.config import CleanParams, DatasetParams, OutlierRule, parse_params
from tasks.datafiles import Arrays, write_data
from tasks.runtime import UserError

DATASET = DatasetParams(label="y")


def test_duplicates_and_missing_go_to_quarantine_with_reasons() -> None:
    frame = pd.DataFrame({"a": [1.0, 1.0, np.nan, 4.0, 5.0], "y": [0, 0, 1, None, 1]})
    cleaned = clean_data(frame, CleanParams(), DATASET)
    assert cleaned.data["a"].tolist() == [1.0, 5.0]
    assert cleaned.counts() == {"duplicate": 1, "missing_value": 1, "missing_label": 1}
    assert sorted(cleaned.quarantine["row"]) == [1, 2, 3]
    assert len(frame) == 5, "the input is never modified"


_OTHER_NAN = np.array([0x7FF8000000000001], dtype="u8").view("f8")[0]


@pytest.mark.parametrize(
    "column",
    [
        [0.0, -0.0, np.nan, _OTHER_NAN, 1.0, 0.0, -np.nan],  # one zero, one NaN to pandas
        pd.array(["x", "x", None, None, "y", "x", "y"], dtype="str"),
        pd.Series([1, 1.0, True, "1", None, np.nan, 2], dtype=object),
        pd.Categorical(["a", "b", "a", None, None, "b", "c"]),
        pd.to_datetime(["2024-01-01", None, "2024-01-01", None, "2024-01-02", "NaT", "2024-01-03"]),
        pd.array([1, None, 1, None, 2, 3, 3], dtype="Int64"),
    ],
)
def test_fast_duplicate_check_agrees_with_pandas(column: object) -> None:
    frame = pd.DataFrame({"a": column, "b": [1, 1, 1, 1, 1, 1, 1], "y": [0, 0, 0, 0, 0, 0, 1]})
    frame.index = [7, 3, 9, 1, 0, 5, 2]
    assert duplicated_rows(frame).equals(frame.duplicated(keep="first"))
    assert duplicated_rows(frame).any() and not duplicated_rows(frame.iloc[:1]).any()


def test_imputing_strategies_keep_rows_with_missing_features() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "y": [0, 1, 0]})
    cleaned = clean_data(frame, CleanParams(missing="median"), DATASET)
    assert len(cleaned.data) == 3 and cleaned.quarantine.empty


def test_arrays_drop_non_finite_and_duplicate_samples() -> None:
    x = np.arange(4 * 2 * 2, dtype="float32").reshape(4, 2, 2)
    x[1] = x[0]
    x[2, 0, 0] = np.nan
    cleaned = clean_data(Arrays(x, np.array([0, 0, 1, 1])), CleanParams(), DATASET)
    assert isinstance(cleaned.data, Arrays) and len(cleaned.data) == 2
    assert cleaned.counts() == {"duplicate": 1, "missing_value": 1}


def test_a_frame_that_loses_every_row_is_an_error() -> None:
    frame = pd.DataFrame({"a": [np.nan, np.nan], "y": [0, 1]})
    with pytest.raises(UserError, match="every row was dropped"):
        clean_data(frame, CleanParams(), DATASET)


def test_numbers_stored_as_text_are_coerced_and_real_text_is_left_alone() -> None:
    frame = pd.DataFrame(
        {
            "fare": ["1,234", " 7 ", "", "3.5"],
            "town": ["a", "1", "b", "c"],
            "y": [0, 1, 0, 1],
        }
    )
    cleaned = clean_data(frame, CleanParams(missing="median"), DATASET)
    assert cleaned.coerced == ["fare"]
    assert cleaned.data["fare"].tolist()[:2] == [1234.0, 7.0] and np.isnan(cleaned.data["fare"][2])
    assert cleaned.data["town"].tolist() == ["a", "1", "b", "c"]


def test_missing_strategy_per_column_drops_only_where_asked() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [np.nan, 2.0, 3.0, 4.0], "y": [0] * 4})
    rules = CleanParams(missing="median", missing_by_column={"a": "drop"})
    cleaned = clean_data(frame, rules, DATASET)
    assert cleaned.data["b"].isna().sum() == 1, "b is imputed later, in the preprocessor"
    assert cleaned.quarantine["row"].tolist() == [1] and cleaned.counts() == {"missing_value": 1}


def test_infinity_is_a_missing_value() -> None:
    frame = pd.DataFrame({"a": [1.0, np.inf, 3.0, -np.inf], "y": [0, 1, 0, 1]})
    cleaned = clean_data(frame, CleanParams(), DATASET)
    assert cleaned.data["a"].tolist() == [1.0, 3.0] and cleaned.counts() == {"missing_value": 2}


@pytest.mark.parametrize(
    ("rule", "kept", "clipped"),
    [
        (OutlierRule(method="range", low=0, high=10), [1, 2, 3, 4, 5, 6, 7, 8, 9], {}),
        (OutlierRule(method="iqr", k=1.5), [1, 2, 3, 4, 5, 6, 7, 8, 9], {}),
        (OutlierRule(method="zscore", threshold=2.0), [1, 2, 3, 4, 5, 6, 7, 8, 9], {}),
        (OutlierRule(method="range", high=5, action="clip"), [1, 2, 3, 4, 5, 5, 5, 5, 5, 5], None),
    ],
)
def test_outliers_are_dropped_or_clipped(
    rule: OutlierRule, kept: list[float], clipped: dict[str, int] | None
) -> None:
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 100], "y": [0, 1] * 5})
    cleaned = clean_data(frame, CleanParams(outliers={"a": rule}), DATASET)
    assert cleaned.data["a"].tolist() == kept
    if rule.action == "drop":
        assert cleaned.counts() == {"outlier": 1} and cleaned.quarantine["a"].tolist() == [100]
    else:
        assert cleaned.clipped == {"a": 5} and cleaned.quarantine.empty


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (CleanParams(missing_by_column={"nope": "median"}), r"clean.missing_by_column .*'nope'"),
        (CleanParams(outliers={"y": OutlierRule(method="iqr")}), r"clean.outliers .*'y'"),
        (CleanParams(outliers={"t": OutlierRule(method="iqr")}), "column 't' is not numeric"),
    ],
)
def test_rules_naming_unknown_or_unsuitable_columns(rules: CleanParams, message: str) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": ["u", "v"], "y": [0, 1]})
    with pytest.raises(UserError, match=message):
        clean_data(frame, rules, DATASET)


def _params(tmp_path: Path, extra: dict[str, Any]) -> Any:
    """A project under tmp_path reading a table labelled `y`, with `extra` sections."""
    folders = ("raw", "clean", "reports", "expectations")
    return parse_params(
        {
            "paths": {name: str(tmp_path / name) for name in folders},
            "dataset": {"label": "y"},
            "ingest": {"source": "csv", "path": "people.csv"},
            **extra,
        }
    )


def test_cleaned_data_is_validated_again_and_nothing_is_written_when_it_fails(
    tmp_path: Path,
) -> None:
    params = _params(tmp_path, {"validate": {"min_rows": 4, "min_rows_per_class": 3}})
    # class 1 has 3 rows, two of them identical: fine raw, too few once de-duplicated
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 5.0], "y": [0, 0, 0, 1, 1, 1]})
    write_data(frame, tmp_path / "raw", "data")
    validate.run(params)
    with pytest.raises(ValidationFailed, match="expect_rows_per_class_at_least") as error:
        run(params)
    assert str(tmp_path / "clean") in str(error.value)
    assert not (tmp_path / "clean").exists() and not (tmp_path / "reports/clean.json").exists()
    assert (tmp_path / "reports/validation/clean-failed.html").is_file()

    write_data(pd.concat([frame, frame.iloc[[3]] + [10, 0]]), tmp_path / "raw", "data")
    validate.run(params, infer=True)
    run(params)
    report = json.loads((tmp_path / "reports/clean.json").read_text())
    assert report["dropped_by_reason"] == {"duplicate": 1} and report["rows_kept"] == 6
    assert (tmp_path / "reports/validation/clean.html").is_file()


def test_a_raw_batch_share_of_nulls_is_not_held_against_the_de_duplicated_rows(
    tmp_path: Path,
) -> None:
    """3 nulls in 100 rows infer `mostly: 0.97`; dropping 2 full duplicates leaves 96.9%."""
    params = _params(
        tmp_path,
        {
            "validate": {"min_rows": 4, "min_rows_per_class": 3, "max_null_fraction": 0.5},
            "clean": {"missing": "median"},
        },
    )
    frame = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0), "y": np.arange(100) % 2})
    frame.loc[:2, "a"] = np.nan
    frame.iloc[98:] = frame.iloc[50:52].to_numpy()  # duplicates of rows 50 and 51
    write_data(frame, tmp_path / "raw", "data")
    validate.run(params)
    cleaned = run(params)
    assert cleaned.counts() == {"duplicate": 2} and cleaned.data["a"].notna().mean() < 0.97
