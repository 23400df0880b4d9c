"""The files stages hand to each other: tables as Parquet, arrays (images, sequences) as .npz.

A stage writes into a temporary sibling folder and renames it into place, so a failed
stage never leaves a partial output behind for the next one.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
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
        _hand_on(data, path)
    return path


# Tables this process wrote, for the next step in the same process (the Prefect door runs
# every step in one): the step reads the file's frame instead of parsing the file again,
# about 0.3 s a million rows each time. Only frames whose every column reads back exactly
# as written are kept, keyed by the written file's identity (device, inode, size, mtime: a
# rename into place keeps it; a rewrite changes it, as DVC's own state database assumes when
# it decides whether to hash a file again), taken on their first read, and forgotten at the
# end of a flow run.
_HANDED: OrderedDict[tuple[int, int, int, int], pd.DataFrame] = OrderedDict()
_HANDED_LOCK = threading.Lock()
_HANDED_AT_MOST = 4  # a step's outputs; older ones are read from their files
_EXACT_DTYPES = (pd.StringDtype("pyarrow", na_value=np.nan),)


def _identity(path: Path) -> tuple[int, int, int, int]:
    stat = path.stat()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _reads_back_exactly(frame: pd.DataFrame) -> bool:
    """Whether Parquet gives this frame back as it is (less its index): text-named, unique
    columns of numpy numbers or booleans or pandas' default text, and no attrs."""
    return (
        not frame.attrs
        and frame.columns.is_unique
        and all(isinstance(column, str) for column in frame.columns)
        and all(
            dtype in _EXACT_DTYPES or (isinstance(dtype, np.dtype) and dtype.kind in "biuf")
            for dtype in frame.dtypes
        )
    )


def _hand_on(frame: pd.DataFrame, path: Path) -> None:
    if not _reads_back_exactly(frame):
        return
    kept = frame.reset_index(drop=True)  # copy-on-write: later changes to either are apart
    with _HANDED_LOCK:
        _HANDED[_identity(path)] = kept
        while len(_HANDED) > _HANDED_AT_MOST:
            _HANDED.popitem(last=False)


def _handed(path: Path, leave: bool) -> pd.DataFrame | None:
    with _HANDED_LOCK:
        identity = _identity(path)
        if not leave:
            return _HANDED.pop(identity, None)
        kept = _HANDED.get(identity)
        return None if kept is None else kept.copy(deep=False)  # copy-on-write, as above


def forget_handed() -> None:
    """Drop every table kept for a later read (the end of a flow run)."""
    with _HANDED_LOCK:
        _HANDED.clear()


@contextmanager
def writing(folder: Path, files: Mapping[str, Data]) -> Iterator[None]:
    """Write each dataset (as `write_data`) in a background thread while the block runs.

    pyarrow and numpy release the GIL while they encode and write, so on two cores a write
    overlaps the Python work of the block (a GX check, a manifest): about 0.4 s per step
    at a million rows. The block must not change the data. The write is always finished when
    the block ends; the block's own error wins, else the write's is raised.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write") as pool:
        written = pool.submit(lambda: [write_data(data, folder, n) for n, data in files.items()])
        yield
        written.result()


def read_data(folder: Path, name: str, *, leave_handed: bool = False) -> Data:
    """Read `<name>.parquet` or `<name>.npz` from folder. A table this process wrote there
    is taken from memory (see `_hand_on`); `leave_handed` leaves it for a later read too."""
    table, arrays = folder / f"{name}.parquet", folder / f"{name}.npz"
    if table.is_file():
        handed = _handed(table, leave_handed)
        return pd.read_parquet(table) if handed is None else handed
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
