"""The preprocessor: scalers, imputers and encoders fitted on the training split only, with
the label encoding; standardize fits it, and the served bundle ships it so serving takes raw
rows. It is written as a skops file (`tasks.skops_files`): loading it unpickles nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from tasks.config import CleanParams, DatasetParams, StandardizeParams
from tasks.datafiles import Arrays, Data, labels_of
from tasks.runtime import UserError
from tasks.skops_files import load_skops, save_skops


def build_scaler(rules: StandardizeParams) -> Any:
    """An unfitted scaler for `standardize.scaler`."""
    return {"standard": StandardScaler(), "minmax": MinMaxScaler(), "none": "passthrough"}[
        rules.scaler
    ]


class FlatScaler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Scale each value position of image or sequence arrays, keeping their shape."""

    def __init__(self, scaler: Any = "passthrough") -> None:
        self.scaler = scaler

    def fit(self, x: np.ndarray, y: object = None) -> FlatScaler:
        self.shape_ = x.shape[1:]
        self.scaler_ = None if self.scaler == "passthrough" else clone(self.scaler)
        if self.scaler_ is not None:
            self.scaler_.fit(x.reshape(len(x), -1).astype("float64"))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1:] != self.shape_:
            raise UserError(f"input shape {x.shape[1:]} differs from training shape {self.shape_}")
        flat = x.reshape(len(x), -1).astype("float64")
        if self.scaler_ is not None:
            flat = self.scaler_.transform(flat)
        return flat.reshape((len(x), *self.shape_)).astype("float32")


def _imputer(strategy: str, fill_value: float | str) -> SimpleImputer:
    return SimpleImputer(strategy=strategy, fill_value=fill_value, keep_empty_features=True)


def _strategy(column: str, numeric: bool, clean: CleanParams) -> str:
    """The imputation of one column; `drop` (rows already removed by clean) imputes as a
    fallback for values first seen at serving time: mean for numbers, most frequent for text."""
    strategy = clean.missing_for(column)
    if numeric:
        return "mean" if strategy == "drop" else strategy
    if strategy in ("mean", "median"):
        if column in clean.missing_by_column:
            raise UserError(
                f"clean.missing_by_column.{column}: {strategy} needs a numeric column, "
                f"{column!r} is categorical"
            )
        return "most_frequent"
    return "most_frequent" if strategy == "drop" else strategy


def _to_float32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype="float32")


# Every block leaves as float32, the model's input type, so the blocks are joined at half the
# size and not copied again; numbers are scaled in float64 first, so the values are the same.
_FLOAT32 = FunctionTransformer(_to_float32, feature_names_out="one-to-one")


