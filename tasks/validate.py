"""validate: check `paths.raw` against the source's expectation suite; the gate before training.

The suite has two parts. The inferred part (column set, column kinds, numeric ranges, null
fractions, label set; for arrays the sample shape and value range) lives in a reviewable JSON
file, `paths.expectations/<suite>.json`, written from the data by the first run that finds
none (or by `python -m tasks.validate --infer`) and checked by every later run, so a schema
change in new data is caught. The user part comes from params.yaml's `validate:` (minimum
rows, rows per class, labels, value range, null fraction); a person may also add entries to
the suite file.

Writes `reports/validation/raw.json` (every expectation and its result) and `raw.html` (the
same, for a person). When the data fails, the stage exits non-zero with one line per failing
expectation, writes `raw-failed.json`/`raw-failed.html` instead, and nothing downstream runs.
`clean` runs the same expectations again on the cleaned data (`clean.json`/`clean.html`).
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import DatasetParams, Params, ValidateParams, load_params
from tasks.datafiles import Arrays, Data, read_data, replace_file, write_json
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)

Expectation = dict[str, Any]  # {"type": ..., "kwargs": {...}, "meta": {"origin": ...}}


class ValidationFailed(UserError):
    """The data broke one or more expectations."""


@dataclass(frozen=True)
class Check:
    expectation: str
    column: str | None
    success: bool
    expected: dict[str, Any]
    found: Any
    failing_rows: int | None

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        rows = f", {self.failing_rows} rows" if self.failing_rows else ""
        return f"{where}: {self.expectation} {self.expected} failed (found {self.found}{rows})"


def _expect(name: str, origin: str, **kwargs: Any) -> Expectation:
    return {"type": name, "kwargs": kwargs, "meta": {"origin": origin}}


def summarize_arrays(data: Arrays, label: str) -> pd.DataFrame:
    """One row per sample: its label and the min, max and finiteness of its values."""
    flat = data.x.reshape(len(data), -1)
    if flat.dtype.kind == "f":
        finite = np.isfinite(flat).all(axis=1)
    else:
        finite = np.ones(len(flat), dtype=bool)
    empty = flat.size == 0  # no samples, or samples without values
    with np.errstate(invalid="ignore"):
        low = np.zeros(len(flat)) if empty else flat.min(axis=1)
        high = np.zeros(len(flat)) if empty else flat.max(axis=1)
    return pd.DataFrame(
        {
            label: data.y,
            "x_min": np.where(finite, low.astype("float64"), np.nan),
            "x_max": np.where(finite, high.astype("float64"), np.nan),
        }
    )


def column_kind(series: pd.Series) -> str:
    """number | bool | datetime | text: what a column holds, independent of pandas' dtype names."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "text"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _infer_column(frame: pd.DataFrame, column: str, dataset: DatasetParams) -> list[Expectation]:
    series = frame[column]
    if series.isna().all():
        raise UserError(
            f"column {column!r} is entirely empty; leave it out (ingest.drop_columns) "
            "before a suite can be inferred"
        )
    kind = column_kind(series)
    result = [_expect("expect_column_kind_to_be", "inferred", column=column, kind=kind)]
    present = float(series.notna().mean())
    if column != dataset.label:
        mostly = math.floor(present * 100) / 100
        result.append(
            _expect("expect_column_values_to_not_be_null", "inferred", column=column, mostly=mostly)
        )
    if kind == "number":
        values = series.dropna()
        if not np.isfinite(values.to_numpy(dtype="float64")).all():
            raise UserError(f"column {column!r} holds infinite values; fix the source data")
        result.append(
            _expect(
                "expect_column_values_to_be_between",
                "inferred",
                column=column,
                min_value=_plain(values.min()),
                max_value=_plain(values.max()),
            )
        )
    return result


