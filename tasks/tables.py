"""Reading a table file as it really comes: CSV dialects, byte-order marks, missing markers.

`read_table` reads a CSV or Parquet file with a label column. For a CSV, what
`ingest.csv` leaves at `auto` is sniffed from the file's first 64 KiB: the encoding from
its byte-order mark (else UTF-8 when the bytes decode, else cp1252) and the delimiter by
the csv module's `Sniffer`; pandas then parses the file with the C engine. The cells of
`ingest.csv.na_values` are missing, and text cells and column names lose their leading
and trailing spaces. What was used comes back as a `TableFormat`, for the log line and
the validation report.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import CsvParams
from tasks.runtime import UserError

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
# longest first: UTF-32's little-endian mark begins with UTF-16's
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class TableFormat:
    """How a table file was read: for a CSV its dialect, and which parts were sniffed."""

    kind: str  # csv | parquet
    delimiter: str | None = None
    encoding: str | None = None
    bom: bool = False
    header: str | None = None
    sniffed: list[str] = field(default_factory=list)
    rows: int = 0
    columns: int = 0
    missing_cells: int = 0

    def describe(self) -> str:
        """One line: what was detected and what it gave."""
        shape = f"{self.rows} rows x {self.columns} columns, {self.missing_cells} missing cells"
        if self.kind != "csv":
            return f"{self.kind}, {shape}"
        how = {k: " (sniffed)" if k in self.sniffed else "" for k in ("delimiter", "encoding")}
        bom = " with a byte-order mark" if self.bom else ""
        return (
            f"csv, delimiter {self.delimiter!r}{how['delimiter']}, encoding "
            f"{self.encoding}{bom}{how['encoding']}, header {self.header}, {shape}"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _encoding(head: bytes) -> tuple[str, bool]:
    """(codec, whether a byte-order mark says so): the mark's, else utf-8 if the bytes
    decode as UTF-8 (a character cut at the sample's end is fine), else cp1252."""
    for mark, codec in BOMS:
        if head.startswith(mark):
            return codec, True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252", False
    return "utf-8", False


def _sample_text(head: bytes, encoding: str) -> str:
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    lines = text.splitlines()
    return "\n".join(lines[:-1] if len(lines) > 1 else lines)  # the last line may be cut


def _delimiter(sample: str) -> str:
    """The csv module's guess among , ; tab |; a comma when it cannot tell (one column)."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def sniff_csv(path: Path, options: CsvParams) -> TableFormat:
    """The encoding and delimiter to read path with: the options', or sniffed when `auto`."""
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    encoding, bom = _encoding(head)
    sniffed = []
    if options.encoding != "auto":
        encoding, bom = options.encoding, False
    else:
        sniffed.append("encoding")
    delimiter = options.delimiter
    if delimiter == "auto":
        delimiter = _delimiter(_sample_text(head, encoding))
        sniffed.append("delimiter")
    return TableFormat("csv", delimiter, encoding, bom, options.header, sniffed)


def looks_headerless(path: Path, found: TableFormat) -> bool:
    """Whether the csv module thinks the first row is data rather than column names."""
    with path.open("rb") as handle:
        sample = _sample_text(handle.read(SAMPLE_BYTES), found.encoding or "utf-8")
    try:
        return not csv.Sniffer().has_header(sample)
    except csv.Error:
        return False


def _strip_text(frame: pd.DataFrame, na_values: list[str]) -> pd.DataFrame:
    """Text cells without their outer spaces; a cell that is then a missing marker is missing."""
    markers = set(na_values) | {""}
    stripped = {}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_string_dtype(series) and not pd.api.types.is_bool_dtype(series):
            text = series.str.strip()
            stripped[column] = text.mask(text.isin(markers))
    frame = frame.assign(**stripped) if stripped else frame
    return frame.rename(columns=lambda name: str(name).strip())


def read_csv(path: Path, options: CsvParams) -> tuple[pd.DataFrame, TableFormat]:
    """Read a CSV file the way `ingest.csv` says (sniffing what is `auto`)."""
    found = sniff_csv(path, options)
    try:
        frame = pd.read_csv(
            path,
            sep=found.delimiter,
            encoding=found.encoding,
            header=0 if options.header == "first_row" else None,
            na_values=options.na_values,
            keep_default_na=False,
            skipinitialspace=options.strip_whitespace,
            low_memory=False,  # one type per column, not one per chunk of rows
        )
    except UnicodeDecodeError as error:
        raise UserError(
            f"{path}: not {found.encoding} text ({error.reason} at byte {error.start}); "
            "set ingest.csv.encoding (e.g. cp1252, latin-1)"
        ) from None
    if options.columns is not None:
        frame = _named(frame, options.columns, path, found)
    if options.strip_whitespace:
        frame = _strip_text(frame, options.na_values)
    return frame, found


def _named(frame: pd.DataFrame, names: list[str], path: Path, found: TableFormat) -> pd.DataFrame:
    if len(names) != frame.shape[1]:
        raise UserError(
            f"{path}: ingest.csv.columns names {len(names)} columns, the file has "
            f"{frame.shape[1]} (delimiter {found.delimiter!r})"
        )
    return frame.set_axis(names, axis=1)


def _read(path: Path, options: CsvParams) -> tuple[pd.DataFrame, TableFormat]:
    if path.suffix == ".parquet":
        return pd.read_parquet(path), TableFormat("parquet")
    return read_csv(path, options)


def _shown(columns: list[str], limit: int = 8) -> str:
    more = f" ... ({len(columns)} in all)" if len(columns) > limit else ""
    return f"{columns[:limit]}{more}"


def _no_label(path: Path, label: str, frame: pd.DataFrame, found: TableFormat) -> UserError:
    """The missing label, with what the file was read as and what to change."""
    columns = [str(c) for c in frame.columns]
    hint = ""
    if found.kind == "csv":
        hint = f"; read as {found.describe().split(', header')[0]} into columns {_shown(columns)}"
        if len(columns) == 1:
            hint += "; one column: is ingest.csv.delimiter right?"
        elif found.header == "first_row" and looks_headerless(path, found):
            hint += "; the first row looks like data: set ingest.csv.header: none and columns"
    else:
        hint = f"; the file has columns {_shown(columns)}"
    return UserError(f"{path}: label column {label!r} missing (dataset.label){hint}")


def read_table(
    path: Path, label: str, drop_columns: list[str] | None = None, options: CsvParams | None = None
) -> tuple[pd.DataFrame, TableFormat]:
    """Read a CSV or Parquet file that has a label column; leave out `drop_columns`."""
    try:
        frame, found = _read(path, options or CsvParams())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, OSError, ValueError) as error:
        message = str(error).replace("\n", " ")
        raise UserError(f"{path}: cannot be read as a table ({message})") from None
    if frame.empty:
        raise UserError(f"{path}: file has no rows")
    if label not in frame.columns:
        raise _no_label(path, label, frame, found)
    unknown = [c for c in drop_columns or [] if c not in frame.columns]
    if unknown:
        raise UserError(f"{path}: ingest.drop_columns names column(s) not in the file: {unknown}")
    if label in (drop_columns or []):
        raise UserError(f"{path}: ingest.drop_columns must not drop the label column {label!r}")
    frame = frame.drop(columns=drop_columns or [])
    missing = int(frame.isna().sum().sum())
    return frame, replace(found, rows=len(frame), columns=frame.shape[1], missing_cells=missing)
