"""`dvc repro`, and the MLflow record with it: `make repro`.

    python -m flows.repro

Runs `dvc repro`, then asks the MLflow store in use whether it holds the record of what DVC
now holds (the tuning's runs and trials, the training run, its test metrics, the registered
version: `tasks.tracking.missing_record`). The first stage whose record is missing is rerun
(`dvc repro --force --single-item`), and `dvc repro` brings the stages after it up to date,
until the store lacks nothing. Plain `dvc repro` judges files alone.
"""

from __future__ import annotations

import argparse
import logging
import subprocess

from flows.stages import STEPS
from tasks.config import load_params
from tasks.remote import check_remote, push_outputs
from tasks.runners import check_cluster
from tasks.runtime import UserError, project_lock, run_entry
from tasks.tracking import missing_record

log = logging.getLogger(__name__)


def dvc(*args: str) -> None:
    if subprocess.run(["dvc", *args], check=False).returncode != 0:
        raise UserError(f"dvc {' '.join(args)} failed (its output is above)")


def repro() -> list[str]:
    """Reproduce until the store holds every record; return the stages rerun for it."""
    params, rerun = load_params(), list[str]()
    dvc("repro")
    for _ in STEPS:
        missing = [(s, why) for s in STEPS if (why := missing_record(params, s)) is not None]
        if not missing:
            return rerun
        step, why = missing[0]
        log.info("%s: %s: running it again", step, why)
        dvc("repro", "--force", "--single-item", step)
        dvc("repro")
        rerun.append(step)
    raise UserError(f"the MLflow store still lacks records after rerunning {rerun}")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with project_lock():
        params = load_params()
        check_cluster(params.tune)  # before `dvc repro` changes anything
        check_remote(params)
        rerun = repro()
        push_outputs(params)
    log.info("repro: the MLflow store holds every record%s", f" (reran {rerun})" * bool(rerun))


if __name__ == "__main__":
    run_entry("flows.repro")
