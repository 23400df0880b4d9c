"""validate: check `paths.raw` against the source's expectation suite; the gate before training.

The suite has two parts. The inferred part (column set, column kinds, numeric ranges, null
fractions, label set; for arrays the sample shape and value range) lives in a reviewable JSON
file, `paths.expectations/<suite>.json`, written from the data by the first run that finds
none (or by `python -m tasks.validate --infer`) and checked by every later run, so a schema
change in new data is caught. The user part comes from params.yaml's `validate:` (minimum
rows, rows per class, labels, value range, null fraction); a person may also add entries to
the suite file.

Writes `reports/validation/raw.json` (every expectation and its result, and how ingest read
the file) and `raw.html` (the same, for a person). When the data fails, the stage exits
non-zero with one line per cause, writes `raw-failed.json`/`raw-failed.html` instead, and
nothing downstream runs. `ingest` runs the same checks before it replaces `paths.raw`, so
this fails only when the suite or the rules changed since. `clean` runs the same
expectations again on the cleaned data (`clean.json`/`clean.html`).

This module is the step alone; its logic lives in library modules that `ingest`, `clean` and
batch prediction use too: `tasks.contract` (the checks on the data as cleaning will see it),
`tasks.suites` (inferring, merging, loading and saving suites) and `tasks.checks` (running
them, writing the reports, one line per cause of failure).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tasks.checks import Check, raise_on_failure, report_path, write_report
from tasks.config import Params, load_params
from tasks.contract import check_contract, verdict_of
from tasks.datafiles import read_data
from tasks.runtime import run_entry
from tasks.suites import save_suite, suite_name, suite_path

log = logging.getLogger(__name__)


def run(params: Params, infer: bool = False) -> list[Check]:
    """Validate `paths.raw` against the saved suite (inferring and saving it when missing)."""
    saved = None if infer else verdict_of(params.paths.raw, params)  # ingest's, if current
    verdict = saved or check_contract(read_data(params.paths.raw, "data"), params, infer)
    folder = report_path(params).parent
    read = _read_as(params.paths.raw)
    write_report(folder, "raw", params.paths.raw, verdict.expectations, verdict.checks, read=read)
    raise_on_failure(params.paths.raw, verdict.checks)
    if verdict.inferred:
        save_suite(suite_path(params), suite_name(params), verdict.suite)
        log.warning(
            "validate: inferred the suite %s from this data; review and commit it",
            suite_path(params),
        )
    log.info("validate: %d expectations passed on %s", len(verdict.checks), params.paths.raw)
    return verdict.checks


def _read_as(raw: Path) -> str | None:
    """How ingest read the table (a CSV's dialect), from `source.json` beside the data."""
    path = raw / "source.json"
    return json.loads(path.read_text()).get("read") if path.is_file() else None


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
