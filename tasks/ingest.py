"""ingest: load the configured source, check it, and write it to `paths.raw` (`data.parquet`
or `data.npz`).

Sources: scikit-learn's bundled sets (no download), a CSV or Parquet file with a label
column (a CSV's dialect as `ingest.csv` says, `auto` parts sniffed: `tasks.tables`),
MNIST-style IDX gz files, or an `.npz` with `x` and `y`. The source file itself is only
read, never modified; `source.json` beside the data records where it came from and how it
was read.

`paths.raw` changes only when the batch passes the data contract (`tasks.contract`: the
saved suite and `validate:`'s rules, as `validate` checks them): a batch that fails is kept
in `paths.rejected` with its report, the previous raw data stays, and the step exits
non-zero with one line per cause. DVC must not delete `paths.raw` before the stage runs
(`persist: true` in dvc.yaml); `replace_dir` swaps it in whole.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import CsvParams, DatasetParams, IngestParams, Params, load_params
from tasks.contract import check_contract, reject, save_verdict
from tasks.datafiles import Arrays, Data, replace_dir, write_json, writing
from tasks.runtime import UserError, no_options, run_entry
from tasks.tables import TableFormat, read_table

log = logging.getLogger(__name__)

SKLEARN_SETS = ("digits", "breast_cancer", "wine", "diabetes", "iris")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def load_sklearn(name: str, label: str) -> Data:
    """Load a dataset bundled with scikit-learn: digits as 8x8 images, the others as tables."""
    from sklearn import datasets

    if name not in SKLEARN_SETS:
        raise UserError(f"ingest.name: unknown scikit-learn dataset {name!r}; use {SKLEARN_SETS}")
    bunch = getattr(datasets, f"load_{name}")()
    if name == "digits":
        return Arrays(bunch.images[..., np.newaxis].astype("float32"), bunch.target)
    frame = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    frame[label] = bunch.target
    return frame


def load_table(
    path: Path, label: str, drop_columns: list[str] | None = None, options: CsvParams | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet file that has a label column; leave out `drop_columns`."""
    return read_table(path, label, drop_columns, options)[0]


def _read_idx(path: Path) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise UserError(f"{path}: not a complete gzip file ({error})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise UserError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path}: expected {int(np.prod(dims))} values, found {body.size}")
    return body.reshape(dims)


def load_idx(folder: Path) -> Arrays:
    """Read MNIST's four IDX gz files (train and t10k) as one set of 28x28x1 images."""
    xs, ys = [], []
    for images_name, labels_name in IDX_FILES.values():
        images, labels = _read_idx(folder / images_name), _read_idx(folder / labels_name)
        if images.ndim != 3 or len(images) != len(labels):
            raise UserError(
                f"{folder / images_name}: images {images.shape} vs labels {labels.shape}"
            )
        xs.append(images[..., np.newaxis])
        ys.append(labels)
    return Arrays(np.concatenate(xs), np.concatenate(ys))


def load_npz(path: Path, key: str | None = None) -> Arrays:
    """Read an `.npz` with `x` of shape [n, ...] and `y` of shape [n] (and, when `key` names
    one, the rows' keys [n])."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
            keys = npz[key] if key is not None and key in npz.files else None
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except KeyError:
        with np.load(path, allow_pickle=False) as npz:
            found = sorted(npz.files)
        raise UserError(f"{path}: needs arrays 'x' and 'y', holds {found}") from None
    except (OSError, ValueError, zlib.error) as error:
        raise UserError(f"{path}: cannot be read as .npz ({error})") from None
    if x.ndim not in (3, 4) or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise UserError(
            f"{path}: need x [n,h,w(,c)] or [n,steps,features] and y [n]; "
            f"got x {x.shape}, y {y.shape}"
        )
    if keys is not None and keys.shape != y.shape:
        raise UserError(f"{path}: the key array {key!r} has shape {keys.shape}, need [{len(y)}]")
    return Arrays(x, y, keys)


def read_source(
    ingest: IngestParams, dataset: DatasetParams, key: str | None = None
) -> tuple[Data, TableFormat | None]:
    """Load the configured source into memory (no writing), and how a table was read;
    `key`: an NPZ's key array."""
    if ingest.drop_columns and ingest.source not in ("csv", "parquet"):
        raise UserError(f"ingest.drop_columns applies to csv/parquet tables, not {ingest.source}")
    found = None
    if ingest.source == "sklearn":
        data: Data = load_sklearn(ingest.name, dataset.label)
    elif ingest.source in ("csv", "parquet"):
        assert ingest.path is not None  # guaranteed by IngestParams
        data, found = read_table(ingest.path, dataset.label, ingest.drop_columns, ingest.csv)
    else:
        assert ingest.path is not None
        data = load_idx(ingest.path) if ingest.source == "idx" else load_npz(ingest.path, key)
    if ingest.max_rows is not None and len(data) > ingest.max_rows:
        data = (
            data.iloc[: ingest.max_rows]
            if isinstance(data, pd.DataFrame)
            else data.take(np.arange(ingest.max_rows))
        )
    return data, found


def load_source(ingest: IngestParams, dataset: DatasetParams, key: str | None = None) -> Data:
    """Load the configured source into memory (no writing); `key`: an NPZ's key array."""
    return read_source(ingest, dataset, key)[0]


def _fingerprint(path: Path | None) -> str | None:
    if path is None or not path.exists():
        return None
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _provenance(params: Params, data: Data, found: TableFormat | None) -> dict[str, Any]:
    return {
        **params.ingest.model_dump(mode="json"),
        "sha256": _fingerprint(params.ingest.path),
        "rows": len(data),
        "read": found.describe() if found else None,
        "format": found.as_dict() if found else None,
    }


def run(params: Params) -> Path:
    """Load the source, check it against the data contract, and only then replace
    `paths.raw` with it (and its provenance); a batch that fails goes to `paths.rejected`."""
    data, found = read_source(params.ingest, params.dataset, params.split.key)
    origin = str(params.ingest.path or f"sklearn:{params.ingest.name}")
    if found is not None:
        log.info("ingest: %s read as %s", origin, found.describe())
    source = _provenance(params, data, found)
    with replace_dir(params.paths.raw) as staging:
        with writing(staging, {"data": data}):  # while the contract is checked
            try:
                verdict = check_contract(data, params)
            except UserError as error:  # e.g. a column empty in every row: say which file
                raise UserError(f"{origin}: {error}") from None
            if not verdict.passed:  # the staged copy is dropped, paths.raw stays as it was
                raise reject(data, verdict, params, source, origin)
        write_json(staging / "source.json", source)
        save_verdict(staging, verdict, params)
    log.info("ingest: %d rows from %s into %s", len(data), params.ingest.source, params.paths.raw)
    return params.paths.raw


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.ingest")
