"""DVC's judgement of the stages, for the flow: is a stage current, and recording one that ran;
and the services a run needs, checked before any stage runs.

The flow asks DVC itself (content hashes of deps, params and outs against dvc.lock), so the
Prefect door and `dvc repro` agree on what is up to date.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.config import Params

DATA_STEPS = ("ingest", "validate", "clean")
MODEL_STEPS = ("split", "standardize", "tune", "train", "evaluate", "register")
STEPS = (*DATA_STEPS, *MODEL_STEPS)


def dvc_repo() -> Any:
    """The project's DVC repository (opened where the command runs)."""
    from dvc.repo import Repo

    logging.getLogger("dvc").setLevel(logging.WARNING)  # importing dvc resets it to INFO
    return Repo()


def stage_is_current(step: str) -> bool:
    """DVC's own judgement: deps, params and outs all match dvc.lock."""
    with dvc_repo() as repo:
        return not repo.status(targets=[step])


def record_stage(step: str) -> None:
    """Hash the stage's outputs into dvc.lock and the DVC cache, as `dvc repro` would."""
    with dvc_repo() as repo:
        repo.commit(step, force=True)


def check_services(params: Params) -> None:
    """The MLflow tracking server, Dask scheduler and DVC remote the run is configured with
    answer: else one line naming the first that does not (each within its timeout)."""
    from tasks.remote import check_remote
    from tasks.tracking import check_server, tracking_uri

    check_server(tracking_uri(params.paths.mlruns))
    if params.tune.dask_address:  # tasks.runners imports pandas: not on a run with nothing to do
        from tasks.runners import check_cluster

        check_cluster(params.tune)
    check_remote(params)
