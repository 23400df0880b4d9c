from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tasks.checks import (
    LOCAL_CHECKS,
    ValidationFailed,
    causes,
    check_data,
    raise_on_failure,
    validate_data,
)
from tasks.config import DatasetParams, ValidateParams, parse_params
from tasks.datafiles import Arrays, write_data
from tasks.runtime import UserError
from tasks.suites import LOCAL_TYPES, full_suite, infer_suite, load_suite, save_suite
from tasks.validate import run

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


# --- the saved suite: inferred once, checked on later data ---------------------------------


LENIENT = ValidateParams(max_null_fraction=0.5)


def _mixed(rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.linspace(1, 80, rows),
            "town": ["a", "b", None, "c"] * (rows // 4),
            "label": [0, 1] * (rows // 2),
        }
    )


def test_inferred_suite_records_schema_kinds_ranges_nulls_and_labels() -> None:
    suite = infer_suite(_mixed(), DATASET)
    by_type = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite}
    assert by_type[("expect_table_columns_to_match_set", None)]["column_set"] == [
        "age",
        "town",
        "label",
    ]
    assert by_type[("expect_column_kind_to_be", "age")]["kind"] == "number"
    assert by_type[("expect_column_kind_to_be", "town")]["kind"] == "text"
    assert by_type[("expect_column_values_to_be_between", "age")] == {
        "column": "age",
        "min_value": 1.0,
        "max_value": 80.0,
    }
    assert by_type[("expect_column_values_to_not_be_null", "town")]["mostly"] == 0.75
    assert by_type[("expect_column_values_to_be_in_set", "label")]["value_set"] == [0, 1]
    assert all(e["meta"]["origin"] == "inferred" for e in suite)
    assert not _failed(validate_data(_mixed(), LENIENT, DATASET, suite))


@pytest.mark.parametrize(
    ("change", "expectation", "column"),
    [
        (lambda f: f.assign(extra=1.0), "expect_table_columns_to_match_set", None),
        (lambda f: f.drop(columns="town"), "expect_table_columns_to_match_set", None),
        (lambda f: f.assign(age=f["age"].astype(str).mask(f.index == 3, "old")), None, "age"),
        (lambda f: f.assign(age=f["age"] * 10), "expect_column_values_to_be_between", "age"),
        (lambda f: f.assign(age=f["age"].mask(f.index < 20)), None, "age"),
        (lambda f: f.assign(age=np.nan), None, "age"),
        (lambda f: f.assign(age=f["age"].mask(f.index == 0, np.inf)), None, "age"),
        (lambda f: f.assign(label=f["label"] + 1), "expect_column_values_to_be_in_set", "label"),
    ],
    ids=[
        "new-column",
        "missing-column",
        "text-in-numeric",
        "out-of-range",
        "more-nulls",
        "all-null",
        "infinity",
        "new-label",
    ],
)
def test_a_change_in_new_data_breaks_the_saved_suite(
    change: Any, expectation: str | None, column: str | None
) -> None:
    suite = infer_suite(_mixed(), DATASET)
    failed = [c for c in validate_data(change(_mixed()), LENIENT, DATASET, suite)]
    failed = [c for c in failed if not c.success]
    assert failed, "the saved suite must catch the change"
    assert any(
        (expectation is None or c.expectation == expectation) and c.column == column for c in failed
    ), [c.describe() for c in failed]


