"""clean: coerce, de-duplicate and drop or clip rows of `paths.raw` into `paths.clean`.

For tables: numbers stored as text ("1,234", " 7 ", a blank) become numbers (a blank
becomes missing; a column with text that is not a number stays categorical); rows without a
label, rows with a missing value in a column whose strategy is `drop`, outliers whose action
is `drop`, and duplicate rows are quarantined; outliers whose action is `clip` are clipped.
For arrays: samples with NaN/infinity and duplicate samples are quarantined.

Every dropped row goes to `paths.clean/quarantine.parquet` with its reason; the counts per
reason (and the coerced and clipped columns) go to `reports/clean.json`. Imputation that
needs statistics (mean, median, most frequent) is not done here but in the preprocessor
fitted on the training split only (`tasks/standardize.py`), so no statistic of validation or
test rows leaks into training. Outlier fences from `iqr`/`zscore` are computed here on all
rows, before the split: a mild leakage accepted so that cleaning stays one step; a `range`
rule has no statistics and none.

The cleaned data is validated again with the expectations of `reports/validation/raw.json`
(`reports/validation/clean.json`/`clean.html`); if it fails, nothing is written. Those
expectations were checked on the raw data as this step coerces it (`tasks.contract`), so a
coerced column is held to the kind and range it has here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tasks.coercion import coerce_numbers
from tasks.config import CleanParams, DatasetParams, OutlierRule, Params, load_params
from tasks.datafiles import Arrays, Data, read_data, read_json, replace_dir, write_json, writing
from tasks.runtime import UserError, no_options, run_entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cleaned:
    data: Data
    quarantine: pd.DataFrame  # the raw row number, the reason, and (for tables) the row
    coerced: list[str] = field(default_factory=list)
    clipped: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.quarantine["reason"].value_counts().items()}


def outlier_bounds(values: pd.Series, rule: OutlierRule) -> tuple[float, float]:
    """The (low, high) fences of one column under a rule; computed on the values given."""
    if rule.method == "range":
        low = -np.inf if rule.low is None else rule.low
        return low, np.inf if rule.high is None else rule.high
    if rule.method == "iqr":
        q1, q3 = values.quantile(0.25), values.quantile(0.75)
        return float(q1 - rule.k * (q3 - q1)), float(q3 + rule.k * (q3 - q1))
    mean, std = float(values.mean()), float(values.std())
    return mean - rule.threshold * std, mean + rule.threshold * std


def _check_columns(frame: pd.DataFrame, rules: CleanParams, label: str) -> None:
    for key, names in (
        ("missing_by_column", rules.missing_by_column),
        ("outliers", rules.outliers),
    ):
        unknown = [c for c in names if c not in frame.columns or c == label]
        if unknown:
            raise UserError(f"clean.{key} names column(s) not among the features: {unknown}")
    for column in rules.outliers:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise UserError(f"clean.outliers.{column}: column {column!r} is not numeric")


def _flag_table(
    frame: pd.DataFrame, rules: CleanParams, label: str
) -> tuple[pd.Series, dict[str, tuple[float, float]]]:
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    reasons[frame[label].isna()] = "missing_label"
    dropping = [c for c in frame.columns if c != label and rules.missing_for(c) == "drop"]
    if dropping:
        reasons[reasons.isna() & frame[dropping].isna().any(axis=1)] = "missing_value"
    bounds = {}
    for column, rule in rules.outliers.items():
        values = frame.loc[reasons.isna(), column].dropna()
        bounds[column] = outlier_bounds(values, rule)
        if rule.action == "drop":
            low, high = bounds[column]
            outside = (frame[column] < low) | (frame[column] > high)
            reasons[reasons.isna() & outside] = "outlier"
    if rules.drop_duplicates:
        reasons[reasons.isna() & duplicated_rows(frame)] = "duplicate"
    return reasons, bounds


def duplicated_rows(frame: pd.DataFrame) -> pd.Series:
    """`frame.duplicated(keep="first")`, comparing columns only where row hashes repeat.

    Equal rows hash equal (pandas makes 0.0 and -0.0, and every NaN, hash alike), so a row
    whose hash is unique has no earlier copy, and keeping the candidates in order keeps
    "first" meaning first. Hashing once is about 4x faster than factorizing every column.
    """
    candidates = pd.util.hash_pandas_object(frame, index=False).duplicated(keep=False).to_numpy()
    result = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        result[candidates] = frame[candidates].duplicated(keep="first").to_numpy()
    return pd.Series(result, index=frame.index)


def _flag_arrays(data: Arrays, rules: CleanParams) -> pd.Series:
    flat = data.x.reshape(len(data), -1)
    reasons = pd.Series(pd.NA, index=range(len(data)), dtype="string")
    if flat.dtype.kind == "f":
        reasons[~np.isfinite(flat).all(axis=1)] = "missing_value"
    if rules.drop_duplicates:
        rows = pd.Series(
            [row.tobytes() + bytes(str(y), "utf8") for row, y in zip(flat, data.y, strict=True)]
        )
        reasons[reasons.isna() & rows.duplicated(keep="first").to_numpy()] = "duplicate"
    return reasons


def _infinite(values: pd.Series) -> pd.Series:
    array = values.to_numpy()
    if array.dtype.kind == "f":  # numpy's test is ~10x faster than isin's hash table
        return pd.Series(np.isinf(array), index=values.index)
    return values.isin([np.inf, -np.inf])


def _clean_table(frame: pd.DataFrame, rules: CleanParams, label: str) -> Cleaned:
    frame, coerced = coerce_numbers(frame, label) if rules.coerce_numbers else (frame, [])
    _check_columns(frame, rules, label)
    numeric = frame.select_dtypes("number").columns.drop(label, errors="ignore")
    infinite = {c: _infinite(frame[c]) for c in numeric if frame[c].dtype.kind == "f"}
    if any(mask.any() for mask in infinite.values()):  # infinity is a missing value, not a number
        frame = frame.assign(**{c: frame[c].mask(m) for c, m in infinite.items() if m.any()})
    reasons, bounds = _flag_table(frame, rules, label)
    dropped = reasons.notna()
    kept = frame[~dropped].reset_index(drop=True)
    clipped = {}
    for column, rule in rules.outliers.items():
        if rule.action == "clip":
            low, high = bounds[column]
            clipped[column] = int(((kept[column] < low) | (kept[column] > high)).sum())
            kept[column] = kept[column].clip(low, high)
    quarantine = frame[dropped].assign(row=frame.index[dropped], reason=reasons[dropped])
    return Cleaned(kept, quarantine, coerced, clipped)


def clean_data(data: Data, rules: CleanParams, dataset: DatasetParams) -> Cleaned:
    """Split data into the rows kept and the rows quarantined, each with a reason."""
    if isinstance(data, Arrays):
        if rules.missing_by_column or rules.outliers:
            raise UserError("clean.missing_by_column and clean.outliers apply to tables only")
        reasons = _flag_arrays(data, rules)
        dropped = reasons.notna().to_numpy()
        kept = data.take(np.flatnonzero(~dropped))
        quarantine = pd.DataFrame({"row": np.flatnonzero(dropped), "reason": reasons[dropped]})
        cleaned = Cleaned(kept, quarantine)
    else:
        cleaned = _clean_table(data.reset_index(drop=True), rules, dataset.label)
    if len(cleaned.data) == 0:
        counts = cleaned.quarantine["reason"].value_counts().to_dict()
        raise UserError(f"clean: every row was dropped ({counts})")
    quarantine = cleaned.quarantine.reset_index(drop=True).astype({"reason": "string"})
    return Cleaned(cleaned.data, quarantine, cleaned.coerced, cleaned.clipped)


def recheck_expectations(raw_report: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw data's expectations that still apply after cleaning.

    validate checked `paths.raw` as this step coerces it, so kinds and ranges hold here too.
    An inferred share of nulls below 1 describes the raw batch: dropping duplicate rows moves
    it (a column 97.0% full in the batch can be 96.99% full once they are gone), so it is not
    checked again; params.yaml's `validate.max_null_fraction` is.
    """
    return [
        e
        for e in raw_report.get("expectations", [])
        if not (
            e["type"] == "expect_column_values_to_not_be_null"
            and e.get("meta", {}).get("origin") == "inferred"
            and e["kwargs"].get("mostly", 1.0) < 1.0
        )
    ]


