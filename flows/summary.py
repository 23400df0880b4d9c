"""What a run produced, read back from the files the stages wrote, and its terminal summary.

Light on purpose (no pandas, Prefect, MLflow): `python -m flows.retrain` prints it also when
nothing had to run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.config import Params
from tasks.tracking import tracking_uri


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


PREFECT_UI = "http://127.0.0.1:4200"  # `make prefect-ui`: past flow runs, after the command


def summarize(
    params: Params, outcome: dict[str, str], retrain: bool, reason: str, flow_run_id: str = ""
) -> dict[str, Any]:
    """The run's steps, decision, test metrics, MLflow run, registry record and store."""
    reports = params.paths.reports
    return {
        "prefect_flow_run_id": flow_run_id,
        "steps": outcome,
        "decision": {"retrain": retrain, "reason": reason},
        "metrics": _json(reports / "metrics.json"),
        "mlflow_run_id": _json(params.paths.model / "run.json")["mlflow_run_id"],
        "registry": _json(reports / "registry.json"),
        "tracking_uri": tracking_uri(params.paths.mlruns),
    }


def metric_line(metrics: dict[str, float]) -> str:
    """Test metrics rounded to 3 places, each value once: `f1_macro` is left out when it
    equals `f1` (the same score under two names)."""
    shown: dict[str, float] = {}
    for name, value in metrics.items():
        stem = name.rsplit("_", 1)[0]
        if name != stem and stem in metrics and metrics[stem] == value:
            continue
        shown[name] = value
    return ", ".join(f"{name} {value:.3f}" for name, value in shown.items())


def format_summary(summary: dict[str, Any]) -> str:
    registry = summary["registry"]
    ran = [s for s, o in summary["steps"].items() if o == "ran"]
    metrics = metric_line(summary["metrics"])
    champion = (
        "now @champion"
        if registry["promote"]
        else f"stays @challenger, champion is v{registry['champion']}"
    )
    return "\n".join(
        [
            "",
            f"decision: {summary['decision']['reason']}",
            f"steps run: {', '.join(ran) or 'none (everything up to date)'}",
            f"test metrics: {metrics}",
            f"MLflow run: {summary['mlflow_run_id']} ({summary['tracking_uri']})",
            f"registered: {registry['model_name']} v{registry['version']}, {champion} "
            f"({registry['reason']})",
            "look at it: make ui  (MLflow UI on http://127.0.0.1:5000); dvc metrics show",
            *_prefect_line(summary.get("prefect_flow_run_id", "")),
        ]
    )


def _prefect_line(flow_run_id: str) -> list[str]:
    if not flow_run_id:
        return []
    return [f"Prefect run: make prefect-ui, then {PREFECT_UI}/runs/flow-run/{flow_run_id}"]