def infer_suite(data: Data, dataset: DatasetParams) -> list[Expectation]:
    """Expectations read off the data: schema, kinds, ranges, null fractions, label set."""
    if isinstance(data, Arrays):
        frame = summarize_arrays(data, dataset.label)
        if frame[["x_min", "x_max"]].isna().any().any():
            raise UserError("the arrays hold NaN or infinite values; fix the source data")
        suite = [
            _expect("expect_sample_shape_to_be", "inferred", shape=list(data.x.shape[1:])),
            _expect(
                "expect_column_values_to_be_between",
                "inferred",
                column="x_min",
                min_value=_plain(frame["x_min"].min()),
            ),
            _expect(
                "expect_column_values_to_be_between",
                "inferred",
                column="x_max",
                max_value=_plain(frame["x_max"].max()),
            ),
        ]
    else:
        frame = data
        suite = [
            _expect(
                "expect_table_columns_to_match_set",
                "inferred",
                column_set=list(frame.columns),
                exact_match=True,
            )
        ]
        for column in frame.columns:
            suite += _infer_column(frame, column, dataset)
    if dataset.task == "classification" and dataset.label in frame.columns:
        labels = sorted(_plain(v) for v in frame[dataset.label].dropna().unique())
        suite.append(
            _expect(
                "expect_column_values_to_be_in_set",
                "inferred",
                column=dataset.label,
                value_set=labels,
            )
        )
    return suite


def user_expectations(
    rules: ValidateParams, dataset: DatasetParams, columns: list[str], value_columns: list[str]
) -> list[Expectation]:
    """The expectations written in params.yaml's `validate:` section."""
    wanted = rules.columns or columns
    suite = [_expect("expect_table_row_count_to_be_between", "params", min_value=rules.min_rows)]
    suite += [  # the data's own columns need no existence check: only the ones asked for
        _expect("expect_column_to_exist", "params", column=c)
        for c in dict.fromkeys([*(rules.columns or []), dataset.label])
    ]
    suite += [
        _expect(
            "expect_column_values_to_not_be_null",
            "params",
            column=c,
            mostly=1 - rules.max_null_fraction,
        )
        for c in wanted
        if c in columns and c != dataset.label
    ]
    suite.append(_expect("expect_column_values_to_not_be_null", "params", column=dataset.label))
    if rules.labels is not None:
        suite.append(
            _expect(
                "expect_column_values_to_be_in_set",
                "params",
                column=dataset.label,
                value_set=rules.labels,
            )
        )
    if rules.value_range is not None:
        low, high = rules.value_range
        suite += [
            _expect(
                "expect_column_values_to_be_between",
                "params",
                column=c,
                min_value=low,
                max_value=high,
            )
            for c in value_columns
        ]
    if dataset.task == "classification":
        suite.append(_expect("expect_at_least_two_classes", "params", column=dataset.label))
        suite.append(
            _expect(
                "expect_rows_per_class_at_least",
                "params",
                column=dataset.label,
                min_value=rules.min_rows_per_class,
            )
        )
    return suite


def _kind_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    column, kind = kwargs["column"], kwargs["kind"]
    if column not in frame.columns:
        return Check("expect_column_kind_to_be", column, False, {"kind": kind}, "missing", None)
    found = column_kind(frame[column])
    bad = None
    if found != kind and kind == "number":
        values = frame[column].dropna()
        bad = int(pd.to_numeric(values, errors="coerce").isna().sum()) or None
    return Check("expect_column_kind_to_be", column, found == kind, {"kind": kind}, found, bad)


def _shape_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    found = list(arrays.x.shape[1:]) if arrays is not None else "a table"
    ok = found == list(kwargs["shape"])
    rows = len(frame) if not ok else None
    return Check("expect_sample_shape_to_be", None, ok, dict(kwargs), found, rows)


def _classes_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    column = kwargs["column"]
    counts = frame[column].dropna().value_counts() if column in frame else pd.Series()
    return Check(
        "expect_at_least_two_classes",
        column,
        len(counts) >= 2,
        {"min_classes": 2},
        len(counts),
        None,
    )


def _per_class_check(frame: pd.DataFrame, arrays: Arrays | None, kwargs: dict[str, Any]) -> Check:
    column, minimum = kwargs["column"], kwargs["min_value"]
    counts = frame[column].dropna().value_counts() if column in frame else pd.Series()
    smallest = int(counts.min()) if len(counts) else 0
    small = counts[counts < minimum]
    return Check(
        "expect_rows_per_class_at_least",
        column,
        smallest >= minimum,
        {"min_value": minimum},
        {str(k): int(v) for k, v in (small if len(small) else counts).items()},
        int(small.sum()) or None,
    )