def run(params: Params) -> Cleaned:
    """Clean `paths.raw` into `paths.clean`, validate it again, write `reports/clean.json`."""
    from tasks.checks import check_data, raise_on_failure, report_path, write_report

    raw_report = read_json(report_path(params))
    cleaned = clean_data(read_data(params.paths.raw, "data"), params.clean, params.dataset)
    expectations = recheck_expectations(raw_report)
    source = params.paths.clean / "data"
    with replace_dir(params.paths.clean) as staging:
        # written while the cleaned data is checked again; kept only if the check passes
        with writing(staging, {"data": cleaned.data, "quarantine": cleaned.quarantine}):
            checks = check_data(cleaned.data, expectations, params.dataset.label)
            write_report(report_path(params).parent, "clean", source, expectations, checks)
            raise_on_failure(source, checks)
    write_json(
        params.paths.reports / "clean.json",
        {
            "rows_kept": len(cleaned.data),
            "rows_dropped": len(cleaned.quarantine),
            "dropped_by_reason": cleaned.counts(),
            "coerced_to_numbers": cleaned.coerced,
            "clipped_by_column": cleaned.clipped,
        },
    )
    log.info("clean: kept %d rows, quarantined %s", len(cleaned.data), cleaned.counts() or "none")
    return cleaned


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.clean")
