"""Running expectation suites on data, and reporting the results.

`check_data` runs a list of expectations (see `tasks.suites`): Great Expectations' own
through an ephemeral GX context, this pipeline's own (`LOCAL_CHECKS`) directly; one `Check`
per expectation. `write_report` writes them as `<name>.json` and `<name>.html` (or
`<name>-failed.*`), and `raise_on_failure` stops the run with one line per failing
expectation. Used by the `validate` and `clean` steps and by batch prediction.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import DatasetParams, Params, ValidateParams
from tasks.datafiles import Arrays, Data, replace_file, write_json
from tasks.runtime import UserError
from tasks.suites import Expectation, _domain, column_kind, full_suite, summarize_arrays


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


def validate_data(
    data: Data,
    rules: ValidateParams,
    dataset: DatasetParams,
    suite: list[Expectation] | None = None,
) -> list[Check]:
    """Run the saved suite (if any) plus params.yaml's rules; one Check per expectation."""
    return check_data(data, full_suite(data, rules, dataset, suite), dataset.label)


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