def text_as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as pandas categories: the same values reach scikit-learn, but each
    imputer and encoder turns categories into arrays several times faster than strings."""
    text = [column for column, dtype in frame.dtypes.items() if dtype == "str"]  # NaN if missing
    return frame.astype(dict.fromkeys(text, "category")) if text else frame


def build_table_transformer(
    frame: pd.DataFrame, rules: StandardizeParams, clean: CleanParams
) -> ColumnTransformer:
    """Impute (per column, as `clean.missing`/`clean.missing_by_column` say), scale numbers
    and encode categories; unfitted."""
    numeric = set(frame.select_dtypes("number").columns)
    groups: dict[tuple[bool, str], list[str]] = {}
    for column in frame.columns:
        key = (column in numeric, _strategy(column, column in numeric, clean))
        groups.setdefault(key, []).append(column)
    text_fill = clean.fill_value if isinstance(clean.fill_value, str) else "missing"
    transformers = []
    for (is_number, strategy), columns in groups.items():
        if is_number and strategy == "constant" and isinstance(clean.fill_value, str):
            raise UserError(
                f"clean.fill_value {clean.fill_value!r} is text; numeric column(s) {columns} "
                "need a number to fill"
            )
        if is_number:
            steps = [_imputer(strategy, clean.fill_value), build_scaler(rules), _FLOAT32]
        else:
            steps = [_imputer(strategy, text_fill), build_encoder(rules)]
        name = "numeric" if is_number else "categorical"
        if strategy != _strategy("\0default", is_number, clean):  # per-column strategies
            name = f"{name}_{strategy}"
        transformers.append((name, make_pipeline(*steps), columns))
    return ColumnTransformer(transformers, sparse_threshold=0.0)


def build_encoder(rules: StandardizeParams) -> Any:
    """An unfitted encoder for `standardize.categorical`."""
    if rules.categorical == "onehot":
        return OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)
    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float32)


@dataclass
class Preprocessor:
    """Everything learned from the training split: feature transform and label encoding, and
    what serving accepts (`validate.value_range`, each table column's kind)."""

    label: str
    task: str
    features: Any
    columns: list[str] | None = None
    classes: np.ndarray | None = field(default=None)
    value_range: tuple[float, float] | None = None
    kinds: dict[str, str] | None = None  # table column -> number, text, bool or other

    def transform(self, raw: Data | np.ndarray | pd.DataFrame) -> np.ndarray:
        """Raw rows (a table without or with the label, or an array of samples) -> float32."""
        if isinstance(raw, Arrays):
            return np.asarray(self.features.transform(raw.x), dtype="float32")
        if isinstance(raw, pd.DataFrame):
            missing = [c for c in self.columns or [] if c not in raw.columns]
            if missing:
                raise UserError(f"input is missing column(s) {missing}")
            features = self.features.transform(text_as_categories(raw[self.columns]))
            return np.asarray(features, dtype="float32")
        return np.asarray(self.features.transform(np.asarray(raw)), dtype="float32")

    def encode_labels(self, y: np.ndarray) -> np.ndarray:
        if self.classes is None:
            return np.asarray(y, dtype="float32")
        codes = np.searchsorted(self.classes, y)
        unknown = (codes >= len(self.classes)) | (
            self.classes[np.minimum(codes, len(self.classes) - 1)] != y
        )
        if unknown.any():
            raise UserError(
                f"label(s) {sorted(set(np.asarray(y)[unknown]))[:5]} not seen in training"
            )
        return codes.astype("int64")

    def decode_labels(self, codes: np.ndarray) -> np.ndarray:
        return codes if self.classes is None else self.classes[codes]


def column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's kind, as serving coerces to it: number, text, bool or other."""
    return {str(column): _kind(series) for column, series in frame.items()}


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    return "text" if pd.api.types.is_string_dtype(series) else "other"


def _classes(train: Data, dataset: DatasetParams) -> np.ndarray | None:
    if dataset.task != "classification":
        return None
    return np.unique(labels_of(train, dataset.label))


def fit_preprocessor(
    train: Data,
    rules: StandardizeParams,
    clean: CleanParams,
    dataset: DatasetParams,
    value_range: tuple[float, float] | None = None,
) -> Preprocessor:
    """Fit the preprocessor on the training split only; `value_range` (`validate.value_range`)
    is kept for serving, which refuses values outside it."""
    classes = _classes(train, dataset)
    if isinstance(train, Arrays):
        features = FlatScaler(build_scaler(rules)).fit(train.x)
        return Preprocessor(dataset.label, dataset.task, features, None, classes, value_range)
    frame = train.drop(columns=dataset.label)
    features = build_table_transformer(frame, rules, clean).fit(text_as_categories(frame))
    return _table_preprocessor(frame, features, classes, dataset, value_range)


def _table_preprocessor(
    frame: pd.DataFrame,
    features: Any,
    classes: np.ndarray | None,
    dataset: DatasetParams,
    value_range: tuple[float, float] | None,
) -> Preprocessor:
    columns, kinds = list(frame.columns), column_kinds(frame)
    return Preprocessor(dataset.label, dataset.task, features, columns, classes, value_range, kinds)


def fit_and_transform(
    train: Data,
    rules: StandardizeParams,
    clean: CleanParams,
    dataset: DatasetParams,
    value_range: tuple[float, float] | None = None,
) -> tuple[Preprocessor, tuple[np.ndarray, np.ndarray]]:
    """Fit the preprocessor on the training split and return that split model-ready too.

    Fitting a table transformer transforms the table anyway (`ColumnTransformer.fit` is
    `fit_transform`); keeping that result spares transforming the largest split twice.
    """
    if isinstance(train, Arrays):
        preprocessor = fit_preprocessor(train, rules, clean, dataset, value_range)
        return preprocessor, transform_split(preprocessor, train)
    frame = train.drop(columns=dataset.label)
    features = build_table_transformer(frame, rules, clean)
    x = np.asarray(features.fit_transform(text_as_categories(frame)), dtype="float32")
    classes = _classes(train, dataset)
    preprocessor = _table_preprocessor(frame, features, classes, dataset, value_range)
    return preprocessor, (x, preprocessor.encode_labels(labels_of(train, dataset.label)))


def transform_split(preprocessor: Preprocessor, data: Data) -> tuple[np.ndarray, np.ndarray]:
    """Model-ready (x, y) for one split."""
    return preprocessor.transform(data), preprocessor.encode_labels(
        labels_of(data, preprocessor.label)
    )


def save_preprocessor(preprocessor: Preprocessor, path: Path) -> None:
    """Write the fitted preprocessor (`paths.preprocessor`), as load_preprocessor reads it."""
    save_skops(preprocessor, path)


def load_preprocessor(path: Path) -> Preprocessor:
    """The preprocessor standardize wrote to `paths.preprocessor`."""
    if not path.is_file():
        raise UserError(f"{path}: not found (run the standardize stage first)")
    result = load_skops(path)
    if not isinstance(result, Preprocessor):
        raise UserError(f"{path}: holds a {type(result).__name__}, not a fitted preprocessor")
    return result