LOCAL_CHECKS: dict[str, Callable[[pd.DataFrame, Arrays | None, dict[str, Any]], Check]] = {
    "expect_column_kind_to_be": _kind_check,
    "expect_sample_shape_to_be": _shape_check,
    "expect_at_least_two_classes": _classes_check,
    "expect_rows_per_class_at_least": _per_class_check,
}


def _found(result: dict[str, Any]) -> Any:
    if "observed_value" in result:
        return result["observed_value"]
    if result.get("partial_unexpected_list"):
        return f"e.g. {result['partial_unexpected_list'][:5]}"
    if result.get("unexpected_percent") is not None:
        return f"{result['unexpected_percent']:.1f}% unexpected"
    return "missing"


def _key(config: Any) -> str:
    """A GX expectation configuration's identity: its type and arguments."""
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)


def _domain(configuration: Any, expectation: Expectation) -> Any:
    """A GX expectation object; a misspelt type or argument is the user's error, in one line."""
    kwargs = {k: v for k, v in expectation["kwargs"].items() if k != "batch_id"}
    try:
        return configuration(type=expectation["type"], kwargs=kwargs).to_domain_obj()
    except Exception as error:  # GX raises its own errors and pydantic v1 ones
        first = str(error).replace("\n", " ")[:200]
        raise UserError(
            f"expectation {expectation['type']} {kwargs} is not valid: {first}"
        ) from None


def _skip_fingerprints() -> None:
    """Stop GX fingerprinting every pandas batch it loads.

    GX hashes every cell of a batch (twice per validation run) only to label the batch's
    metadata, which this module never reads; on a million rows that took longer than all
    the expectations together. Its own size threshold, set to zero, skips the hash.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0


def _by_batch(frame: pd.DataFrame, domain: list[Any]) -> dict[str | None, list[Any]]:
    """GX expectations grouped by the data they need: one column's frame, or the table (None).

    GX filters a column expectation's whole batch on that column's nulls before it looks
    at the column, copying every column of a wide table each time; given the column alone
    it copies one. Expectations on the table, on several columns or with a row condition
    (which may name other columns) keep the whole table.
    """
    from great_expectations.core.metric_domain_types import MetricDomainTypes

    groups: dict[str | None, list[Any]] = {}
    for expectation in domain:
        column = getattr(expectation, "column", None)
        alone = (
            type(expectation).domain_type == MetricDomainTypes.COLUMN
            and not getattr(expectation, "row_condition", None)
            and isinstance(column, str)
            and column in frame.columns
        )
        groups.setdefault(column if alone else None, []).append(expectation)
    return groups


def _gx_order(domain: list[Any]) -> dict[str, int]:
    """Each expectation's place in the results of one GX run over the whole table.

    GX groups a suite's expectations by their `column` argument, in order of first
    appearance (those without one form a group too); reports keep that order.
    """
    groups: dict[str | None, list[str]] = {}
    for expectation in domain:
        column = expectation.configuration.kwargs.get("column")
        groups.setdefault(column if isinstance(column, str) else None, []).append(
            _key(expectation.configuration)
        )
    return {key: place for place, key in enumerate(k for keys in groups.values() for k in keys)}


def _unresolved(result: Any) -> bool:
    """Whether GX could not compute the result's metrics; it reports those first."""
    return "raised_exception" not in result.exception_info  # keyed by metric instead


def _run_gx(frame: pd.DataFrame, expectations: list[Expectation]) -> list[Check]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    # GX pins this module's logger to INFO at import ("Created temporary directory ...")
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    if not expectations:
        return []
    _skip_fingerprints()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("pipeline").add_dataframe_asset("data")
    definition = asset.add_batch_definition_whole_dataframe("all")

    def validate(name: str, chosen: list[Expectation], result_format: str) -> list[Any]:
        domain = [_domain(ExpectationConfiguration, e) for e in chosen]
        results: list[Any] = []
        for number, (column, group) in enumerate(_by_batch(frame, domain).items()):
            data = frame if column is None else frame[[column]]
            batch = definition.get_batch(batch_parameters={"dataframe": data})
            suite = context.suites.add(
                gx.ExpectationSuite(name=f"{name}-{number}", expectations=group)
            )
            results += batch.validate(suite, result_format=result_format).results  # type: ignore[call-overload]
        order = _gx_order(domain)
        return sorted(
            results, key=lambda r: (not _unresolved(r), order[_key(r.expectation_config)])
        )

    # pass/fail alone is about twice as fast; only failures are run again for their details
    # (GX does not keep the suite's order, so results are matched by their configuration)
    results = validate("data", expectations, "BOOLEAN_ONLY")
    failed = [r.expectation_config for r in results if not r.success]
    if failed:
        chosen = [{"type": c.type, "kwargs": c.kwargs} for c in failed]
        details = {_key(r.expectation_config): r for r in validate("failed", chosen, "BASIC")}
        results = [details.get(_key(r.expectation_config), r) for r in results]
    checks = []
    for result in results:
        config = result.expectation_config
        assert config is not None  # GX fills it for every result of a suite
        kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "column")}
        checks.append(
            Check(
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=bool(result.success),
                expected=kwargs,
                found=_found(result.result) if result.result else "as expected",
                failing_rows=result.result.get("unexpected_count"),
            )
        )
    return checks


