from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from tasks.config import DatasetParams, SplitParams, parse_params
from tasks.datafiles import Arrays, read_data, write_data, write_json
from tasks.keys import content_keys, row_keys, split_of
from tasks.runtime import UserError
from tasks.split import manifest, run, split_data, write_manifest

DATASET = DatasetParams(label="y")


def _frame(rows: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"a": rng.normal(size=rows), "b": rng.integers(0, 9, rows), "y": np.arange(rows) % 4}
    )


def _digits() -> Arrays:
    bunch = load_digits()
    return Arrays(bunch.images[..., np.newaxis].astype("float32"), bunch.target)


def _placement(parts: dict[str, np.ndarray]) -> dict[str, str]:
    return {str(key): name for name, keys in parts.items() for key in keys}


def test_digits_fractions_stay_within_two_points_of_70_10_20() -> None:
    parts, keys = split_data(_digits(), SplitParams(), DATASET)
    entries = manifest(keys, {n: p.y for n, p in parts.items()}, "classification")  # type: ignore[union-attr]
    for name, share in {"train": 0.7, "val": 0.1, "test": 0.2}.items():
        assert abs(entries[name]["fraction"] - share) <= 0.02, entries[name]["fraction"]
    assert sum(entries[n]["rows"] for n in ("train", "val", "test")) == 1797


def test_adding_removing_and_reordering_rows_moves_no_row() -> None:
    frame = _frame(1000)
    _, before = split_data(frame, SplitParams(), DATASET)
    grown = pd.concat([frame.iloc[100:], _frame(400, seed=1)]).sample(frac=1, random_state=3)
    _, after = split_data(grown.reset_index(drop=True), SplitParams(), DATASET)
    old, new = _placement(before), _placement(after)
    kept = set(old) & set(new)
    assert len(kept) == 900
    assert all(old[key] == new[key] for key in kept)


def test_a_row_is_placed_by_its_features_not_its_label_nor_its_neighbours() -> None:
    frame = _frame(300)
    relabelled = frame.assign(y=(frame["y"] + 1) % 4)
    assert (row_keys(frame, None, "y") == row_keys(relabelled, None, "y")).all()
    alone = split_of(row_keys(frame.iloc[[5]], None, "y"), SplitParams())
    assert alone[0] == split_of(row_keys(frame, None, "y"), SplitParams())[5]


def test_identical_rows_land_in_the_same_split() -> None:
    frame = pd.concat([_frame(200), _frame(200).assign(y=7)])  # every row twice, other label
    parts, keys = split_data(frame.reset_index(drop=True), SplitParams(), DATASET)
    seen = [set(k) for k in keys.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sum(len(p) for p in parts.values()) == 400


def test_numbers_and_column_order_do_not_change_a_key() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "y": [0, 1, 0]})
    same = frame.astype({"a": "float64"})[["b", "a", "y"]]
    assert (content_keys(frame, "y") == content_keys(same, "y")).all()


def test_keys_and_splits_are_pinned() -> None:
    """A pandas or hashing change that moved rows between splits would fail here."""
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"], "y": [0, 1, 0]})
    keys = content_keys(frame, "y")
    assert keys.tolist() == PINNED_KEYS
    numbered = np.array([str(i) for i in range(1, 21)], dtype=object)
    assert split_of(numbered, SplitParams()).tolist() == PINNED_SPLITS
    image = Arrays(np.arange(8, dtype="float32").reshape(2, 2, 2, 1), np.array([0, 1]))
    assert content_keys(image, "y").tolist() == PINNED_IMAGE_KEYS


PINNED_KEYS = ["f94ffa059fe55534", "1411f348d5deb2a2", "eb398e47a2682f3a"]
PINNED_SPLITS = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]
PINNED_IMAGE_KEYS = ["47f98d0d8f039e52", "f3cadb044c04c4de"]


def test_a_different_seed_gives_a_different_split() -> None:
    keys = row_keys(_frame(), None, "y")
    assert not np.array_equal(
        split_of(keys, SplitParams(seed=1)), split_of(keys, SplitParams(seed=2))
    )


def test_a_key_column_names_the_rows_and_is_left_out_of_the_split_files() -> None:
    frame = _frame(500).assign(id=np.arange(500) * 7)
    parts, keys = split_data(frame, SplitParams(key="id"), DATASET)
    assert all("id" not in part.columns for part in parts.values())  # type: ignore[union-attr]
    assert sorted(int(k) for k in np.concatenate(list(keys.values()))) == list(range(0, 3500, 7))
    changed = frame.assign(a=0.0)  # new feature values, same ids: the same splits
    assert _placement(split_data(changed, SplitParams(key="id"), DATASET)[1]) == _placement(keys)


