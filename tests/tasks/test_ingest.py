from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import CsvParams, DatasetParams, IngestParams
from tasks.datafiles import Arrays
from tasks.ingest import load_idx, load_npz, load_sklearn, load_source, load_table
from tasks.runtime import UserError
from tasks.tables import read_table

LABEL = DatasetParams(label="label")


def test_digits_are_8x8_images() -> None:
    data = load_sklearn("digits", "label")
    assert isinstance(data, Arrays)
    assert data.x.shape == (1797, 8, 8, 1) and set(np.unique(data.y)) == set(range(10))


def test_bundled_tables_get_the_label_column() -> None:
    frame = load_sklearn("wine", "quality")
    assert isinstance(frame, pd.DataFrame) and "quality" in frame and len(frame) == 178


def test_unknown_bundled_set() -> None:
    with pytest.raises(UserError, match="ingest.name: unknown scikit-learn dataset 'mnist'"):
        load_sklearn("mnist", "label")


def test_csv_with_label_and_max_rows(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "label": [0, 1, 0]}).to_csv(path)
    data = load_source(IngestParams(source="csv", path=path, max_rows=2), LABEL)
    assert isinstance(data, pd.DataFrame) and len(data) == 2 and "b" in data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("a,b\n", "file has no rows"),
        ("a,b\n1,2\n", "label column 'label' missing"),
    ],
)
def test_bad_tables_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as error:
        load_table(path, "label")
    assert str(path) in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        load_table(tmp_path / "nope.csv", "label")


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _write_mnist(folder: Path, n: int = 6) -> None:
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))


def test_idx_reads_train_and_test(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    data = load_idx(tmp_path)
    assert data.x.shape == (12, 28, 28, 1) and data.y.shape == (12,)


def test_truncated_gzip_is_named(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    target = tmp_path / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:40])
    with pytest.raises(UserError, match="not a complete gzip file") as error:
        load_idx(tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(error.value)


def test_npz_shapes_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((4, 5, 3)), y=np.arange(4))
    assert load_npz(good).x.shape == (4, 5, 3)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 5)), y=np.arange(4))
    with pytest.raises(UserError, match=r"got x \(4, 5\)"):
        load_npz(bad)
    np.savez(bad, images=np.zeros((4, 5, 3)))
    with pytest.raises(UserError, match=r"needs arrays .x. and .y., holds \[.images.\]"):
        load_npz(bad)


def test_drop_columns_leaves_out_ids_and_names_unknown_ones(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    pd.DataFrame({"id": [1, 2], "name": ["a", "b"], "x": [1.0, 2.0], "label": [0, 1]}).to_csv(
        path, index=False
    )
    data = load_source(IngestParams(source="csv", path=path, drop_columns=["id", "name"]), LABEL)
    assert isinstance(data, pd.DataFrame) and list(data.columns) == ["x", "label"]
    with pytest.raises(UserError, match=r"people.csv: ingest.drop_columns .*\['nope'\]"):
        load_source(IngestParams(source="csv", path=path, drop_columns=["nope"]), LABEL)
    with pytest.raises(UserError, match="must not drop the label column"):
        load_source(IngestParams(source="csv", path=path, drop_columns=["label"]), LABEL)


def test_the_source_file_is_never_modified(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("id,x,label\n1,1.0,0\n1,1.0,0\n2,,1\n")
    before = path.read_bytes()
    load_source(IngestParams(source="csv", path=path, drop_columns=["id"]), LABEL)
    assert path.read_bytes() == before


# --- CSV files as they really come (issue 16, 1-3) ------------------------------------------


def _people(rows: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [float(20 + i) for i in range(rows)],
            "town": ["a", "b", "c"] * (rows // 3),
            "label": ["yes", "no"] * (rows // 2),
        }
    )


def test_a_semicolon_file_with_a_byte_order_mark_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    _people().to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    frame, found = read_table(path, "label")
    assert list(frame.columns) == ["age", "town", "label"] and len(frame) == 6
    assert (found.delimiter, found.encoding, found.bom) == (";", "utf-8-sig", True)
    line = found.describe()
    assert "delimiter ';' (sniffed)" in line and "byte-order mark" in line and "\n" not in line


@pytest.mark.parametrize(
    ("encoding", "delimiter"), [("utf-16", "\t"), ("cp1252", "|"), ("utf-8", ",")]
)
def test_encodings_and_delimiters_are_sniffed(
    tmp_path: Path, encoding: str, delimiter: str
) -> None:
    path = tmp_path / "people.csv"
    _people().assign(town=["café", "naïve", "x"] * 2).to_csv(
        path, sep=delimiter, index=False, encoding=encoding
    )
    frame, found = read_table(path, "label")
    assert found.delimiter == delimiter and frame["town"].iloc[0] == "café"


def test_missing_markers_and_padding_are_read_as_missing_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("age, town ,label\n20, ?, yes\n?,a , no\n22,NA,yes \n ,b,no\n24,? , yes\n")
    frame, found = read_table(path, "label")
    assert list(frame.columns) == ["age", "town", "label"]
    assert frame["age"].dtype == "float64" and frame["age"].isna().tolist() == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert frame["town"].isna().tolist() == [True, False, True, False, True]
    assert sorted(frame["label"].unique()) == ["no", "yes"], "no ' yes' label"
    assert found.missing_cells == 5
    kept, _ = read_table(path, "label", options=CsvParams(strip_whitespace=False, na_values=[]))
    assert " yes" in set(kept["label"])


def test_a_headerless_file_is_named_by_the_params(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    _people(30).to_csv(path, index=False, header=False)
    with pytest.raises(UserError) as error:
        read_table(path, "label")
    message = str(error.value)
    assert "label column 'label' missing" in message and "ingest.csv.header: none" in message
    options = CsvParams(header="none", columns=["age", "town", "label"])
    frame, found = read_table(path, "label", options=options)
    assert len(frame) == 30 and found.header == "none"
    with pytest.raises(UserError, match="ingest.csv.columns names 2 columns, the file has 3"):
        read_table(path, "label", options=CsvParams(header="none", columns=["a", "label"]))


def test_a_wrong_delimiter_is_named_when_the_label_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    _people().to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    with pytest.raises(UserError) as error:
        read_table(path, "label", options=CsvParams(delimiter=","))
    message = str(error.value)
    assert "delimiter ','" in message and "['age;town;label']" in message
    assert "is ingest.csv.delimiter right?" in message and "\n" not in message


def test_text_that_is_not_the_sniffed_encoding_is_named(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b"a,label\n" + b"1,x\n" * 40000 + "2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not utf-8 text .* set ingest.csv.encoding"):
        read_table(path, "label")
    frame, _ = read_table(path, "label", options=CsvParams(encoding="latin-1"))
    assert frame["label"].iloc[-1] == "café"
