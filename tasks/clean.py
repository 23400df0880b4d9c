"""clean: drop duplicate rows and rows with missing values from `paths.raw` into `paths.clean`.

Every dropped row goes to `paths.clean/quarantine.parquet` with its reason; the counts per
reason go to `reports/clean.json`. Imputation that needs statistics (mean, median, most
frequent) is not done here but in the preprocessor fitted on the training split only, so no
statistic of validation or test rows leaks into training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.config import CleanParams, DatasetParams, Params, load_params
from tasks.datafiles import Arrays, Data, read_data, replace_dir, write_data, write_json
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cleaned:
    data: Data
    quarantine: pd.DataFrame  # the raw row number, the reason, and (for tables) the row

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.quarantine["reason"].value_counts().items()}


def _flag_table(frame: pd.DataFrame, rules: CleanParams, label: str) -> pd.Series:
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    reasons[frame[label].isna()] = "missing_label"
    if rules.missing == "drop":
        reasons[reasons.isna() & frame.drop(columns=label).isna().any(axis=1)] = "missing_value"
    if rules.drop_duplicates:
        reasons[reasons.isna() & frame.duplicated(keep="first")] = "duplicate"
    return reasons


def _flag_arrays(data: Arrays, rules: CleanParams) -> pd.Series:
    flat = data.x.reshape(len(data), -1)
    reasons = pd.Series(pd.NA, index=range(len(data)), dtype="string")
    reasons[~np.isfinite(flat.astype("float64")).all(axis=1)] = "missing_value"
    if rules.drop_duplicates:
        rows = pd.Series(
            [row.tobytes() + bytes(str(y), "utf8") for row, y in zip(flat, data.y, strict=True)]
        )
        reasons[reasons.isna() & rows.duplicated(keep="first").to_numpy()] = "duplicate"
    return reasons


def clean_data(data: Data, rules: CleanParams, dataset: DatasetParams) -> Cleaned:
    """Split data into the rows kept and the rows quarantined, each with a reason."""
    if isinstance(data, Arrays):
        reasons = _flag_arrays(data, rules)
        dropped = reasons.notna().to_numpy()
        kept: Data = data.take(np.flatnonzero(~dropped))
        quarantine = pd.DataFrame({"row": np.flatnonzero(dropped), "reason": reasons[dropped]})
    else:
        frame = data.reset_index(drop=True)
        reasons = _flag_table(frame, rules, dataset.label)
        dropped = reasons.notna()
        kept = frame[~dropped].reset_index(drop=True)
        quarantine = frame[dropped].assign(row=frame.index[dropped], reason=reasons[dropped])
    if len(kept) == 0:
        raise UserError(f"clean: every row was dropped ({reasons.value_counts().to_dict()})")
    return Cleaned(kept, quarantine.reset_index(drop=True).astype({"reason": "string"}))


def run(params: Params) -> Cleaned:
    """Clean `paths.raw` into `paths.clean` and write the counts to `reports/clean.json`."""
    cleaned = clean_data(read_data(params.paths.raw, "data"), params.clean, params.dataset)
    with replace_dir(params.paths.clean) as staging:
        write_data(cleaned.data, staging, "data")
        cleaned.quarantine.to_parquet(staging / "quarantine.parquet", index=False)
    write_json(
        params.paths.reports / "clean.json",
        {
            "rows_kept": len(cleaned.data),
            "rows_dropped": len(cleaned.quarantine),
            "dropped_by_reason": cleaned.counts(),
        },
    )
    log.info("clean: kept %d rows, quarantined %s", len(cleaned.data), cleaned.counts() or "none")
    return cleaned


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.clean")
