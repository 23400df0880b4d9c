"""What a check found, in words: one expectation's result (`Check`), the checks this
pipeline runs itself instead of Great Expectations (`LOCAL_CHECKS`), and the causes of a
failure, one line each (`causes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tasks.datafiles import Arrays
from tasks.suites import column_kind


@dataclass(frozen=True)
class Check:
    expectation: str
    column: str | None
    success: bool
    expected: dict[str, Any]
    found: Any
    failing_rows: int | None

    def describe(self) -> str:
        if self.expectation == COLUMN_SET and isinstance(self.found, dict):
            found = {k: v for k, v in self.found.items() if v}
            return "table: the columns differ from the suite's: " + ", ".join(
                f"{what} {names}" for what, names in found.items()
            )
        where = f"column {self.column!r}" if self.column else "table"
        rows = f", {self.failing_rows} rows" if self.failing_rows else ""
        return f"{where}: {self.expectation} {self.expected} failed (found {self.found}{rows})"


COLUMN_SET = "expect_table_columns_to_match_set"
ABSENT = "no such column"  # what a check on a column the data lacks finds (it is not run)
NOT_COMPUTED = "not computed"  # what a failed GX check finds when GX could not compute it


def _columns_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    """The table's columns against the suite's: which are missing, which are unexpected."""
    expected, exact = list(kwargs["column_set"]), bool(kwargs.get("exact_match", True))
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in expected] if exact else []
    ok = not missing and not unexpected
    found = "as expected" if ok else {"missing": missing, "unexpected": unexpected}
    return Check(COLUMN_SET, None, ok, {"column_set": expected, "exact_match": exact}, found, None)


def _kind_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    column, kind = kwargs["column"], kwargs["kind"]
    if frame[column].isna().all():  # no values, no kind to contradict (nulls are checked apart)
        return Check("expect_column_kind_to_be", column, True, {"kind": kind}, "no values", None)
    found = column_kind(frame[column])
    bad = None
    if found != kind and kind == "number":
        values = frame[column].dropna()
        bad = int(pd.to_numeric(values, errors="coerce").isna().sum()) or None
    return Check("expect_column_kind_to_be", column, found == kind, {"kind": kind}, found, bad)


def _shape_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    found = list(arrays.x.shape[1:]) if arrays is not None else "a table"
    ok = found == list(kwargs["shape"])
    rows = len(frame) if not ok else None
    return Check("expect_sample_shape_to_be", None, ok, dict(kwargs), found, rows)


def _classes_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    column = kwargs["column"]
    counts = frame[column].dropna().value_counts() if column in frame else pd.Series()
    return Check(
        "expect_at_least_two_classes",
        column,
        len(counts) >= 2,
        {"min_classes": 2},
        len(counts),
        None,
    )


def _per_class_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    column, minimum = kwargs["column"], kwargs["min_value"]
    counts = frame[column].dropna().value_counts() if column in frame else pd.Series()
    smallest = int(counts.min()) if len(counts) else 0
    small = counts[counts < minimum]
    return Check(
        "expect_rows_per_class_at_least",
        column,
        smallest >= minimum,
        {"min_value": minimum},
        {str(k): int(v) for k, v in (small if len(small) else counts).items()},
        int(small.sum()) or None,
    )


LOCAL_CHECKS: dict[str, Callable[[pd.DataFrame, Arrays | None, dict[str, Any]], Check]] = {
    COLUMN_SET: _columns_check,
    "expect_column_kind_to_be": _kind_check,
    "expect_sample_shape_to_be": _shape_check,
    "expect_at_least_two_classes": _classes_check,
    "expect_rows_per_class_at_least": _per_class_check,
}


def causes(checks: list[Check]) -> list[str]:
    """One line per cause of failure: a missing column is one line (in the column-set line
    when the suite has one), not one per expectation that could not run on it."""
    failed = sorted((c for c in checks if not c.success), key=lambda c: c.column is not None)
    column_set = next(
        (c for c in failed if isinstance(c.found, dict) and c.expectation == COLUMN_SET), None
    )
    told = set(column_set.found["missing"]) if column_set else set()
    # GX cannot compare a column of the wrong kind (text against a numeric range): the kind
    # line says why
    wrong_kind = {c.column for c in failed if c.expectation == "expect_column_kind_to_be"}
    lines = []
    for check in failed:
        if check.column in wrong_kind and str(check.found).startswith(NOT_COMPUTED):
            continue
        if check.found != ABSENT:
            lines.append(check.describe())
        elif check.column not in told:
            told.add(check.column)
            lines.append(f"column {check.column!r}: missing")
    return lines
