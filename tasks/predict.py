"""predict: score a CSV, Parquet or NPZ file with the registered model, after validating it.

    python -m tasks.predict --input new.csv --output scored.csv [--version 3]

Reads the input file and `models:/<register.model_name>@champion` (or the given version);
writes the output file (`.csv` or `.parquet`): the row id (`predict.id_column`, else `row`,
the row number), the predicted label and one `proba_<class>` column per class. The input is
checked first against the model's training schema (its `inputs` metadata) with the
pipeline's own Great Expectations suite (`tasks.suites`, run by `tasks.checks`); the label
may be absent. A file that fails gets one clear error and nothing is written.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import Params, load_params
from tasks.datafiles import Arrays, Data, replace_file
from tasks.registry import model_uri
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)

INPUTS = (".csv", ".parquet", ".npz")
OUTPUTS = (".csv", ".parquet")


@dataclass(frozen=True)
class Schema:
    """What the model takes: table columns, or the shape of one array sample."""

    columns: list[str] | None
    sample_shape: tuple[int, ...] | None


def read_input(path: Path, id_column: str | None) -> tuple[Data, np.ndarray]:
    """The rows to score and their ids (the id column/array, else row numbers)."""
    if path.suffix not in INPUTS:
        raise UserError(f"{path}: expected one of {INPUTS}, got {path.suffix or 'no suffix'!r}")
    try:
        rows, fields = _read(path)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as error:
        raise UserError(f"{path}: cannot be read ({error})".replace("\n", " ")) from None
    if id_column is None:
        return rows, np.arange(len(rows))
    if id_column not in fields:
        raise UserError(f"{path}: id column {id_column!r} missing (predict.id_column)")
    if isinstance(rows, pd.DataFrame):
        rows = rows.drop(columns=id_column)
    return rows, np.asarray(fields[id_column])


def _read(path: Path) -> tuple[Data, Any]:
    """The rows, and where their id column would be (the table, or the npz's arrays)."""
    if path.suffix in (".csv", ".parquet"):
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        return frame, frame
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    x = arrays["x"]  # the label `y` is optional; nothing here reads it
    return Arrays(x, arrays.get("y", np.zeros(len(x)))), arrays


def training_schema(model: Any) -> Schema:
    """The input schema recorded at training time: the model's `inputs` metadata, or (models
    logged before the bundle took natural inputs) its signature."""
    described = (model.metadata.metadata or {}).get("inputs")
    if described is not None:
        shape = described.get("sample_shape")
        return Schema(described.get("columns"), None if shape is None else tuple(shape))
    schema = model.metadata.get_input_schema()
    if schema.is_tensor_spec():
        return Schema(None, tuple(schema.inputs[0].shape[1:]))
    return Schema(schema.input_names(), None)


# expectations about a training set as a whole, not about the rows to score
TRAINING_ONLY = (
    "expect_table_row_count_to_be_between",
    "expect_at_least_two_classes",
    "expect_rows_per_class_at_least",
)


def serving_expectations(expectations: list[Any], label: str) -> list[Any]:
    """The training suite minus what concerns the label or the training set's size."""
    kept = []
    for expectation in expectations:
        kwargs = expectation["kwargs"]
        if expectation["type"] in TRAINING_ONLY or kwargs.get("column") == label:
            continue
        if "column_set" in kwargs:  # every training feature present; extra columns are ignored
            columns = [c for c in kwargs["column_set"] if c != label]
            loose = {**kwargs, "column_set": columns, "exact_match": False}
            kept.append({**expectation, "kwargs": loose})
        else:
            kept.append(expectation)
    return kept


def check_input(data: Data, schema: Schema, params: Params, source: Path) -> None:
    """The pipeline's suite (saved + params.yaml rules) minus what concerns the label."""
    from tasks.checks import check_data, raise_on_failure
    from tasks.suites import full_suite, load_suite, suite_path

    label = params.dataset.label
    _check_shape(data, schema, source)
    if isinstance(data, pd.DataFrame):
        data = data.drop(columns=label, errors="ignore")
    path = suite_path(params)
    saved = load_suite(path) if path.is_file() else None
    rules = params.validate_.model_copy(update={"columns": schema.columns})
    suite = serving_expectations(full_suite(data, rules, params.dataset, saved), label)
    raise_on_failure(source, check_data(data, suite, label))


def _check_shape(data: Data, schema: Schema, source: Path) -> None:
    if schema.sample_shape is None:
        if isinstance(data, Arrays):
            raise UserError(f"{source}: the model takes a table (columns {schema.columns})")
        return
    if not isinstance(data, Arrays):
        raise UserError(f"{source}: the model takes arrays of shape {schema.sample_shape} (npz)")
    if tuple(data.x.shape[1:]) != schema.sample_shape:
        raise UserError(
            f"{source}: samples have shape {tuple(data.x.shape[1:])}, "
            f"the model takes {schema.sample_shape}"
        )


def score_rows(model: Any, data: Data, ids: np.ndarray, id_name: str) -> pd.DataFrame:
    """The model's predictions beside the row ids."""
    rows = data.x if isinstance(data, Arrays) else data
    predictions = model.predict(rows)
    predictions.insert(0, id_name, ids)
    return predictions


def write_output(predictions: pd.DataFrame, path: Path) -> None:
    with replace_file(path) as staging:
        if path.suffix == ".parquet":
            predictions.to_parquet(staging, index=False)
        else:
            predictions.to_csv(staging, index=False)


def load_model(params: Params, version: int | None) -> Any:
    """The registered model, `@champion` unless a version is named."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tasks.tracking import start_tracking

    start_tracking(params)
    uri = model_uri(params.register_.model_name, version)
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as error:
        raise UserError(f"cannot load {uri}: {error.message}") from None


def run(params: Params, source: Path, target: Path, version: int | None = None) -> pd.DataFrame:
    """Validate `source`, score it with the registered model, write `target`."""
    if target.suffix not in OUTPUTS:
        raise UserError(f"{target}: the output must end in one of {OUTPUTS}")
    data, ids = read_input(source, params.predict.id_column)
    model = load_model(params, version)
    check_input(data, training_schema(model), params, source)
    predictions = score_rows(model, data, ids, params.predict.id_column or "row")
    write_output(predictions, target)
    log.info("predict: %d rows from %s scored into %s", len(predictions), source, target)
    return predictions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Score a CSV, Parquet or NPZ file.")
    parser.add_argument("--input", type=Path, required=True, help=".csv, .parquet or .npz")
    parser.add_argument("--output", type=Path, required=True, help=".csv or .parquet")
    parser.add_argument("--version", type=int, help="a registered version (default @champion)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(load_params(), args.input, args.output, args.version)


if __name__ == "__main__":
    run_entry("tasks.predict")
