"""standardize: fit the preprocessor on the training split only and apply it to every split.

Reads `paths.split/{train,val,test}`; writes the fitted preprocessor to `paths.preprocessor`
and model-ready float32 arrays to `paths.processed/{train,val,test}.npz`. The same
preprocessor ships inside the registered model, so serving takes raw rows.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from tasks.config import CleanParams, DatasetParams, Params, StandardizeParams, load_params
from tasks.datafiles import Arrays, Data, read_data, replace_dir, replace_file, save_npz
from tasks.runtime import UserError, run_entry
from tasks.split import SPLITS

log = logging.getLogger(__name__)


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


def build_table_transformer(
    frame: pd.DataFrame, rules: StandardizeParams, clean: CleanParams
) -> ColumnTransformer:
    """Impute, scale numbers and encode categories; unfitted."""
    numeric = list(frame.select_dtypes("number").columns)
    categorical = [c for c in frame.columns if c not in numeric]
    strategy = "mean" if clean.missing == "drop" else clean.missing
    imputer = SimpleImputer(
        strategy=strategy, fill_value=clean.fill_value, keep_empty_features=True
    )
    encoder = (
        OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        if rules.categorical == "onehot"
        else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    )
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(imputer, build_scaler(rules)), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent", keep_empty_features=True), encoder
                ),
                categorical,
            ),
        ],
        sparse_threshold=0.0,
    )


@dataclass
class Preprocessor:
    """Everything learned from the training split: feature transform and label encoding."""

    label: str
    task: str
    features: Any
    columns: list[str] | None = None
    classes: np.ndarray | None = field(default=None)

    def transform(self, raw: Data | np.ndarray | pd.DataFrame) -> np.ndarray:
        """Raw rows (a table without or with the label, or an array of samples) -> float32."""
        if isinstance(raw, Arrays):
            return np.asarray(self.features.transform(raw.x), dtype="float32")
        if isinstance(raw, pd.DataFrame):
            missing = [c for c in self.columns or [] if c not in raw.columns]
            if missing:
                raise UserError(f"input is missing column(s) {missing}")
            return np.asarray(self.features.transform(raw[self.columns]), dtype="float32")
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


def labels(data: Data, label: str) -> np.ndarray:
    return data.y if isinstance(data, Arrays) else data[label].to_numpy()


def fit_preprocessor(
    train: Data, rules: StandardizeParams, clean: CleanParams, dataset: DatasetParams
) -> Preprocessor:
    """Fit the preprocessor on the training split only."""
    classes = np.unique(labels(train, dataset.label)) if dataset.task == "classification" else None
    if isinstance(train, Arrays):
        features = FlatScaler(build_scaler(rules)).fit(train.x)
        return Preprocessor(dataset.label, dataset.task, features, None, classes)
    frame = train.drop(columns=dataset.label)
    features = build_table_transformer(frame, rules, clean).fit(frame)
    return Preprocessor(dataset.label, dataset.task, features, list(frame.columns), classes)


def transform_split(preprocessor: Preprocessor, data: Data) -> tuple[np.ndarray, np.ndarray]:
    """Model-ready (x, y) for one split."""
    return preprocessor.transform(data), preprocessor.encode_labels(
        labels(data, preprocessor.label)
    )


def load_preprocessor(path: Path) -> Preprocessor:
    if not path.is_file():
        raise UserError(f"{path}: not found (run the standardize stage first)")
    with path.open("rb") as handle:
        result: Preprocessor = pickle.load(handle)
    return result


def run(params: Params) -> Preprocessor:
    """Fit on `paths.split/train`, write the preprocessor and the processed splits."""
    splits = {name: read_data(params.paths.split, name) for name in SPLITS}
    preprocessor = fit_preprocessor(
        splits["train"], params.standardize, params.clean, params.dataset
    )
    with replace_dir(params.paths.processed) as staging:
        for name, data in splits.items():
            x, y = transform_split(preprocessor, data)
            save_npz(staging / f"{name}.npz", x=x, y=y)
    with replace_file(params.paths.preprocessor) as staging_file:
        staging_file.write_bytes(pickle.dumps(preprocessor))
    log.info(
        "standardize: %s scaler fitted on %d training rows",
        params.standardize.scaler,
        len(splits["train"]),
    )
    return preprocessor


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.standardize")
