"""The files steps hand to each other: written in the background, and a table written by
this process handed to the next step's read exactly as its file would give it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks import datafiles
from tasks.datafiles import read_data, replace_dir, write_data, writing


def _table() -> pd.DataFrame:
    """Every kind of column the steps hand on, with missing values and a shuffled index."""
    frame = pd.DataFrame(
        {
            "x": [1.5, np.nan, -0.0, 3.25, 1e300],
            "n": np.arange(5, dtype="int64"),
            "small": np.arange(5, dtype="int8"),
            "flag": [True, False, True, True, False],
            "city": ["a", None, "b", "a", " c"],
            "label": ["yes", "no", "yes", "no", "yes"],
        },
        index=[4, 2, 0, 3, 1],
    )
    return frame


@pytest.fixture(autouse=True)
def _nothing_handed() -> None:
    datafiles.forget_handed()


def test_a_table_written_is_read_back_as_its_file_gives_it_without_parsing_it(
    tmp_path: Path,
) -> None:
    frame = _table()
    with replace_dir(tmp_path / "raw") as staging:  # renamed into place after the write
        write_data(frame, staging, "data")
    path = tmp_path / "raw" / "data.parquet"
    assert len(datafiles._HANDED) == 1
    handed = read_data(tmp_path / "raw", "data")
    assert not datafiles._HANDED  # taken by its first read
    pd.testing.assert_frame_equal(handed, pd.read_parquet(path), check_exact=True)
    again = read_data(tmp_path / "raw", "data")  # parsed from the file this time
    pd.testing.assert_frame_equal(again, handed, check_exact=True)


def test_a_read_may_leave_a_handed_table_for_the_next(tmp_path: Path) -> None:
    write_data(_table(), tmp_path, "data")
    first = read_data(tmp_path, "data", leave_handed=True)  # as the retrain decision reads
    assert isinstance(first, pd.DataFrame) and len(datafiles._HANDED) == 1
    first["x"] = 0.0  # the reader's changes stay its own
    second = read_data(tmp_path, "data")  # as split reads
    assert not datafiles._HANDED
    pd.testing.assert_frame_equal(second, pd.read_parquet(tmp_path / "data.parquet"))


def test_a_handed_table_and_the_writers_frame_change_apart(tmp_path: Path) -> None:
    frame = _table()
    write_data(frame, tmp_path, "data")
    handed = read_data(tmp_path, "data")
    assert isinstance(handed, pd.DataFrame)
    handed.loc[0, "x"] = 99.0
    handed["city"] = "z"
    frame.loc[4, "n"] = -1
    pd.testing.assert_frame_equal(frame, _table().assign(n=[-1, 1, 2, 3, 4]))
    assert handed.loc[2, "n"] == 2 and handed.loc[0, "x"] == 99.0
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "data.parquet"), _table().reset_index(drop=True)
    )


def test_a_file_rewritten_after_the_write_is_read_from_the_file(tmp_path: Path) -> None:
    write_data(_table(), tmp_path, "data")
    other = _table().assign(x=7.0)
    other.to_parquet(tmp_path / "data.parquet", index=False)  # another writer, same path
    pd.testing.assert_frame_equal(read_data(tmp_path, "data"), other.reset_index(drop=True))


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["a", "b", None, "c", "d"], dtype=object),  # Parquet reads it as str
        pd.Series(["a", "b", "a", "c", "b"], dtype="category"),
        pd.Series([1, None, 3, 4, 5], dtype="Int64"),
        pd.Series(["a", None, "b", "c", "d"], dtype="string"),  # pd.NA, not NaN
        pd.to_datetime(["2026-01-01"] * 5),
    ],
    ids=["object-text", "category", "nullable-int", "string-na", "datetime"],
)
def test_a_table_that_might_read_back_otherwise_is_always_read_from_its_file(
    tmp_path: Path, column: pd.Series
) -> None:
    frame = _table().reset_index(drop=True)
    frame["other"] = column
    assert frame["other"].dtype == column.dtype
    write_data(frame, tmp_path, "data")
    assert not datafiles._HANDED
    pd.testing.assert_frame_equal(
        read_data(tmp_path, "data"), pd.read_parquet(tmp_path / "data.parquet")
    )


def test_writing_finishes_before_the_block_ends_and_the_blocks_error_wins(
    tmp_path: Path,
) -> None:
    parts = {"train": _table(), "test": _table().iloc[:2]}
    with writing(tmp_path / "a", parts):
        pass
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "test.parquet",
        "train.parquet",
    ]
    bad = {"data": pd.DataFrame({"mixed": pd.Series([1, "a"], dtype=object)})}
    with pytest.raises(RuntimeError, match="the check failed"), writing(tmp_path / "b", bad):
        raise RuntimeError("the check failed")
    with pytest.raises(Exception, match="int"), writing(tmp_path / "c", bad):
        pass  # the block succeeded: the write's own error is raised
