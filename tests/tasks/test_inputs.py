"""What the served model accepts: natural forms of images and tables become the canonical raw
form, and anything else is one short line that names what was expected and what came."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tasks.config import CleanParams, DatasetParams, StandardizeParams
from tasks.datafiles import Arrays
from tasks.inputs import InputError, as_samples, canonical_rows
from tasks.preprocessing import Preprocessor, fit_preprocessor
from tasks.runtime import UserError

SHAPE = (8, 8, 1)
PIXELS = np.arange(3 * 64).reshape(3, 8, 8) % 17  # integers 0..16, as digits' pixels are
CANONICAL = PIXELS[..., np.newaxis].astype("float32")


@pytest.mark.parametrize(
    "raw",
    [
        CANONICAL,
        PIXELS.astype("float64"),  # what sklearn's load_digits returns, without the channel
        PIXELS.astype("uint8"),
        PIXELS.astype("float16")[:, np.newaxis],  # channel first
        PIXELS.reshape(3, 64).astype("int64"),  # flat rows of h*w values
        pd.DataFrame(PIXELS.reshape(3, 64), columns=[f"pixel_{i}" for i in range(64)]),
        PIXELS.tolist(),  # nested lists, as JSON brings them
        PIXELS.reshape(3, 64).astype(object),  # Python numbers
    ],
    ids=["canonical", "float64", "uint8", "float16-chw", "flat", "frame", "lists", "objects"],
)
def test_images_in_every_natural_form_become_the_canonical_samples(raw: Any) -> None:
    samples = as_samples(raw, SHAPE, (0, 16))
    assert samples.shape == (3, *SHAPE)
    np.testing.assert_array_equal(samples.astype("float32"), CANONICAL)


def test_sequences_take_flat_rows_and_the_canonical_form_is_not_copied() -> None:
    rows = np.arange(30.0).reshape(2, 15)
    assert as_samples(rows, (5, 3)).shape == (2, 5, 3)
    assert as_samples(CANONICAL, SHAPE) is CANONICAL


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (np.full((3, 5, 5), 7.25), "(8, 8), or 64 values per row; got an array of shape (3, 5, 5)"),
        (np.full((3, 63), 7.25), "got an array of shape (3, 63)"),
        (pd.DataFrame(np.full((3, 10), 7.25)), "64 values per row; got a table of 10 columns"),
        ([["seven"] * 64], "real or integer numbers, got text"),
        (np.full((2, 64), True), "got booleans"),
        (np.where(PIXELS == 3, np.nan, 7.25), "missing or infinite values in 3 of 3 samples"),
        ([[7.25] * 64, [7.25] * 3], "nested lists of unequal lengths"),
        ("7.25", "got str"),
        (np.zeros((0, 8, 8)), "one row or more, got none"),
    ],
    ids=["size", "flat-size", "table-width", "text", "bool", "nan", "ragged", "str", "empty"],
)
def test_a_bad_sample_gets_one_short_line_without_the_data(raw: Any, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        canonical_rows(_image_preprocessor(), raw)
    message = str(caught.value)
    assert expected in message
    assert len(message) <= 300 and "\n" not in message
    assert "7.25" not in message and "seven" not in message


def test_values_beyond_validate_value_range_are_refused() -> None:
    with pytest.raises(InputError, match=r"within \[0, 16\] \(validate.value_range\), got values "):
        as_samples(PIXELS.astype("uint8") * 15, SHAPE, (0, 16))
    assert as_samples(PIXELS * 15, SHAPE, None).max() == 240, "no range, no refusal"


def test_an_input_error_is_http_400_and_keeps_its_message_short() -> None:
    error = InputError("the model takes samples of shape (8, 8, 1), got (5, 5)")
    assert isinstance(error, UserError) and error.get_http_status_code() == 400
    # what MLflow's scoring server does to an MlflowException raised in predict
    error.message = f"Failed to predict data '{PIXELS}'. \nError: {error.message}"
    body = json.loads(error.serialize_as_json())
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"] == "the model takes samples of shape (8, 8, 1), got (5, 5)"
    assert len(str(InputError("x" * 1000))) == 300


def _image_preprocessor() -> Preprocessor:
    images = Arrays(CANONICAL, np.array([0, 1, 0]))
    rules = StandardizeParams(scaler="minmax")
    return fit_preprocessor(images, rules, CleanParams(), DatasetParams(), (0, 16))


TABLE = pd.DataFrame(
    {"num": [1.0, 2.0, 3.0, 1234.0], "cat": ["a", "b", "1", "a"], "label": [0, 1, 0, 1]}
)


def _table_preprocessor(value_range: tuple[float, float] | None = None) -> Preprocessor:
    return fit_preprocessor(TABLE, StandardizeParams(), CleanParams(), DatasetParams(), value_range)


def test_a_table_takes_columns_in_any_order_and_warns_about_extra_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    preprocessor = _table_preprocessor()
    expected = preprocessor.transform(TABLE)
    shuffled = TABLE[["label", "cat", "num"]].assign(note="x", id=range(4))
    with caplog.at_level(logging.WARNING, logger="tasks.inputs"):
        rows = canonical_rows(preprocessor, shuffled)
    np.testing.assert_array_equal(preprocessor.transform(rows), expected)
    assert "ignoring 2 column(s) the model does not take: 'note', 'id'" in caplog.text
    assert "label" not in caplog.text, "the label is dropped quietly"


@pytest.mark.parametrize(
    "raw",
    [
        TABLE.assign(num=[" 1 ", "2", "3.0", "1,234"]),  # numbers as text, as clean coerces them
        TABLE.assign(cat=TABLE["cat"].astype(object)),
        TABLE.drop(columns="label").to_dict("list"),  # columns by name (JSON `inputs`)
        TABLE.to_dict("records"),  # JSON `dataframe_records`
        TABLE[["num", "cat"]].to_numpy().tolist(),  # bare rows, in the training order
    ],
    ids=["text-numbers", "object-text", "columns", "records", "rows"],
)
def test_table_types_are_coerced_as_training_saw_them(raw: Any) -> None:
    preprocessor = _table_preprocessor()
    rows = canonical_rows(preprocessor, raw)
    np.testing.assert_array_equal(preprocessor.transform(rows), preprocessor.transform(TABLE))


def test_numbers_in_a_text_column_become_text() -> None:
    preprocessor = _table_preprocessor()
    rows = canonical_rows(preprocessor, TABLE.assign(cat=[2, 2, 1, 2]))
    assert rows["cat"].tolist() == ["2", "2", "1", "2"]
    assert preprocessor.kinds == {"num": "number", "cat": "text"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (TABLE.drop(columns="num"), "missing column(s) 'num': the model takes 2 columns"),
        (
            TABLE.assign(num=["1", "two", "3", "x"]),
            "column 'num' takes numbers, got text in 2 of 4",
        ),
        (np.zeros((2, 5)), "a table of 2 columns ('num', 'cat'), got an array of shape (2, 5)"),
        (7, "a table of 2 columns ('num', 'cat'), got int"),
        (TABLE[:0], "one row or more, got none"),
    ],
    ids=["missing", "text", "width", "scalar", "empty"],
)
def test_a_bad_table_gets_one_short_line(raw: Any, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        canonical_rows(_table_preprocessor(), raw)
    assert expected in str(caught.value) and len(str(caught.value)) <= 300
    assert "two" not in str(caught.value)


def test_a_long_list_of_missing_columns_is_cut() -> None:
    wide = pd.DataFrame({f"column_{i:03d}": [1.0, 2.0] for i in range(200)}).assign(label=[0, 1])
    preprocessor = fit_preprocessor(wide, StandardizeParams(), CleanParams(), DatasetParams())
    with pytest.raises(InputError) as caught:
        canonical_rows(preprocessor, wide[["column_000"]])
    message = str(caught.value)
    assert "'column_004', 'column_005' and 194 more" in message and len(message) <= 300


def test_table_values_beyond_validate_value_range_are_refused() -> None:
    preprocessor = _table_preprocessor((0, 2000))
    assert canonical_rows(preprocessor, TABLE) is TABLE, "a canonical table is not copied"
    with pytest.raises(InputError, match=r"within \[0, 2000\].*from -5 to 1234, 1 outside"):
        canonical_rows(preprocessor, TABLE.assign(num=[-5.0, 2.0, np.nan, 1234.0]))
    assert canonical_rows(preprocessor, TABLE.assign(num=np.nan))["num"].isna().all()