def check_data(data: Data, expectations: list[Expectation], label: str) -> list[Check]:
    """Run a list of expectations (GX ones through GX, our own locally) on the data."""
    arrays = data if isinstance(data, Arrays) else None
    frame = summarize_arrays(data, label) if isinstance(data, Arrays) else data
    unknown = [e["type"] for e in expectations if not isinstance(e.get("type"), str)]
    if unknown:
        raise UserError(f"an expectation without a 'type': {unknown}")
    local = [e for e in expectations if e["type"] in LOCAL_CHECKS]
    checks = [LOCAL_CHECKS[e["type"]](frame, arrays, e["kwargs"]) for e in local]
    return checks + _run_gx(frame, [e for e in expectations if e["type"] not in LOCAL_CHECKS])


def _columns(data: Data, label: str) -> tuple[list[str], list[str]]:
    if isinstance(data, Arrays):
        return [label, "x_min", "x_max"], ["x_min", "x_max"]
    numeric = [c for c in data.select_dtypes("number").columns if c != label]
    return list(data.columns), numeric


def validate_data(
    data: Data,
    rules: ValidateParams,
    dataset: DatasetParams,
    suite: list[Expectation] | None = None,
) -> list[Check]:
    """Run the saved suite (if any) plus params.yaml's rules; one Check per expectation."""
    return check_data(data, full_suite(data, rules, dataset, suite), dataset.label)


def full_suite(
    data: Data, rules: ValidateParams, dataset: DatasetParams, suite: list[Expectation] | None
) -> list[Expectation]:
    columns, value_columns = _columns(data, dataset.label)
    return _merge_not_null(
        [*(suite or []), *user_expectations(rules, dataset, columns, value_columns)]
    )


def _merge_not_null(expectations: list[Expectation]) -> list[Expectation]:
    """One not-null expectation per column: the strictest `mostly` of the suite and params."""
    position: dict[str, int] = {}
    merged: list[Expectation] = []
    for expectation in expectations:
        kwargs = expectation["kwargs"]
        if expectation["type"] != "expect_column_values_to_not_be_null":
            merged.append(expectation)
        elif kwargs["column"] not in position:
            position[kwargs["column"]] = len(merged)
            merged.append(expectation)
        else:
            kept = merged[position[kwargs["column"]]]
            if kwargs.get("mostly", 1.0) > kept["kwargs"].get("mostly", 1.0):
                merged[position[kwargs["column"]]] = expectation  # the stricter one
    return merged


def suite_name(params: Params) -> str:
    """`validate.suite`, else the source's name: the sklearn set, or the file/folder stem."""
    if params.validate_.suite:
        return params.validate_.suite
    if params.ingest.source == "sklearn" or params.ingest.path is None:
        return params.ingest.name
    return params.ingest.path.name.split(".")[0] or "data"


def suite_path(params: Params) -> Path:
    return params.paths.expectations / f"{suite_name(params)}.json"


