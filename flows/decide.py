"""Whether a retraining run goes on past `clean`: the recorded decision to retrain or skip.

After the data steps, the cleaned data is compared with the rows the current champion
trained on (their keys come from the split manifest logged with its run): rows it never saw
are new, and the new rows are tested for drift against its training rows, feature by feature
and on the label (`tasks.drift`, thresholds under `drift:`). The run retrains when forced
(`--force`), when there is no champion yet, when something other than the data changed
(params, code, missing outputs: DVC's own status of the later stages), when the new rows reach
`drift.min_new_rows` of the champion's, or on drift; otherwise it skips, and says why.

Writes `reports/drift.json`, `reports/drift.html` and `reports/drift.png` when there were new
rows to compare; the decision goes to the log, to a Prefect artifact (`retrain-decision`) and,
when the run retrains, to the MLflow run as `retrain.*` tags.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flows.stages import DATA_STEPS
from tasks.config import Params
from tasks.datafiles import Arrays, Data, labels_of, read_data, replace_file, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reason: str
    drift: dict[str, Any] | None = None  # the drift report, when new rows were compared

    def tags(self) -> dict[str, str]:
        """What the MLflow run of a retraining records about why it ran."""
        drifted = "none" if self.drift is None else str(self.drift["drift"]).lower()
        return {"retrain.decision": self.reason, "retrain.drift": drifted}


def _take(data: Data, rows: np.ndarray, label: str, labels: np.ndarray | None = None) -> Data:
    """The rows, with other labels when given (the labels the champion trained them with)."""
    if isinstance(data, Arrays):
        taken = data.take(rows)
        return taken if labels is None else Arrays(taken.x, labels, taken.keys)
    frame = data.iloc[rows].reset_index(drop=True)
    return frame if labels is None else frame.assign(**{label: labels})


def _known_labels(manifest: dict[str, Any]) -> dict[str, Any]:
    """Each key the champion saw (train, val or test), with the label it had then."""
    return {
        key: label
        for name in ("train", "val", "test")
        for key, label in zip(manifest[name]["keys"], manifest[name]["labels"], strict=True)
    }


def champion_keys(params: Params) -> dict[str, Any] | None:
    """The split manifest of the champion's run; None without a champion (or a manifest)."""
    from mlflow import MlflowClient

    from tasks.registry import champion_manifest, current_champion
    from tasks.tracking import start_tracking

    start_tracking(params)
    client = MlflowClient()
    champion = current_champion(client, params.register_.model_name)
    manifest = None if champion is None else champion_manifest(client, champion.run_id)
    return manifest if manifest is not None and "labels" in manifest["train"] else None


def compare_with_champion(params: Params, manifest: dict[str, Any]) -> tuple[int, int, Any]:
    """(rows new or relabelled since the champion's data, rows it knew, drift report or None).

    The drift test compares those changed rows with the champion's training rows as it saw
    them (their labels from its manifest).
    """
    from tasks.drift import detect_drift
    from tasks.keys import row_keys

    data = read_data(params.paths.clean, "data", leave_handed=True)  # split reads it next
    label = params.dataset.label
    keys = pd.Series(row_keys(data, params.split.key, label))
    known = _known_labels(manifest)
    labels = labels_of(data, label)
    before = keys.map({key: str(value) for key, value in known.items()})  # NaN: never seen
    relabelled = before.notna() & (before != pd.Series(labels).astype(str))
    changed = np.flatnonzero((before.isna() | relabelled).to_numpy())
    trained = np.flatnonzero(keys.isin(manifest["train"]["keys"]).to_numpy())
    if len(changed) == 0 or len(trained) == 0:
        return len(changed), len(known), None
    as_trained = keys.iloc[trained].map(known).to_numpy().astype(labels.dtype)
    reference = _take(data, trained, label, as_trained)
    current = _take(data, changed, label)
    report = detect_drift(reference, current, label, params.drift, params.dataset.task)
    _write_drift(params, report, (reference, current))
    return len(changed), len(known), report


def _write_drift(params: Params, report: dict[str, Any], data: tuple[Data, Data]) -> None:
    import matplotlib.pyplot as plt

    from tasks.drift import plot_drift, render_html

    reports = params.paths.reports
    write_json(reports / "drift.json", report)
    with replace_file(reports / "drift.html") as staging:
        staging.write_text(render_html(report))
    figure = plot_drift(*data, report, params.dataset.label)
    figure.savefig(reports / "drift.png", dpi=100)
    plt.close(figure)


def changes_beyond_data(params: Params, later_steps: tuple[str, ...]) -> list[str]:
    """What, besides the data steps' outputs, makes DVC want to run the later steps."""
    from flows.stages import dvc_repo

    with dvc_repo() as repo:
        data_outs = {
            str(out.def_path) for s in repo.index.stages if s.name in DATA_STEPS for out in s.outs
        }
        status = repo.status(targets=list(later_steps))
    return [
        f"{step}: {change}"
        for step, entries in status.items()
        for change in _changes(entries, data_outs)
    ]


def _changes(entries: list[Any], data_outs: set[str]) -> list[str]:
    found = []
    for entry in entries:
        if not isinstance(entry, dict):
            found.append(str(entry))  # "always changed", "changed command"
            continue
        for items in entry.values():
            found += [_describe(path, how) for path, how in items.items() if path not in data_outs]
    return found


def _describe(path: str, how: Any) -> str:
    """`models/model deleted`; `params.yaml: train, tune modified` for params sections."""
    if isinstance(how, dict):
        return f"{path}: {', '.join(how)} {next(iter(how.values()), 'changed')}"
    return f"{path} {how}"


def decide(params: Params, later_steps: tuple[str, ...], force: bool) -> Decision:
    """Retrain or skip the steps after `clean`, and why, in one line."""
    from tasks.drift import decide_retrain

    if force:
        return Decision(True, "retrain: forced (--force)")
    manifest = champion_keys(params)
    if manifest is None:
        return Decision(True, "retrain: no champion yet (or none with a split manifest)")
    changed = changes_beyond_data(params, later_steps)
    if changed:
        shown = "; ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        return Decision(True, f"retrain: the pipeline changed ({shown})")
    new_rows, known, report = compare_with_champion(params, manifest)
    if report is None:
        reason = "skip: no new rows since the champion's data" if new_rows == 0 else ""
        return Decision(not reason, reason or f"retrain: {new_rows} new rows")
    retrain, reason = decide_retrain(report, new_rows, known, params.drift)
    return Decision(retrain, reason, report)


def record(decision: Decision) -> None:
    """The decision in the log and as a Prefect artifact of the flow run."""
    from prefect.artifacts import create_markdown_artifact

    log.info("decision: %s", decision.reason)
    lines = [f"**{'Retrain' if decision.retrain else 'Skip'}**: {decision.reason}"]
    if decision.drift is not None:
        rows = decision.drift["rows"]
        lines.append(
            f"Drift test: {rows['current']} new rows vs {rows['reference']} training rows."
        )
        lines.append(f"Drift: {decision.drift['reason']} (reports/drift.html)")
    create_markdown_artifact(
        key="retrain-decision", markdown="\n\n".join(lines), description=decision.reason
    )