def test_an_npz_key_array_names_image_rows() -> None:
    digits = _digits()
    named = Arrays(digits.x, digits.y, np.arange(len(digits.y)) + 1000)
    parts, keys = split_data(named, SplitParams(key="id"), DATASET)
    assert all(part.keys is None for part in parts.values())  # type: ignore[union-attr]
    assert len(np.concatenate(list(keys.values()))) == 1797


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="id"), "split.key: column 'id' is missing from the cleaned data"),
        (
            lambda f: f.assign(id=f["id"].where(f.index != 3)),
            "split.key: column 'id' has no key in row 3",
        ),
        (
            lambda f: f.assign(id=f["id"].where(f.index != 9, 4)),
            "split.key: column 'id' repeats the key '4' for different rows",
        ),
    ],
)
def test_a_bad_key_column_is_one_line_naming_it(change: object, message: str) -> None:
    frame = _frame(50).assign(id=np.arange(50))
    with pytest.raises(UserError) as error:
        split_data(change(frame), SplitParams(key="id"), DATASET)  # type: ignore[operator]
    assert str(error.value) == message


def test_the_same_row_twice_under_one_key_is_not_a_conflict() -> None:
    frame = _frame(50).assign(id=np.arange(50))
    doubled = pd.concat([frame, frame.iloc[:5]]).reset_index(drop=True)
    _, keys = split_data(doubled, SplitParams(key="id"), DATASET)
    assert sum(len(k) for k in keys.values()) == 55


def test_too_few_rows() -> None:
    with pytest.raises(UserError, match="too few"):
        split_data(_frame(2), SplitParams(), DATASET)


def test_manifest_lists_keys_fractions_and_classes() -> None:
    keys = {
        "train": np.array(["a", "b", "c"], dtype=object),
        "val": np.array(["d"], dtype=object),
        "test": np.array([], dtype=object),
    }
    labels = {"train": np.array([0, 1, 1]), "val": np.array([0]), "test": np.array([])}
    result = manifest(keys, labels, "classification")
    assert result["train"] == {
        "rows": 3,
        "fraction": 0.75,
        "keys": ["a", "b", "c"],
        "labels": [0, 1, 1],
        "class_counts": {"0": 1, "1": 2},
    }
    assert result["test"]["keys"] == []


def test_same_data_gives_byte_identical_files(tmp_path: Path) -> None:
    frame = _frame(500).assign(b=lambda f: f["b"].astype(str).where(f["b"] != 3))
    for attempt in ("a", "b"):
        parts, keys = split_data(frame, SplitParams(seed=7), DATASET)
        for name, part in parts.items():
            write_data(part, tmp_path / attempt, name)
        labels = {n: p["y"].to_numpy() for n, p in parts.items()}  # type: ignore[index]
        write_manifest(
            tmp_path / attempt / "manifest.json", manifest(keys, labels, "classification")
        )
    for name in ("train.parquet", "val.parquet", "test.parquet", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert read_data(tmp_path / "a", "train").equals(parts["train"])  # type: ignore[union-attr]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_fast_manifest_writer_matches_write_json_byte_for_byte(
    tmp_path: Path, task: str
) -> None:
    keys = {
        "train": np.array(["0", 'a "quoted", key', "5"], dtype=object),
        "val": np.array([], dtype=object),
        "test": np.array(["@keys:test@"], dtype=object),
    }
    labels = {"train": np.array(["b", "a", "b"]), "val": np.array([]), "test": np.array(["a"])}
    entries = manifest(keys, labels, task)
    write_json(tmp_path / "slow.json", entries)
    write_manifest(tmp_path / "fast.json", entries)
    assert (tmp_path / "fast.json").read_bytes() == (tmp_path / "slow.json").read_bytes()
    assert json.loads((tmp_path / "fast.json").read_text())["train"]["keys"][1] == 'a "quoted", key'


def test_a_bad_key_stops_the_step_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    params = parse_params({"split": {"key": "id"}, "dataset": {"label": "y"}})
    write_data(_frame(50), params.paths.clean, "data")
    params.paths.split.mkdir(parents=True)
    (params.paths.split / "manifest.json").write_text("the last good split")
    with pytest.raises(UserError, match="column 'id' is missing"):
        run(params)
    assert (params.paths.split / "manifest.json").read_text() == "the last good split"
