"""What a flow run leaves behind in Prefect, and who hears of a failed one.

Every finished run publishes three artifacts on its Prefect flow run: `test-metrics` (a
table), `promotion` (the registry's decision and its reason) and `mlflow-run` (a link to the
MLflow run). A failed run POSTs one line of JSON to `notify.webhook` (params.yaml), when set.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from pathlib import Path
from typing import Any

from tasks.runtime import SERVICE_TIMEOUT_S

log = logging.getLogger(__name__)

LOCAL_UI = "http://127.0.0.1:5000"  # `make ui` over the project's own store
# MLflow 3.17's UI opens experiments in its GenAI view unless the browser chose otherwise
MODEL_TRAINING = "workflowType=machine_learning"


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of a run: on the tracking server, or on `make ui`'s."""
    base = tracking_uri if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"


def publish(summary: dict[str, Any]) -> None:
    """The run's test metrics, promotion decision and MLflow link as Prefect artifacts."""
    from mlflow import MlflowClient
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    metrics = [{"metric": k, "value": round(v, 4)} for k, v in summary["metrics"].items()]
    create_table_artifact(metrics, key="test-metrics", description="test split scores")
    registry = summary["registry"]
    verdict = "promoted to @champion" if registry["promote"] else "kept as @challenger"
    create_markdown_artifact(
        key="promotion",
        markdown=f"**{registry['model_name']} v{registry['version']}**: {verdict}. "
        f"{registry['reason']}",
        description=verdict,
    )
    run_id = summary["mlflow_run_id"]
    experiment = MlflowClient(summary["tracking_uri"]).get_run(run_id).info.experiment_id
    create_link_artifact(
        run_link(summary["tracking_uri"], experiment, run_id),
        link_text=f"MLflow run {run_id}",
        key="mlflow-run",
    )


def failure_message(flow_run: Any, state: Any) -> dict[str, str]:
    """The one-line JSON a failed run posts: which run, where, and why."""
    return {
        "flow": "retrain",
        "flow_run": str(flow_run.name),
        "flow_run_id": str(flow_run.id),
        "state": str(state.name),
        "message": str(state.message or "").splitlines()[0] if state.message else "",
        "project": str(Path.cwd()),
        "host": os.uname().nodename,
    }


def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect's on_failure hook: POST the failure to `notify.webhook`; never raises."""
    from tasks.config import load_params
    from tasks.runtime import UserError

    try:
        webhook = load_params().notify.webhook
    except UserError:
        return  # params.yaml itself is what failed: there is no webhook to read
    if webhook is None:
        return
    body = json.dumps(failure_message(flow_run, state)).encode()
    request = urllib.request.Request(
        webhook, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=SERVICE_TIMEOUT_S):
            pass
    except OSError as error:
        log.warning("notify.webhook %s did not take the failure message (%s)", webhook, error)
