from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import CleanParams, DatasetParams, StandardizeParams, parse_params
from tasks.datafiles import Arrays, write_data
from tasks.preprocessing import (
    build_table_transformer,
    fit_and_transform,
    fit_preprocessor,
    load_preprocessor,
    transform_split,
)
from tasks.runtime import UserError
from tasks.standardize import run

DATASET = DatasetParams(label="y")


def _table(offset: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": np.array([1.0, 2.0, np.nan, 5.0]) + offset,
            "cat": ["a", "b", "a", None],
            "y": ["no", "yes", "no", "yes"],
        }
    )


def test_preprocessor_sees_only_training_rows() -> None:
    train = _table(0)
    rules = StandardizeParams()
    fitted = fit_preprocessor(train, rules, CleanParams(missing="mean"), DATASET)
    x_train, y_train = transform_split(fitted, train)
    # the mean of the training rows (imputed with their own mean) maps to 0
    assert x_train[:, 0].mean() == pytest.approx(0, abs=1e-6)
    x_far, _ = transform_split(fitted, _table(1000))
    assert x_far[[0, 1, 3], 0].min() > 100, "far rows are scaled with training statistics"
    assert x_far[2, 0] == pytest.approx(0, abs=1e-6), "imputed with the training mean"
    assert y_train.tolist() == [0, 1, 0, 1] and fitted.classes.tolist() == ["no", "yes"]


def test_onehot_ignores_unseen_categories_and_minmax_bounds() -> None:
    train = _table(0)
    fitted = fit_preprocessor(train, StandardizeParams(scaler="minmax"), CleanParams(), DATASET)
    other = train.assign(cat=["c", "c", "c", "c"])
    x, _ = transform_split(fitted, other)
    assert x.shape == (4, 3) and x[:, 1:].sum() == 0
    x_train, _ = transform_split(fitted, train)
    assert x_train[:, 0].min() == 0 and x_train[:, 0].max() == 1


@pytest.mark.parametrize(
    ("train", "rules"),
    [
        (_table(0), StandardizeParams()),
        (_table(0), StandardizeParams(scaler="minmax", categorical="ordinal")),
        (Arrays(np.arange(40.0).reshape(5, 2, 4), np.arange(5) % 2), StandardizeParams()),
    ],
)
def test_the_training_split_from_fitting_equals_transforming_it_afterwards(
    train: pd.DataFrame | Arrays, rules: StandardizeParams
) -> None:
    fitted, (x, y) = fit_and_transform(train, rules, CleanParams(missing="mean"), DATASET)
    again = fit_preprocessor(train, rules, CleanParams(missing="mean"), DATASET)
    x_after, y_after = transform_split(again, train)
    assert x.dtype == x_after.dtype == np.float32 and x.tobytes() == x_after.tobytes()
    assert y.tolist() == y_after.tolist()
    assert fitted.transform(train).tobytes() == x.tobytes()


@pytest.mark.parametrize("categorical", ["onehot", "ordinal"])
@pytest.mark.parametrize("missing", ["most_frequent", "constant"])
def test_text_reaches_scikit_learn_as_categories_without_changing_a_value(
    categorical: str, missing: str
) -> None:
    train = _table(0).assign(more=["z", "z", None, "y"])
    unseen = _table(3).assign(cat=["c", None, "b", "a"], more=[None, "x", "y", "z"])
    rules, clean = StandardizeParams(categorical=categorical), CleanParams(missing=missing)
    fitted = fit_preprocessor(train, rules, clean, DATASET)
    features = train.drop(columns="y")
    plain = build_table_transformer(features, rules, clean).fit(features)  # strings as they are
    assert str(train["cat"].dtype) == "str"
    for data in (train, unseen):
        expected = np.asarray(plain.transform(data.drop(columns="y")), dtype="float32")
        assert fitted.transform(data).tobytes() == expected.tobytes()


def test_images_keep_their_shape_and_unseen_labels_fail() -> None:
    rng = np.random.default_rng(0)
    train = Arrays(rng.uniform(0, 16, (20, 8, 8, 1)), np.arange(20) % 2)
    fitted = fit_preprocessor(train, StandardizeParams(), CleanParams(), DATASET)
    x, y = transform_split(fitted, train)
    assert x.shape == (20, 8, 8, 1) and x.dtype == np.float32
    assert abs(float(x.mean())) < 1e-5
    with pytest.raises(UserError, match="not seen in training"):
        transform_split(fitted, Arrays(train.x[:2], np.array([0, 7])))
    with pytest.raises(UserError, match="differs from training shape"):
        fitted.transform(np.zeros((2, 28, 28, 1)))


def test_no_statistic_of_validation_or_test_rows_reaches_the_preprocessor(tmp_path: Path) -> None:
    params = parse_params(
        {
            "paths": {
                "split": str(tmp_path / "split"),
                "processed": str(tmp_path / "processed"),
                "preprocessor": str(tmp_path / "pre.skops"),
            },
            "dataset": {"label": "y"},
            "validate": {"value_range": [-1e7, 1e7]},
        }
    )
    rng = np.random.default_rng(0)

    def table(loc: float, rows: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "a": rng.normal(loc, 1, rows),
                "b": rng.choice(["u", "v"], rows),
                "y": np.arange(rows) % 2,
            }
        )

    write_data(table(0, 70), tmp_path / "split", "train")
    fitted = []
    for loc in (0.0, 1e6):  # validation and test rows from a wildly different distribution
        write_data(table(loc, 10), tmp_path / "split", "val")
        write_data(table(loc, 20), tmp_path / "split", "test")
        run(params)
        numeric = load_preprocessor(tmp_path / "pre.skops").features.named_transformers_["numeric"]
        scaler, imputer = numeric.named_steps["standardscaler"], numeric[0]
        fitted.append((scaler.mean_.copy(), scaler.scale_.copy(), imputer.statistics_))
    for first, second in zip(*fitted, strict=True):
        assert np.array_equal(first, second)
    served = load_preprocessor(tmp_path / "pre.skops")  # what the served model accepts
    assert served.value_range == (-1e7, 1e7) and served.kinds == {"a": "number", "b": "text"}


def test_per_column_imputation_is_fitted_on_training_rows() -> None:
    train = pd.DataFrame(
        {
            "age": [1.0, 2.0, 30.0, np.nan],
            "fare": [1.0, 2.0, 30.0, np.nan],
            "cabin": ["c1", None, "c1", "c2"],
            "y": [0, 1, 0, 1],
        }
    )
    clean = CleanParams(
        missing="mean", missing_by_column={"age": "median", "cabin": "constant"}, fill_value=0
    )
    fitted = fit_preprocessor(train, StandardizeParams(scaler="none"), clean, DATASET)
    names = dict(fitted.features.named_transformers_)
    assert names["numeric_median"][0].statistics_.tolist() == [2.0]  # age
    assert names["numeric"][0].statistics_.tolist() == [11.0]  # fare: mean
    assert names["categorical_constant"][0].statistics_.tolist() == ["missing"]
    row = fitted.transform(train.iloc[[3]].drop(columns="y"))[0]
    assert row[:2].tolist() == [2.0, 11.0], "age imputed with its median, fare with its mean"


def test_a_statistic_strategy_on_a_categorical_column_is_an_error() -> None:
    frame = pd.DataFrame({"cabin": ["a", None], "y": [0, 1]})
    clean = CleanParams(missing_by_column={"cabin": "median"})
    with pytest.raises(UserError, match="clean.missing_by_column.cabin: median needs a numeric"):
        fit_preprocessor(frame, StandardizeParams(), clean, DATASET)
