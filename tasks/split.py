"""split: divide `paths.clean` into train, validation and test sets under `paths.split`.

Stratified by the label for classification (falling back to a plain shuffle with a warning
when a class is too small), seeded, so the same data and seed give byte-identical files.
`manifest.json` records the row ids and class counts of each split.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import DatasetParams, Params, SplitParams, load_params
from tasks.datafiles import SPLITS, Arrays, Data, labels_of, read_data, replace_dir, write_data
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


def _can_stratify(y: np.ndarray, rules: SplitParams) -> bool:
    _, counts = np.unique(y, return_counts=True)
    # each split needs at least one row of every class
    return bool(counts.min() * min(rules.train, rules.val, rules.test) >= 1)


def split_indices(y: np.ndarray, rules: SplitParams, stratify: bool) -> dict[str, np.ndarray]:
    """Row positions of each split, sorted; stratified on y when asked and possible."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    if len(y) < len(SPLITS) / min(rules.train, rules.val, rules.test):
        raise UserError(
            f"split: {len(y)} rows are too few for ratios {rules.train}/{rules.val}/{rules.test}"
        )
    if stratify and not _can_stratify(y, rules):
        log.warning("split: a class is too small to stratify; splitting without stratification")
        stratify = False
    # whole row counts, so 0.7/0.1/0.2 of 1000 rows is exactly 700/100/200
    n_test, n_val = round(len(y) * rules.test), round(len(y) * rules.val)
    rest, test = train_test_split(
        rows, test_size=n_test, random_state=rules.seed, stratify=y if stratify else None
    )
    train, val = train_test_split(
        rest, test_size=n_val, random_state=rules.seed, stratify=y[rest] if stratify else None
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def split_data(
    data: Data, rules: SplitParams, dataset: DatasetParams
) -> tuple[dict[str, Data], dict[str, np.ndarray]]:
    """Split data into train/val/test; also return the row positions of each split."""
    y = labels_of(data, dataset.label)
    index = split_indices(y, rules, rules.stratify and dataset.task == "classification")
    if isinstance(data, Arrays):
        return {name: data.take(rows) for name, rows in index.items()}, index
    return {name: data.iloc[rows].reset_index(drop=True) for name, rows in index.items()}, index


def manifest(index: dict[str, np.ndarray], y: np.ndarray, task: str) -> dict[str, Any]:
    """Row ids and (for classification) class counts of each split."""
    result: dict[str, Any] = {}
    for name, rows in index.items():
        entry: dict[str, Any] = {"rows": len(rows), "row_ids": rows.tolist()}
        if task == "classification":
            counts = pd.Series(y[rows]).value_counts().sort_index()
            entry["class_counts"] = {str(k): int(v) for k, v in counts.items()}
        result[name] = entry
    return result


def write_manifest(path: Path, entries: dict[str, Any]) -> None:
    """Write the manifest as `write_json` would, byte for byte, but fast.

    The standard library encodes an indented list one item at a time in Python: about a
    second for a million row ids. Each id list is left to a placeholder and joined here.
    """
    ids = {name: entry["row_ids"] for name, entry in entries.items()}
    text = json.dumps(
        {name: {**entry, "row_ids": f"@row_ids:{name}@"} for name, entry in entries.items()},
        indent=2,
        sort_keys=True,
        default=str,
    )
    for name, rows in ids.items():
        listed = "[\n      " + ",\n      ".join(map(str, rows)) + "\n    ]" if rows else "[]"
        text = text.replace(f'"row_ids": "@row_ids:{name}@"', f'"row_ids": {listed}', 1)
    path.write_text(text + "\n")


def run(params: Params) -> dict[str, Data]:
    """Split `paths.clean` into `paths.split/{train,val,test}` with a manifest."""
    data = read_data(params.paths.clean, "data")
    parts, index = split_data(data, params.split, params.dataset)
    with replace_dir(params.paths.split) as staging:
        for name, part in parts.items():
            write_data(part, staging, name)
        y = labels_of(data, params.dataset.label)
        write_manifest(staging / "manifest.json", manifest(index, y, params.dataset.task))
    log.info("split: %s", {name: len(part) for name, part in parts.items()})
    return parts


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.split")