def test_text_in_a_numeric_column_names_the_column_and_rows() -> None:
    suite = infer_suite(_mixed(), DATASET)
    frame = _mixed().assign(age=lambda f: f["age"].astype(str).mask(f.index < 3, "n/a"))
    kind = next(
        c
        for c in validate_data(frame, LENIENT, DATASET, suite)
        if c.expectation == "expect_column_kind_to_be" and c.column == "age"
    )
    assert not kind.success and kind.failing_rows == 3 and "column 'age'" in kind.describe()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_mixed().assign(town=None), "column 'town' is entirely empty"),
        (_mixed().assign(age=np.inf), "column 'age' holds infinite values"),
    ],
)
def test_a_suite_is_not_inferred_from_unusable_columns(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(UserError, match=message):
        infer_suite(frame, DATASET)


def test_images_of_another_shape_break_the_saved_suite() -> None:
    rng = np.random.default_rng(0)
    suite = infer_suite(Arrays(rng.uniform(0, 16, (30, 8, 8, 1)), np.arange(30) % 3), DATASET)
    other = Arrays(rng.uniform(0, 16, (30, 28, 28, 1)), np.arange(30) % 3)
    failed = _failed(validate_data(other, LENIENT, DATASET, suite))
    assert failed["expect_sample_shape_to_be"][0].found == [28, 28, 1]


def test_suite_file_round_trips_and_a_broken_one_is_named(tmp_path: Path) -> None:
    suite = infer_suite(_mixed(), DATASET)
    save_suite(tmp_path / "s.json", "s", suite)
    assert load_suite(tmp_path / "s.json") == suite
    (tmp_path / "bad.json").write_text('{"expectations": 3')
    with pytest.raises(UserError, match="bad.json: not a valid suite file"):
        load_suite(tmp_path / "bad.json")


def _params(tmp_path: Path, **validate: Any) -> Any:
    return parse_params(
        {
            "paths": {
                "raw": str(tmp_path / "raw"),
                "reports": str(tmp_path / "reports"),
                "expectations": str(tmp_path / "expectations"),
            },
            "ingest": {"source": "csv", "path": str(tmp_path / "people.csv")},
            "validate": {"min_rows": 10, "min_rows_per_class": 2, **validate},
        }
    )


def test_first_run_saves_the_suite_and_later_runs_are_held_to_it(tmp_path: Path) -> None:
    params = _params(tmp_path, max_null_fraction=0.5)
    write_data(_mixed(), tmp_path / "raw", "data")
    run(params)
    suite_file = tmp_path / "expectations" / "people.json"
    assert suite_file.is_file() and (tmp_path / "reports/validation/raw.html").is_file()

    write_data(_mixed().assign(age=lambda f: f["age"] + 100), tmp_path / "raw", "data")
    with pytest.raises(ValidationFailed) as error:
        run(params)
    lines = str(error.value).splitlines()
    assert len(lines) == 1 and "column 'age'" in lines[0] and "40 rows" in lines[0]
    report = tmp_path / "reports/validation"
    assert not (report / "raw.json").exists(), "no passing report left for clean to trust"
    assert "FAIL" in (report / "raw-failed.html").read_text()
    assert json.loads(suite_file.read_text())["name"] == "people"

    run(params, infer=True)  # an explicit re-inference accepts the new ranges
    assert (report / "raw.json").is_file() and not (report / "raw-failed.json").exists()


def test_no_suite_is_saved_from_data_that_fails_the_params_rules(tmp_path: Path) -> None:
    write_data(_mixed(), tmp_path / "raw", "data")
    with pytest.raises(ValidationFailed, match="expect_table_row_count_to_be_between"):
        run(_params(tmp_path, min_rows=1000))
    assert not (tmp_path / "expectations").exists()


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("digits", "classification"),
        ("breast_cancer", "classification"),
        ("wine", "classification"),
        ("diabetes", "regression"),
    ],
)
def test_bundled_sets_pass_their_own_inferred_suite(name: str, task: str) -> None:
    from tasks.ingest import load_sklearn

    dataset = DatasetParams(label="target", task=task)  # type: ignore[arg-type]
    data = load_sklearn(name, "target")
    suite = infer_suite(data, dataset)
    assert not _failed(validate_data(data, ValidateParams(), dataset, suite))
    has_label_set = any(e["type"] == "expect_column_values_to_be_in_set" for e in suite)
    assert has_label_set == (task == "classification")


def test_sequences_get_a_shape_and_range_suite() -> None:
    x = np.random.default_rng(0).normal(size=(40, 12, 3))
    data = Arrays(x, np.arange(40) % 2)
    suite = infer_suite(data, DATASET)
    assert suite[0] == {
        "type": "expect_sample_shape_to_be",
        "kwargs": {"shape": [12, 3]},
        "meta": {"origin": "inferred"},
    }
    assert not _failed(validate_data(data, ValidateParams(), DATASET, suite))
    longer = Arrays(np.zeros((40, 20, 3)), np.arange(40) % 2)
    assert "expect_sample_shape_to_be" in _failed(
        validate_data(longer, ValidateParams(), DATASET, suite)
    )


def test_suite_and_params_null_rules_merge_to_the_strictest_without_touching_the_suite() -> None:
    suite = infer_suite(_mixed(), DATASET)
    saved = json.dumps(suite)
    merged = full_suite(_mixed(), ValidateParams(max_null_fraction=0.1), DATASET, suite)
    town = [
        e
        for e in merged
        if e["type"] == "expect_column_values_to_not_be_null" and e["kwargs"]["column"] == "town"
    ]
    assert len(town) == 1 and town[0]["kwargs"]["mostly"] == 0.9
    assert town[0]["meta"]["origin"] == "params" and json.dumps(suite) == saved


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "expect_nonsense", "kwargs": {"column": "age"}}, "expect_nonsense"),
        (
            {"type": "expect_column_values_to_be_between", "kwargs": {"colum": "age"}},
            "expect_column_values_to_be_between",
        ),
    ],
)
def test_a_misspelt_expectation_in_the_suite_file_is_one_clear_error(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=f"expectation {message} .* is not valid"):
        validate_data(_mixed(), LENIENT, DATASET, [entry])


def test_a_misspelt_expectation_names_the_suite_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"name": "s", "expectations": [{"type": "expect_nonsense", "kwargs": {}}]}')
    with pytest.raises(UserError, match=r"s.json: expectation expect_nonsense"):
        load_suite(path)


def test_integer_images_are_summarized() -> None:
    x = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    suite = infer_suite(Arrays(x, np.arange(30) % 3), DATASET)
    assert {"column": "x_max", "max_value": float(x.max())} in [e["kwargs"] for e in suite]