def load_suite(path: Path) -> list[Expectation]:
    """Read a suite file: {"name": ..., "expectations": [{"type", "kwargs", "meta"}, ...]}."""
    try:
        payload = json.loads(path.read_text())
        expectations: list[Expectation] = payload["expectations"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not a valid suite file ({error!r})") from None
    if not isinstance(expectations, list) or not all(isinstance(e, dict) for e in expectations):
        raise UserError(f"{path}: 'expectations' must be a list of objects")
    entries = [{"kwargs": {}, "meta": {}, **e} for e in expectations]
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    for entry in entries:
        if entry.get("type") not in LOCAL_CHECKS:
            try:
                _domain(ExpectationConfiguration, entry)
            except UserError as error:
                raise UserError(f"{path}: {error}") from None
    return entries


def save_suite(path: Path, name: str, expectations: list[Expectation]) -> None:
    """Write the suite with one expectation per line, so a review or a diff reads easily."""
    lines = ",\n".join(f"    {json.dumps(e, default=str)}" for e in expectations)
    text = f'{{\n  "name": {json.dumps(name)},\n  "expectations": [\n{lines}\n  ]\n}}\n'
    with replace_file(path) as staging:
        staging.write_text(text)


def _cells(check: Check) -> list[Any]:
    return [
        "pass" if check.success else "FAIL",
        check.column or "(table)",
        check.expectation,
        json.dumps(check.expected, default=str),
        str(check.found)[:300],
        "" if check.failing_rows is None else check.failing_rows,
    ]


def render_html(title: str, checks: list[Check]) -> str:
    """A small self-contained HTML page: one row per expectation, failures first."""
    failed = sum(not c.success for c in checks)
    rows = "".join(
        "<tr class='{}'>{}</tr>".format(
            "ok" if c.success else "fail",
            "".join(f"<td>{html.escape(str(cell))}</td>" for cell in _cells(c)),
        )
        for c in sorted(checks, key=lambda c: c.success)
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px}"
        "table{border-collapse:collapse}.fail{background:#fdd}.ok{background:#efe}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        f"<p>{len(checks) - failed} of {len(checks)} expectations passed, {failed} failed.</p>"
        "<table><tr><th>result</th><th>column</th><th>expectation</th><th>expected</th>"
        f"<th>found</th><th>failing rows</th></tr>{rows}</table></body></html>\n"
    )


def write_report(
    folder: Path, name: str, source: Path, expectations: list[Expectation], checks: list[Check]
) -> None:
    """Write `<name>.json` and `<name>.html` (or `<name>-failed.*` when a check failed)."""
    failed = [c for c in checks if not c.success]
    stem, stale = (f"{name}-failed", name) if failed else (name, f"{name}-failed")
    for suffix in (".json", ".html"):  # a failed run must not leave the last pass behind
        (folder / f"{stale}{suffix}").unlink(missing_ok=True)
    payload = {
        "success": not failed,
        "data": str(source),
        "expectations": expectations,
        "checks": [c.__dict__ for c in checks],
    }
    with replace_file(folder / f"{stem}.json") as staging:
        write_json(staging, payload)
    with replace_file(folder / f"{stem}.html") as staging:
        staging.write_text(render_html(f"Validation of {source}", checks))


def raise_on_failure(source: Path, checks: list[Check]) -> None:
    """Raise ValidationFailed with one line per failing expectation."""
    failed = [c for c in checks if not c.success]
    if failed:
        lines = "\n".join(f"  {source}: {c.describe()}" for c in failed)
        raise ValidationFailed(f"{len(failed)} expectation(s) failed on {source}:\n{lines}")


def report_path(params: Params, name: str = "raw") -> Path:
    return params.paths.reports / "validation" / f"{name}.json"


def run(params: Params, infer: bool = False) -> list[Check]:
    """Validate `paths.raw` against the saved suite (inferring and saving it when missing)."""
    data = read_data(params.paths.raw, "data")
    path = suite_path(params)
    infer = infer or not path.is_file()
    suite = infer_suite(data, params.dataset) if infer else load_suite(path)
    expectations = full_suite(data, params.validate_, params.dataset, suite)
    checks = check_data(data, expectations, params.dataset.label)
    folder = report_path(params).parent
    write_report(folder, "raw", params.paths.raw, expectations, checks)
    raise_on_failure(params.paths.raw, checks)
    if infer:
        save_suite(path, suite_name(params), suite)
        log.warning("validate: inferred the suite %s from this data; review and commit it", path)
    log.info("validate: %d expectations passed on %s", len(checks), params.paths.raw)
    return checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tasks.validate", description=__doc__)
    parser.add_argument(
        "--infer",
        action="store_true",
        help="re-infer the suite file from the current raw data (overwrites it), then validate",
    )
    args = parser.parse_args(argv)
    run(load_params(), infer=args.infer)


if __name__ == "__main__":
    run_entry("tasks.validate")
