"""ingest: load the configured source and write it to `paths.raw` (`data.parquet` or `data.npz`).

Sources: scikit-learn's bundled sets (no download), a CSV or Parquet file with a label
column, MNIST-style IDX gz files, or an `.npz` with `x` and `y`. The source file itself
is only read, never modified; `source.json` beside the data records where it came from.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.config import DatasetParams, IngestParams, Params, load_params
from tasks.datafiles import Arrays, Data, replace_dir, write_data, write_json
from tasks.runtime import UserError, run_entry

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


def load_table(path: Path, label: str, drop_columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file that has a label column; leave out `drop_columns`."""
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, OSError, ValueError) as error:
        raise UserError(f"{path}: cannot be read as a table ({error})") from None
    if frame.empty:
        raise UserError(f"{path}: file has no rows")
    if label not in frame.columns:
        raise UserError(f"{path}: label column {label!r} missing (dataset.label in params.yaml)")
    unknown = [c for c in drop_columns or [] if c not in frame.columns]
    if unknown:
        raise UserError(f"{path}: ingest.drop_columns names column(s) not in the file: {unknown}")
    if label in (drop_columns or []):
        raise UserError(f"{path}: ingest.drop_columns must not drop the label column {label!r}")
    return frame.drop(columns=drop_columns or [])


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
    except KeyError as error:
        raise UserError(f"{path}: missing array {error} (need 'x' and 'y')") from None
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


def load_source(ingest: IngestParams, dataset: DatasetParams, key: str | None = None) -> Data:
    """Load the configured source into memory (no writing); `key`: an NPZ's key array."""
    if ingest.drop_columns and ingest.source not in ("csv", "parquet"):
        raise UserError(f"ingest.drop_columns applies to csv/parquet tables, not {ingest.source}")
    if ingest.source == "sklearn":
        data = load_sklearn(ingest.name, dataset.label)
    else:
        assert ingest.path is not None  # guaranteed by IngestParams
        loaders = {
            "csv": lambda p: load_table(p, dataset.label, ingest.drop_columns),
            "parquet": lambda p: load_table(p, dataset.label, ingest.drop_columns),
            "idx": load_idx,
            "npz": lambda p: load_npz(p, key),
        }
        data = loaders[ingest.source](ingest.path)
    if ingest.max_rows is not None and len(data) > ingest.max_rows:
        data = (
            data.iloc[: ingest.max_rows]
            if isinstance(data, pd.DataFrame)
            else data.take(np.arange(ingest.max_rows))
        )
    return data


def _fingerprint(path: Path | None) -> str | None:
    if path is None or not path.exists():
        return None
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def run(params: Params) -> Path:
    """Load the source and write it, with its provenance, to `paths.raw`."""
    data = load_source(params.ingest, params.dataset, params.split.key)
    with replace_dir(params.paths.raw) as staging:
        write_data(data, staging, "data")
        write_json(
            staging / "source.json",
            {
                **params.ingest.model_dump(mode="json"),
                "sha256": _fingerprint(params.ingest.path),
                "rows": len(data),
            },
        )
    log.info("ingest: %d rows from %s into %s", len(data), params.ingest.source, params.paths.raw)
    return params.paths.raw


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.ingest")
