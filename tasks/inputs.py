"""What the served model accepts: natural inputs turned into the raw form its preprocessor was
fitted on, and one short error for anything else.

Images and sequences (sample shape S, e.g. (8, 8, 1)): arrays of any real or integer dtype with
or without S's length-1 axes (the channel), flat rows of prod(S) values, a DataFrame of those
columns, nested lists. Tables: a DataFrame (or columns by name, or records) with the training
columns in any order; the label is dropped, other extra columns are ignored with a warning;
numbers sent as text are coerced as `clean` coerces them, numbers in a text column become
text. Values outside `validate.value_range` (kept by the preprocessor) and missing values in
samples are refused. An `InputError` names what was expected and what came, never the data.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from tasks.preprocessing import Preprocessor
from tasks.runtime import UserError

log = logging.getLogger(__name__)

MAX_MESSAGE = 300
NAMES_SHOWN = 5


class InputError(UserError, MlflowException):
    """Input the model cannot take: a one-line message (HTTP 400 from MLflow's scoring server)."""

    def __init__(self, message: str) -> None:
        short = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        super().__init__(short, error_code=INVALID_PARAMETER_VALUE)

    # MLflow's scoring server rewrites the message of an MlflowException raised by predict to
    # "Failed to predict data '<the whole input>'. Error: ...": the first message stays.
    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):
            self._message = value


def canonical_rows(preprocessor: Preprocessor, raw: Any) -> Any:
    """`raw` in the form `preprocessor.transform` takes: an array of samples, or a table."""
    if preprocessor.columns is None:
        shape = tuple(preprocessor.features.shape_)
        rows = as_samples(_drop_label(raw, preprocessor.label), shape, preprocessor.value_range)
    else:
        rows = as_table(raw, preprocessor)
    if len(rows) == 0:
        raise InputError("the model takes one row or more, got none")
    return rows


def _drop_label(raw: Any, label: str) -> Any:
    if isinstance(raw, pd.DataFrame) and label in raw.columns:
        return raw.drop(columns=label)
    return raw


def as_samples(raw: Any, shape: tuple[int, ...], value_range: Any = None) -> np.ndarray:
    """Samples of `shape` from an array, nested lists or a table of prod(shape) columns."""
    x = _numbers(_array(raw, shape))
    came = f"a table of {x.shape[1]} columns" if isinstance(raw, pd.DataFrame) else None
    x = _shaped(x, shape, came or f"an array of shape {x.shape}")
    _check_values(x, value_range)
    return x


