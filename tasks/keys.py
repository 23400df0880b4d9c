"""Row keys: the name each row keeps as data grows, and the split it belongs to by that name.

A key is the value of `split.key` (a table column, or an NPZ array) when given, else a hash
of the row's feature values: the label is left out, so a corrected label keeps its key, and
numbers are hashed as float64 with the columns in name order, so `3` and `3.0`, or a file
with its columns reordered, give the same keys. A row's split is a hash of its key and
`split.seed` alone (hash bucketing): adding, removing or reordering rows moves no row.

Hashing is pandas' (`hash_pandas_object`, `hash_array`: SipHash with a fixed key), the same
on every machine; `tests/tasks/test_split.py` pins known keys and splits, so a library
upgrade that changed them would fail there rather than move rows silently.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from tasks.config import SplitParams
from tasks.datafiles import Arrays, Data
from tasks.runtime import UserError

_CHUNK = 65536  # rows hashed at a time (bounds the float64 copy of an image batch)


def _hex(hashes: np.ndarray) -> np.ndarray:
    """Each uint64 as 16 hex digits (as f"{h:016x}"), in C: one hex string of the big-endian
    bytes, cut every 16 characters (a Python loop took 0.33 s a million rows)."""
    digits = hashes.astype(">u8").tobytes().hex().encode("ascii")
    return np.frombuffer(digits, dtype="S16").astype("U16").astype(object)


def content_keys(data: Data, label: str) -> np.ndarray:
    """A 16-hex-digit hash of each row's feature values."""
    if isinstance(data, Arrays):
        flat = data.x.reshape(len(data), -1)
        digests = [
            hashlib.blake2b(row.tobytes(), digest_size=8).hexdigest()
            for start in range(0, len(flat), _CHUNK)
            for row in flat[start : start + _CHUNK].astype("float64")
        ]
        return np.array(digests, dtype=object)
    features = data.drop(columns=label, errors="ignore")
    features = features[sorted(features.columns, key=str)]
    canonical = {
        column: values.astype("float64")
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        else values.astype("str")
        for column, values in features.items()
    }
    return _hex(pd.util.hash_pandas_object(pd.DataFrame(canonical), index=False).to_numpy())


def _given_keys(data: Data, key: str) -> np.ndarray:
    if isinstance(data, Arrays):
        if data.keys is None:
            raise UserError(f"split.key: the data has no array {key!r} (name an array of the NPZ)")
        values = pd.Series(data.keys)
    elif key not in data.columns:
        raise UserError(f"split.key: column {key!r} is missing from the cleaned data")
    else:
        values = data[key]
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise UserError(f"split.key: column {key!r} has no key in row {row}")
    return values.astype("str").to_numpy(dtype=object)


def _check_unique(keys: np.ndarray, rows: np.ndarray, key: str) -> None:
    """A key names one row: a key repeated for rows that differ is refused."""
    pairs = pd.DataFrame({"key": keys, "row": rows}).drop_duplicates()
    repeated = pairs["key"].duplicated()
    if repeated.any():
        first = pairs["key"][repeated].iloc[0]
        raise UserError(f"split.key: column {key!r} repeats the key {first!r} for different rows")


def row_keys(data: Data, key: str | None, label: str) -> np.ndarray:
    """Each row's key (strings), in row order."""
    if key is None:
        return content_keys(data, label)
    keys = _given_keys(data, key)
    rows = data.without_keys() if isinstance(data, Arrays) else data.drop(columns=key)
    _check_unique(keys, content_keys(rows, "\0no label\0"), key)
    return keys


def split_of(keys: np.ndarray, rules: SplitParams) -> np.ndarray:
    """0 (train), 1 (val) or 2 (test) for each key: its hash mixed with the seed's, as a
    fraction of 2**64, bucketed by the split fractions."""
    hashed = pd.util.hash_array(np.asarray(keys, dtype=object), categorize=False)
    seed = pd.util.hash_array(np.array([rules.seed], dtype=np.uint64))
    unit = pd.util.hash_array(hashed ^ seed).astype("float64") / 2.0**64
    return np.searchsorted(np.array([rules.train, rules.train + rules.val]), unit, side="right")
