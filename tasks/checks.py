"""Running expectation suites on data, and reporting the results.

`check_data` runs a list of expectations (see `tasks.suites`): Great Expectations' own
through an ephemeral GX context, this pipeline's own (`tasks.findings.LOCAL_CHECKS`)
directly; one `Check` per expectation (an expectation on a column the data lacks is not
run). `write_report` writes them as `<name>.json` and `<name>.html` (or `<name>-failed.*`),
and `raise_on_failure` stops the run with one line per cause (`tasks.findings.causes`).
Used by the data contract (`ingest`, `validate`), `clean` and batch prediction.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import DatasetParams, Params, ValidateParams
from tasks.datafiles import Arrays, Data, replace_file, write_json
from tasks.findings import ABSENT, LOCAL_CHECKS, NOT_COMPUTED, Check, causes
from tasks.runtime import UserError
from tasks.suites import Expectation, _domain, full_suite, summarize_arrays


class ValidationFailed(UserError):
    """The data broke one or more expectations."""


def _found(result: dict[str, Any]) -> Any:
    if "observed_value" in result:
        return result["observed_value"]
    examples = result.get("partial_unexpected_list")
    if examples and pd.isna(pd.Series(examples)).all() and "unexpected_percent" in result:
        return f"{result['unexpected_percent']:.1f}% empty"  # the examples would be [nan, ...]
    if examples:
        return f"e.g. {examples[:5]}"
    if result.get("unexpected_percent") is not None:
        return f"{result['unexpected_percent']:.1f}% unexpected"
    return "missing"


def _no_details(result: Any) -> str:
    """What a result without details found: nothing wrong, or why GX could not tell."""
    if result.success:
        return "as expected"
    info = result.exception_info or {}
    nested = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
    message = str(info.get("exception_message") or next(filter(None, nested), "") or "")
    return f"{NOT_COMPUTED} ({message.splitlines()[0][:200]})" if message else NOT_COMPUTED


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
                found=_found(result.result) if result.result else _no_details(result),
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
    absent = [e for e in expectations if _absent_column(frame, e) is not None]
    present = [e for e in expectations if _absent_column(frame, e) is None]
    local = [e for e in present if e["type"] in LOCAL_CHECKS]
    checks = [_not_run(e) for e in absent]
    checks += [LOCAL_CHECKS[e["type"]](frame, arrays, e["kwargs"]) for e in local]
    return checks + _run_gx(frame, [e for e in present if e["type"] not in LOCAL_CHECKS])


def _absent_column(frame: pd.DataFrame, expectation: Expectation) -> str | None:
    """The column an expectation is about, when the data lacks it."""
    column = expectation["kwargs"].get("column")
    return column if isinstance(column, str) and column not in frame.columns else None


def _not_run(expectation: Expectation) -> Check:
    """An expectation on a column the data lacks: failed, but only the column's absence is
    reported (once, see `causes`)."""
    kwargs = {k: v for k, v in expectation["kwargs"].items() if k not in ("batch_id", "column")}
    column = expectation["kwargs"]["column"]
    return Check(expectation["type"], column, False, kwargs, ABSENT, None)


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


def render_html(title: str, checks: list[Check], read: str | None = None) -> str:
    """A small self-contained HTML page: one row per expectation, failures first."""
    failed = sum(not c.success for c in checks)
    problems = "".join(f"<li>{html.escape(line)}</li>" for line in causes(checks))
    notes = f"<p>Read as: {html.escape(read)}</p>" if read else ""
    notes += f"<ul class='fail'>{problems}</ul>" if problems else ""
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
        f"{notes}"
        "<table><tr><th>result</th><th>column</th><th>expectation</th><th>expected</th>"
        f"<th>found</th><th>failing rows</th></tr>{rows}</table></body></html>\n"
    )


def write_report(
    folder: Path,
    name: str,
    source: Path,
    expectations: list[Expectation],
    checks: list[Check],
    *,
    read: str | None = None,
) -> Path:
    """Write `<name>.json` and `<name>.html` (or `<name>-failed.*` when a check failed);
    `read`: how the data was read (a CSV's sniffed dialect), shown on both. Returns the page."""
    failed = [c for c in checks if not c.success]
    stem, stale = (f"{name}-failed", name) if failed else (name, f"{name}-failed")
    for suffix in (".json", ".html"):  # a failed run must not leave the last pass behind
        (folder / f"{stale}{suffix}").unlink(missing_ok=True)
    payload = {
        "success": not failed,
        "data": str(source),
        "read": read,
        "problems": causes(checks),
        "expectations": expectations,
        "checks": [c.__dict__ for c in checks],
    }
    with replace_file(folder / f"{stem}.json") as staging:
        write_json(staging, payload)
    with replace_file(folder / f"{stem}.html") as staging:
        staging.write_text(render_html(f"Validation of {source}", checks, read))
    return folder / f"{stem}.html"


def raise_on_failure(source: Path, checks: list[Check]) -> None:
    """Raise ValidationFailed: one line for one cause, else one line per cause."""
    lines = causes(checks)
    if len(lines) == 1:
        raise ValidationFailed(f"{source}: {lines[0]}")
    if lines:
        listed = "\n".join(f"  {source}: {line}" for line in lines)
        raise ValidationFailed(f"{len(lines)} problems with {source}:\n{listed}")


def report_path(params: Params, name: str = "raw") -> Path:
    return params.paths.reports / "validation" / f"{name}.json"
