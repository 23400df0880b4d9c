"""The files stages hand to each other: tables as Parquet, arrays (images, sequences) as .npz.

A stage writes into a temporary sibling folder and renames it into place, so a failed
stage never leaves a partial output behind for the next one.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from tasks.runtime import UserError


@dataclass(frozen=True)
class Arrays:
    """Images [n, h, w, c] or sequences [n, steps, features] with their targets y [n], and
    the rows' keys [n] when the source names them (`split.key`)."""

    x: np.ndarray
    y: np.ndarray
    keys: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> Arrays:
        keys = None if self.keys is None else self.keys[index]
        return Arrays(self.x[index], self.y[index], keys)

    def without_keys(self) -> Arrays:
        return Arrays(self.x, self.y)


Data: TypeAlias = pd.DataFrame | Arrays

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """A model-ready split (standardize's output): float32 inputs x and encoded targets y."""

    x: np.ndarray
    y: np.ndarray


def load_split(folder: Path, name: str) -> Split:
    """`<name>.npz` of `paths.processed`, as standardize wrote it."""
    path = folder / f"{name}.npz"
    if not path.is_file():
        raise UserError(f"{path}: not found (run the standardize stage first)")
    with np.load(path) as npz:
        return Split(npz["x"], npz["y"])


def n_classes_of(task: str, *splits: Split) -> int:
    """How many classes the encoded labels of the splits span (0 for regression)."""
    return 0 if task == "regression" else int(max(int(s.y.max()) for s in splits) + 1)


def flat_rows(x: np.ndarray) -> np.ndarray:
    """One flat row per sample (images and sequences are flattened), as an MLP takes them."""
    return x.reshape(len(x), -1)


def labels_of(data: Data, label: str) -> np.ndarray:
    """The targets: `y` of arrays, the label column of a table."""
    return data.y if isinstance(data, Arrays) else data[label].to_numpy()


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like np.savez, but byte-identical for identical arrays (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def write_data(data: Data, folder: Path, name: str) -> Path:
    """Write one dataset as `<name>.parquet` or `<name>.npz` inside folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, Arrays):
        path = folder / f"{name}.npz"
        keys = {} if data.keys is None else {"keys": data.keys}
        save_npz(path, x=data.x, y=data.y, **keys)
    else:
        path = folder / f"{name}.parquet"
        data.to_parquet(path, index=False)
    return path


def read_data(folder: Path, name: str) -> Data:
    """Read `<name>.parquet` or `<name>.npz` from folder."""
    table, arrays = folder / f"{name}.parquet", folder / f"{name}.npz"
    if table.is_file():
        return pd.read_parquet(table)
    if arrays.is_file():
        with np.load(arrays, allow_pickle=False) as npz:
            return Arrays(npz["x"], npz["y"], npz["keys"] if "keys" in npz.files else None)
    raise UserError(f"{folder}: no {name}.parquet or {name}.npz (did the previous stage run?)")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: not found (did the previous stage run?)")
    result: dict[str, Any] = json.loads(path.read_text())
    return result


@contextmanager
def replace_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces target only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def replace_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces target only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    try:
        yield staging
        staging.replace(target)
    finally:
        staging.unlink(missing_ok=True)


def pin_archive(path: Path, volatile: tuple[str, ...] = ("date_saved",)) -> None:
    """Rewrite a zip (a `.keras` model) so the same content gives the same bytes: fixed entry
    timestamps, and the volatile keys dropped from its JSON members (Keras stamps the time
    of saving into metadata.json)."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with replace_file(path) as staging, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members:
            stamp = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            out.writestr(stamp, _without(data, volatile) if name.endswith(".json") else data)


def _without(data: bytes, keys: tuple[str, ...]) -> bytes:
    content = json.loads(data)
    if not isinstance(content, dict):
        return data
    text = json.dumps({k: v for k, v in content.items() if k not in keys})
    # objects shared between layers are tagged with Python's id() of the moment: renumber
    ids: dict[str, str] = {}
    return re.sub(
        r'"shared_object_id": (\d+)',
        lambda m: f'"shared_object_id": {ids.setdefault(m.group(1), str(len(ids)))}',
        text,
    ).encode()
