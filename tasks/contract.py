"""The data contract: what a batch must pass before it becomes `paths.raw`, checked the same
way by `ingest` (the gate) and by `validate` (the report).

The checks are the saved suite (`expectations/<suite>.json`, or one inferred from the batch
when none is saved yet) and params.yaml's `validate:` rules, run on the table as `clean`
will hand it on: with `clean.coerce_numbers`, a text column of numbers ("1,234", " 7 ", a
blank) is checked, and inferred, as the numbers it becomes, so a suite records the kind a
column has after cleaning and a cleaner file of the same data passes it.

A batch that fails is kept aside in `paths.rejected` (its data, where it came from, and the
validation report) and `paths.raw` stays as it was. A batch that passes is written with its
verdict (`contract.json`), which `validate` reuses instead of checking the same data against
the same suite and rules again; a changed suite file or rule makes it check anew.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasks.checks import ValidationFailed, check_data, write_report
from tasks.coercion import coerce_numbers
from tasks.config import Params
from tasks.datafiles import Arrays, Data, replace_dir, write_data, write_json
from tasks.findings import Check, causes
from tasks.suites import Expectation, full_suite, infer_suite, load_suite, suite_path


@dataclass(frozen=True)
class Verdict:
    """The suite used (saved, or inferred from this batch), every expectation and its check."""

    suite: list[Expectation]
    inferred: bool
    expectations: list[Expectation]
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(check.success for check in self.checks)


def as_cleaned(data: Data, params: Params) -> Data:
    """The table with the numbers stored as text that `clean` will coerce; arrays unchanged."""
    if isinstance(data, Arrays) or not params.clean.coerce_numbers:
        return data
    return coerce_numbers(data, params.dataset.label)[0]


def check_contract(data: Data, params: Params, infer: bool = False) -> Verdict:
    """Run the saved suite (inferred from data when there is none, or with `infer`) and the
    params rules on the data as cleaning will see it."""
    view = as_cleaned(data, params)
    path = suite_path(params)
    infer = infer or not path.is_file()
    suite = infer_suite(view, params.dataset, params.split.key) if infer else load_suite(path)
    expectations = full_suite(view, params.validate_, params.dataset, suite)
    checks = check_data(view, expectations, params.dataset.label)
    return Verdict(suite, infer, expectations, checks)


def reject(
    data: Data, verdict: Verdict, params: Params, source: dict[str, Any], origin: str
) -> ValidationFailed:
    """Keep the batch aside in `paths.rejected` with its report; the error to raise, naming
    every cause (one line when there is one)."""
    folder = params.paths.rejected
    with replace_dir(folder) as staging:
        write_data(data, staging, "data")
        write_json(staging / "source.json", source)
        expectations, checks = verdict.expectations, verdict.checks
        read = source.get("read")
        page = write_report(staging, "validation", Path(origin), expectations, checks, read=read)
    where = f"{params.paths.raw} is unchanged; the batch and its report are in {folder / page.name}"
    lines = causes(verdict.checks)
    if len(lines) == 1:
        return ValidationFailed(f"{origin}: rejected, {lines[0]} ({where})")
    listed = "".join(f"\n  {origin}: {line}" for line in lines)
    return ValidationFailed(f"{origin}: rejected, {len(lines)} problems ({where}):{listed}")


VERDICT = "contract.json"


def fingerprint(params: Params) -> str:
    """What the checks depend on besides the data: the suite file (or its absence) and the
    rules, the label and task, the key column and coercion."""
    path = suite_path(params)
    rules = [
        params.validate_.model_dump(mode="json"),
        params.dataset.model_dump(mode="json"),
        params.split.key,
        params.clean.coerce_numbers,
    ]
    digest = hashlib.sha256(path.read_bytes() if path.is_file() else b"no suite file")
    digest.update(json.dumps(rules, sort_keys=True).encode())
    return digest.hexdigest()


def save_verdict(folder: Path, verdict: Verdict, params: Params) -> None:
    """The verdict beside the data it was reached on (inside `paths.raw`)."""
    payload = {**asdict(verdict), "fingerprint": fingerprint(params)}
    write_json(folder / VERDICT, payload)


def verdict_of(folder: Path, params: Params) -> Verdict | None:
    """The verdict saved with the data in folder, if the suite and rules are still the same.

    The data itself is not hashed again: the verdict travels with it (ingest renames both
    into place at once, and DVC versions and restores the folder whole).
    """
    path = folder / VERDICT
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if saved.get("fingerprint") != fingerprint(params):
        return None
    checks = [Check(**check) for check in saved["checks"]]
    return Verdict(saved["suite"], saved["inferred"], saved["expectations"], checks)