def _array(raw: Any, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(raw, np.ndarray):
        return raw
    if isinstance(raw, pd.DataFrame):
        return raw.to_numpy()
    if isinstance(raw, list | tuple):
        try:
            return np.asarray(raw)
        except ValueError:
            raise InputError(
                f"the model takes samples of shape {shape}, got nested lists of unequal lengths"
            ) from None
    raise InputError(
        f"the model takes samples of shape {shape} as an array, nested lists or a table of "
        f"{math.prod(shape)} columns, got {type(raw).__name__}"
    )


def _numbers(x: np.ndarray) -> np.ndarray:
    """x if it holds real or integer numbers (objects, e.g. lists with None, as float64)."""
    if x.dtype.kind in "iuf":
        return x
    if x.dtype.kind == "O":
        try:
            return x.astype("float64")
        except (TypeError, ValueError):
            pass
    kinds = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes", "O": "text"}
    found = kinds.get(x.dtype.kind, f"dtype {x.dtype}")
    raise InputError(f"the model takes real or integer numbers, got {found}")


def _without_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def _shaped(x: np.ndarray, shape: tuple[int, ...], came: str) -> np.ndarray:
    """x as (n, *shape): as it is, without (or with other) length-1 axes, or flat rows."""
    if x.ndim >= 1 and x.shape[1:] == shape:
        return x
    size = math.prod(shape)
    flat = x.ndim == 2 and x.shape[1] == size
    if x.ndim >= 2 and (flat or _without_ones(x.shape[1:]) == _without_ones(shape)):
        return x.reshape((len(x), *shape))
    squeezed = _without_ones(shape)
    accepted = f"{shape} or {squeezed}" if squeezed != shape else str(shape)
    raise InputError(
        f"the model takes samples of shape {accepted}, or {size} values per row; got {came}"
    )


def _check_values(x: np.ndarray, value_range: Any) -> None:
    """Refuse missing or infinite values, and values beyond `validate.value_range`."""
    if x.size == 0:
        return
    low, high = x.min(), x.max()  # NaN propagates: one pass each, no mask on the happy path
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
        raise InputError(
            f"the model takes finite numbers, got missing or infinite values in {bad} of "
            f"{len(x)} samples"
        )
    _check_range(x, float(low), float(high), value_range)


def _check_range(values: Any, low: float, high: float, value_range: Any) -> None:
    if value_range is None or not (low < value_range[0] or high > value_range[1]):
        return  # NaN (nothing but missing values) compares False: nothing outside
    floor, ceiling = value_range
    outside = int(((values < floor) | (values > ceiling)).sum().sum())
    raise InputError(
        f"values must lie within [{floor:g}, {ceiling:g}] (validate.value_range), got values "
        f"from {low:g} to {high:g}, {outside} outside"
    )


def as_table(raw: Any, preprocessor: Preprocessor) -> pd.DataFrame:
    """A table with every training column, each coerced to its training kind."""
    columns = preprocessor.columns or []
    frame = _frame(raw, columns)
    _check_columns(frame, columns, preprocessor.label)
    kinds = preprocessor.kinds or {}  # None only for images and sequences
    frame = _with_kinds(frame, columns, kinds)
    numeric = [c for c in columns if kinds.get(str(c)) == "number"]
    if preprocessor.value_range is not None and numeric:
        values = frame[numeric]  # missing values are skipped: the preprocessor imputes them
        low, high = float(values.min().min()), float(values.max().max())
        _check_range(values, low, high, preprocessor.value_range)
    return frame


def _with_kinds(frame: pd.DataFrame, columns: list[str], kinds: dict[str, str]) -> pd.DataFrame:
    """frame with each column of the kind training saw (frame itself when all are)."""
    changed = {}
    for column in columns:
        values = frame[column]
        coerced = _coerced(column, values, kinds.get(str(column), "other"))
        if coerced is not values:
            changed[column] = coerced
    return frame.assign(**changed) if changed else frame


def _frame(raw: Any, columns: list[str]) -> pd.DataFrame:
    """A DataFrame; columns by name or records as one; bare rows as the training columns."""
    if isinstance(raw, pd.DataFrame):
        return raw
    if isinstance(raw, dict) or (isinstance(raw, list) and raw and isinstance(raw[0], dict)):
        return pd.DataFrame(raw)
    if isinstance(raw, np.ndarray | list | tuple):
        width = np.shape(raw)[1:] if np.ndim(raw) == 2 else None
        if width == (len(columns),):
            return pd.DataFrame(list(raw), columns=columns)
        raise InputError(
            f"the model takes a table of {len(columns)} columns ({_names(columns)}), "
            f"got an array of shape {np.shape(raw)}"
        )
    raise InputError(
        f"the model takes a table of {len(columns)} columns ({_names(columns)}), "
        f"got {type(raw).__name__}"
    )


def _check_columns(frame: pd.DataFrame, columns: list[str], label: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"missing column(s) {_names(missing)}: the model takes {len(columns)} columns "
            f"({_names(columns)}), got {len(frame.columns)}"
        )
    known = {*columns, label}
    extra = [c for c in frame.columns if c not in known]
    if extra:
        log.warning("ignoring %d column(s) the model does not take: %s", len(extra), _names(extra))


def _coerced(column: str, values: pd.Series, kind: str) -> pd.Series:
    """values as the kind the column had in training (the same Series when it has it)."""
    if kind == "number" and not pd.api.types.is_numeric_dtype(values):
        return _as_numbers(column, values)
    numbers = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if kind == "text" and numbers:
        return values.astype("str")
    return values


def _as_numbers(column: str, values: pd.Series) -> pd.Series:
    """Text as numbers the way `clean` coerces it: spaces and thousands commas dropped, blank
    is missing; any other text is refused."""
    text = values.astype("string").str.strip().str.replace(",", "", regex=False)
    blank = text.isna() | (text == "")
    numbers = pd.to_numeric(text.mask(blank), errors="coerce")
    bad = int((numbers.isna() & ~blank).sum())
    if bad:
        raise InputError(
            f"column {column!r} takes numbers, got text in {bad} of {len(values)} rows"
        )
    return numbers.astype("float64")


def _names(names: list[Any]) -> str:
    shown = ", ".join(repr(n) for n in names[:NAMES_SHOWN])
    return shown if len(names) <= NAMES_SHOWN else f"{shown} and {len(names) - NAMES_SHOWN} more"
