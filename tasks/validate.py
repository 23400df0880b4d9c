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

This module is the step alone; its logic lives in two library modules that `clean` and batch
prediction use too: `tasks.suites` (inferring, merging, loading and saving suites) and
`tasks.checks` (running them, writing the reports, failing on a broken expectation).
"""

from __future__ import annotations

import argparse
import logging

from tasks.checks import Check, check_data, raise_on_failure, report_path, write_report
from tasks.config import Params, load_params
from tasks.datafiles import read_data
from tasks.runtime import run_entry
from tasks.suites import full_suite, infer_suite, load_suite, save_suite, suite_name, suite_path

log = logging.getLogger(__name__)


def run(params: Params, infer: bool = False) -> list[Check]:
    """Validate `paths.raw` against the saved suite (inferring and saving it when missing)."""
    data = read_data(params.paths.raw, "data")
    path = suite_path(params)
    infer = infer or not path.is_file()
    suite = infer_suite(data, params.dataset, params.split.key) if infer else load_suite(path)
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
