"""`make run`: the retraining flow once, on params.yaml.

    python -m flows.retrain [--force]

When nothing changed since the last run (one `dvc status` of the whole pipeline is clean and
the MLflow store holds every record dvc.lock names), it says so and prints the last run's
summary, without starting Prefect or importing TensorFlow: an hourly schedule on unchanged
data costs about what `dvc repro` does. Otherwise it starts a Prefect server for the run
(flows/server.py; PREFECT_API_URL's when set) and runs the flow (flows/pipeline.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any

from flows.stages import STEPS, check_services, dvc_repo
from flows.summary import format_summary, summarize
from tasks.config import Params, load_params
from tasks.remote import push_outputs
from tasks.runtime import UserError, project_lock, run_entry

log = logging.getLogger(__name__)

UNCHANGED = (
    "skip: nothing changed since the last run (dvc status is clean, MLflow has every record)"
)


def what_changed(params: Params) -> str | None:
    """What makes this run do something (stale stages, a record the MLflow store lacks), or
    None: one DVC status for the whole pipeline, then the store's record of what it holds."""
    from tasks.tracking import records_current

    with dvc_repo() as repo:
        stale = list(repo.status())
    if stale:
        shown = ", ".join(name.split(":")[-1] for name in stale[:4])
        return f"{len(stale)} stage(s) to bring up to date ({shown}{', ...' * (len(stale) > 4)})"
    return None if records_current(params) else "the MLflow store lacks a record"


def preload_libraries() -> None:
    """Import what the steps import, while the Prefect server starts in its own process."""
    from tasks.runtime import import_tensorflow, importing

    with importing():
        # skops.io first: importing it imports every scikit-learn module it trusts and finds
        # each type's module by scanning sys.modules (pickle's whichmodule), which took 2.6 s
        # once TensorFlow, GX and MLflow were loaded and takes 0.5 s before them
        for module in ("skops.io", "flows.pipeline"):
            importlib.import_module(module)
        import_tensorflow()
        libraries = ("great_expectations", "mlflow", "dvc.repo")
        for module in (*libraries, *(f"tasks.{step}" for step in STEPS)):
            importlib.import_module(module)


def run_flow(force: bool) -> dict[str, Any]:
    """The flow on its own Prefect server (or PREFECT_API_URL's); its summary."""
    from flows.server import prefect_api

    # the flow's module (0.5 s more of Prefect than the settings prefect_api reads) loads in
    # preload_libraries, behind the server's start
    with prefect_api(while_starting=preload_libraries):
        from flows.pipeline import retrain

        state = retrain(force=force, return_state=True)
    if state.is_failed():
        raise UserError(state.message or "the retrain flow failed")
    return state.result()  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the retraining flow once on params.yaml.")
    parser.add_argument(
        "--force", action="store_true", help="retrain even without new rows, drift or changes"
    )
    args = parser.parse_args()
    with project_lock():
        params = load_params()  # a bad params.yaml is the first thing said
        check_services(params)  # then a dead service, before Prefect starts or TF loads
        changed = "forced (--force)" if args.force else what_changed(params)
        if changed is None:
            log.info("nothing to do: no Prefect run started")
            summary = summarize(params, dict.fromkeys(STEPS, "skipped"), False, UNCHANGED)
            push_outputs(params)  # dvc.remote set since the last run, or it missed that push
        else:
            log.info("retrain: %s; starting the flow", changed)
            summary = run_flow(args.force)
    print(format_summary(summary))


if __name__ == "__main__":
    run_entry("flows.retrain")