def _gx(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


def test_expectations_that_read_other_columns_still_see_the_whole_table() -> None:
    # a column's own expectations run on that column alone; these need the rest of the row
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 40.0], "b": [1, 1, 1, 0], "label": [0, 1, 0, 1]})
    suite = [
        _gx(
            "column_values_to_be_between",
            column="a",
            max_value=10,
            row_condition="b==1",
            condition_parser="pandas",
        ),
        _gx("column_pair_values_a_to_be_greater_than_b", column_A="a", column_B="b", or_equal=True),
        _gx("column_to_exist", column="label", column_index=2),
    ]
    assert [c.success for c in check_data(frame, suite, "label")] == [True, True, True]
    frame.loc[3, "b"] = 1
    frame = frame[["label", "a", "b"]]
    assert [c.success for c in check_data(frame, suite, "label")] == [False, True, False]


def test_results_come_in_the_order_of_one_gx_run_over_the_table() -> None:
    # GX groups by column in order of first appearance, the table's own group included
    frame = pd.DataFrame({"a": [1.0, None], "b": [1.0, 2.0], "label": [0, 1]})
    suite = [
        _gx("column_values_to_be_between", column="a", min_value=0),
        _gx("table_row_count_to_be_between", min_value=1),
        _gx("column_values_to_not_be_null", column="b"),
        _gx("column_values_to_not_be_null", column="a"),
        _gx("column_values_to_be_between", column="gone", min_value=0),
    ]
    order = [(c.column, c.expectation[7:]) for c in check_data(frame, suite, "label")]
    assert order == [
        ("gone", "column_values_to_be_between"),  # GX lists what it could not compute first
        ("a", "column_values_to_be_between"),
        ("a", "column_values_to_not_be_null"),
        (None, "table_row_count_to_be_between"),
        ("b", "column_values_to_not_be_null"),
    ]


def test_the_suite_file_check_knows_every_local_expectation() -> None:
    # load_suite leaves the local types to tasks.checks and hands the rest to GX to check
    assert set(LOCAL_CHECKS) == LOCAL_TYPES


# --- messages: one line per cause (issue 16, 5 and 6) ---------------------------------------


def test_a_renamed_column_is_one_line_naming_what_is_missing_and_what_is_new() -> None:
    suite = infer_suite(_mixed(), DATASET)
    rules = ValidateParams(max_null_fraction=0.5, columns=["town"])
    checks = validate_data(_mixed().rename(columns={"town": "city"}), rules, DATASET, suite)
    lines = causes(checks)
    assert lines == [
        "table: the columns differ from the suite's: missing ['town'], unexpected ['city']"
    ]
    assert not any("as expected" in c.describe() for c in checks if not c.success)
    with pytest.raises(ValidationFailed) as error:
        raise_on_failure(Path("people.csv"), checks)
    assert str(error.value) == f"people.csv: {lines[0]}"


def test_a_missing_column_without_a_column_set_is_still_one_line() -> None:
    checks = validate_data(_mixed().drop(columns="label"), LENIENT, DATASET)
    assert causes(checks) == ["column 'label': missing"]


def test_a_one_row_file_gets_no_false_kind_line() -> None:
    suite = infer_suite(_mixed(), DATASET)
    one = pd.DataFrame({"age": [np.nan], "town": [np.nan], "label": [0]})  # read as numbers
    lines = causes(validate_data(one, LENIENT, DATASET, suite))
    assert not [line for line in lines if "expect_column_kind_to_be" in line], lines
    assert any("expect_table_row_count_to_be_between" in line for line in lines)


def test_a_gx_failure_without_details_does_not_say_as_expected() -> None:
    checks = check_data(
        _mixed(),
        [
            {
                "type": "expect_column_values_to_match_regex",
                "kwargs": {"column": "age", "regex": "^a"},
            }
        ],
        "label",
    )
    assert not checks[0].success and "as expected" not in checks[0].describe()


def _coercing(tmp_path: Path) -> Any:
    return _params(tmp_path, max_null_fraction=0.5)


def test_the_suite_records_the_kind_cleaning_gives_a_column(tmp_path: Path) -> None:
    """A numeric column with a few blanks is text in the file but numbers after cleaning:
    the suite says number, and the next, cleaner file of the same data passes."""
    params = _coercing(tmp_path)
    blanks = _mixed().assign(age=lambda f: f["age"].astype(str).mask(f.index % 10 == 5, " "))
    write_data(blanks, tmp_path / "raw", "data")
    run(params)
    suite = json.loads((tmp_path / "expectations/people.json").read_text())["expectations"]
    kinds = {e["kwargs"]["column"]: e["kwargs"]["kind"] for e in suite if "kind" in e["kwargs"]}
    assert kinds["age"] == "number"
    ranges = [e for e in suite if e["type"] == "expect_column_values_to_be_between"]
    assert ranges[0]["kwargs"]["column"] == "age" and ranges[0]["kwargs"]["max_value"] == 80.0
    write_data(_mixed(), tmp_path / "raw", "data")  # the same column without blanks
    run(params)
    without = params.model_copy(
        update={"clean": params.clean.model_copy(update={"coerce_numbers": False})}
    )
    write_data(blanks, tmp_path / "raw", "data")
    with pytest.raises(ValidationFailed, match="expect_column_kind_to_be"):
        run(without)  # not coerced: the text is text
