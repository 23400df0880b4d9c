"""Numbers stored as text ("1,234", " 7 ", a blank) read as numbers.

`coerce_numbers` is what `clean` does to a table when `clean.coerce_numbers` is on; the
data contract (`tasks.contract`) checks and infers suites on the table as coerced, so a
suite describes each column as cleaning will hand it on.
"""

from __future__ import annotations

import pandas as pd

SAMPLE = 1000  # values tried before a whole text column is coerced


def _as_number(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.replace(",", "", regex=False)
    return pd.to_numeric(text.mask(text == ""), errors="coerce")


def _is_text(series: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(series)
        or pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_datetime64_any_dtype(series)
    )


def _numbers(series: pd.Series) -> pd.Series | None:
    """The column as numbers, if every non-blank value is one (one pass over the column)."""
    head = series.iloc[: 4 * SAMPLE].dropna().iloc[:SAMPLE]  # a cheap first refusal
    if _as_number(head).notna().sum() < (head.astype("string").str.strip() != "").sum():
        return None
    text = series if isinstance(series.dtype, pd.StringDtype) else series.astype("string")
    text = text.str.strip()
    blank = text.isna() | (text == "")
    numbers = pd.to_numeric(text.str.replace(",", "", regex=False).mask(blank), errors="coerce")
    return numbers.astype("float64") if int(numbers.isna().sum()) == int(blank.sum()) else None


def coerce_numbers(frame: pd.DataFrame, skip: str) -> tuple[pd.DataFrame, list[str]]:
    """Turn text columns whose every non-blank value is a number into numbers."""
    coerced = {}
    for column in frame.columns:
        if column == skip or not _is_text(frame[column]):
            continue
        numbers = _numbers(frame[column])
        if numbers is not None:
            coerced[column] = numbers
    return (frame.assign(**coerced) if coerced else frame), list(coerced)
