from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import DatasetParams, SplitParams
from tasks.datafiles import Arrays, write_data, write_json
from tasks.runtime import UserError
from tasks.split import manifest, split_data, split_indices, write_manifest

DATASET = DatasetParams(label="y")


def _frame(rows: int = 1000) -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(rows), "y": np.arange(rows) % 4})


def test_70_10_20_stratified_and_disjoint() -> None:
    parts, index = split_data(_frame(), SplitParams(), DATASET)
    assert {k: len(v) for k, v in parts.items()} == {"train": 700, "val": 100, "test": 200}
    all_rows = np.concatenate(list(index.values()))
    assert len(np.unique(all_rows)) == 1000
    for part in parts.values():
        shares = part["y"].value_counts(normalize=True)
        assert np.allclose(shares, 0.25, atol=0.02)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    data = Arrays(np.random.default_rng(1).normal(size=(300, 4, 4, 1)), np.arange(300) % 3)
    for attempt in ("a", "b"):
        parts, _ = split_data(data, SplitParams(seed=7), DATASET)
        for name, part in parts.items():
            write_data(part, tmp_path / attempt, name)
    for name in ("train", "val", "test"):
        first = (tmp_path / "a" / f"{name}.npz").read_bytes()
        assert first == (tmp_path / "b" / f"{name}.npz").read_bytes()


def test_a_different_seed_gives_a_different_split() -> None:
    y = np.arange(200) % 2
    first = split_indices(y, SplitParams(seed=1), stratify=True)["test"]
    second = split_indices(y, SplitParams(seed=2), stratify=True)["test"]
    assert not np.array_equal(first, second)


def test_tiny_class_falls_back_to_plain_split(caplog: pytest.LogCaptureFixture) -> None:
    y = np.array([0] * 50 + [1] * 2)
    index = split_indices(y, SplitParams(), stratify=True)
    assert sum(len(v) for v in index.values()) == 52
    assert "too small to stratify" in caplog.text


def test_too_few_rows() -> None:
    with pytest.raises(UserError, match="too few"):
        split_indices(np.array([0, 1, 0]), SplitParams(), stratify=False)


def test_manifest_counts_classes() -> None:
    y = np.array([0, 1, 1, 0])
    result = manifest({"train": np.array([0, 1, 2]), "val": np.array([3])}, y, "classification")
    assert result["train"]["class_counts"] == {"0": 1, "1": 2}
    assert result["val"]["row_ids"] == [3]


def test_same_seed_gives_byte_identical_parquet_and_manifest(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=500),
            "b": rng.choice(["u", "v", None], 500),
            "y": np.arange(500) % 3,
        }
    )
    for attempt in ("a", "b"):
        parts, index = split_data(frame, SplitParams(seed=7), DATASET)
        for name, part in parts.items():
            write_data(part, tmp_path / attempt, name)
        (tmp_path / attempt / "manifest.json").write_text(
            str(manifest(index, frame["y"].to_numpy(), "classification"))
        )
    for name in ("train.parquet", "val.parquet", "test.parquet", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other, _ = split_data(frame, SplitParams(seed=8), DATASET)
    assert not other["test"].equals(parts["test"])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_fast_manifest_writer_matches_write_json_byte_for_byte(
    tmp_path: Path, task: str
) -> None:
    index = {"train": np.array([0, 2, 5]), "val": np.array([], dtype=int), "test": np.array([7])}
    y = np.array(["b", "a", "b", "a", "a", "b", "a", "@row_ids:test@"])
    entries = manifest(index, y, task)
    write_json(tmp_path / "slow.json", entries)
    write_manifest(tmp_path / "fast.json", entries)
    assert (tmp_path / "fast.json").read_bytes() == (tmp_path / "slow.json").read_bytes()
