"""split: divide `paths.clean` into train, validation and test sets under `paths.split`.

A row's split depends only on its key and `split.seed` (hash bucketing), never on the other
rows, so adding, removing or reordering rows moves no existing row between splits, and
identical rows always land in the same split. The key is the column (table) or array (NPZ)
`split.key` names, else a hash of the row's feature values (not its label, so a corrected
label keeps its row where it was). `manifest.json` records, for each split, its keys and
labels (in the order of its rows), its fraction of the rows and its class counts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import DatasetParams, Params, SplitParams, load_params
from tasks.datafiles import SPLITS, Arrays, Data, labels_of, read_data, replace_dir, writing
from tasks.keys import row_keys, split_of
from tasks.runtime import UserError, no_options, run_entry

log = logging.getLogger(__name__)

LISTED = ("keys", "labels")  # a split's rows in order: its keys and its labels


def split_indices(keys: np.ndarray, rules: SplitParams) -> dict[str, np.ndarray]:
    """Row positions of each split, in row order: each row placed by its key alone."""
    if len(keys) < len(SPLITS):
        raise UserError(f"split: {len(keys)} rows are too few for three splits")
    assigned = split_of(keys, rules)
    return {name: np.flatnonzero(assigned == number) for number, name in enumerate(SPLITS)}


def split_data(
    data: Data, rules: SplitParams, dataset: DatasetParams
) -> tuple[dict[str, Data], dict[str, np.ndarray]]:
    """Split data into train/val/test; also return each split's row keys, in row order.

    A key column is the rows' name, not a feature: the split files leave it out.
    """
    keys = row_keys(data, rules.key, dataset.label)
    index = split_indices(keys, rules)
    if isinstance(data, Arrays):
        parts: dict[str, Data] = {
            name: data.take(rows).without_keys() for name, rows in index.items()
        }
    else:
        features = data.drop(columns=rules.key) if rules.key else data
        parts = {name: features.iloc[rows].reset_index(drop=True) for name, rows in index.items()}
    return parts, {name: keys[rows] for name, rows in index.items()}


def manifest(
    keys: dict[str, np.ndarray], labels: dict[str, np.ndarray], task: str
) -> dict[str, Any]:
    """Each split's keys and labels (in row order), row count, fraction of all rows and
    (classification) class counts. With the labels, a later run tells relabelled rows."""
    total = sum(len(k) for k in keys.values())
    result: dict[str, Any] = {}
    for name, split_keys in keys.items():
        entry: dict[str, Any] = {
            "rows": len(split_keys),
            "fraction": round(len(split_keys) / total, 4),
            "keys": split_keys.tolist(),
            "labels": np.asarray(labels[name]).tolist(),
        }
        if task == "classification":
            counts = pd.Series(labels[name]).value_counts().sort_index()
            entry["class_counts"] = {str(k): int(v) for k, v in counts.items()}
        result[name] = entry
    return result


def write_manifest(path: Path, entries: dict[str, Any]) -> None:
    """Write the manifest as `write_json` would, byte for byte, but fast.

    The standard library encodes an indented list one item at a time in Python: about a
    second for a million keys. Each split's lists are left to a placeholder and encoded by
    the C encoder, whose separator carries the indentation.
    """
    lists = {
        (name, field): entry[field]
        for name, entry in entries.items()
        for field in LISTED
        if isinstance(entry, dict) and field in entry
    }
    placeholders = {
        name: {**entry, **{f: f"@{f}:{name}@" for f in LISTED if (name, f) in lists}}
        for name, entry in entries.items()
    }
    text = json.dumps(placeholders, indent=2, sort_keys=True, default=str)
    for (name, field), values in lists.items():
        body = json.dumps(values, separators=(",\n      ", ": "), default=str)
        listed = "[\n      " + body[1:-1] + "\n    ]" if values else "[]"
        text = text.replace(f'"{field}": "@{field}:{name}@"', f'"{field}": {listed}', 1)
    path.write_text(text + "\n")


def _warn_empty_classes(entries: dict[str, Any]) -> None:
    classes = set().union(*(entry.get("class_counts", {}) for entry in entries.values()))
    for name in SPLITS:
        missing = sorted(classes - set(entries[name].get("class_counts", {})))
        if missing:
            log.warning("split: %s has no rows of class %s", name, ", ".join(missing))


def run(params: Params) -> dict[str, Data]:
    """Split `paths.clean` into `paths.split/{train,val,test}` with a manifest."""
    data = read_data(params.paths.clean, "data")
    parts, keys = split_data(data, params.split, params.dataset)
    with replace_dir(params.paths.split) as staging, writing(staging, parts):
        labels = {name: labels_of(part, params.dataset.label) for name, part in parts.items()}
        entries = manifest(keys, labels, params.dataset.task)
        write_manifest(staging / "manifest.json", entries)
    _warn_empty_classes(entries)
    log.info("split: %s", {name: len(part) for name, part in parts.items()})
    return parts


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.split")
