"""Register the retrain flow as a deployment on a Prefect work pool, running from this checkout.

    python -m flows.deploy --pool POOL        (make deploy POOL=POOL)

The server is the one at PREFECT_API_URL (required: a deployment outlives this command). The
pool is created, of type `process`, when it does not exist. Then, on the machine that holds
this checkout:

    prefect worker start --pool POOL
    prefect deployment run retrain/retrain --watch

The worker runs each flow run in a subprocess whose working directory is this checkout, with
the worker's environment (MLFLOW_TRACKING_URI and the like).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from flows.server import healthy
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)

ENTRYPOINT = "flows/pipeline.py:retrain"


def api_url() -> str:
    """The configured Prefect API, which must answer."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise UserError(
            "PREFECT_API_URL is not set: start a server (prefect server start) and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    if not healthy(url.rstrip("/")):
        raise UserError(f"the Prefect API {url} does not answer: start that server first")
    return str(url)


def ensure_pool(pool: str) -> None:
    """The work pool, created as a `process` pool when missing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            log.info("work pool %s created (type process)", pool)
            return
    log.info("work pool %s exists (type %s)", pool, found.type)


def deploy(pool: str, name: str = "retrain", root: Path | None = None) -> str:
    """Deploy `retrain` from root (this checkout) to the pool; return the deployment's id."""
    from prefect import flow

    ensure_pool(pool)
    source: Any = flow.from_source(
        source=str((root or Path.cwd()).resolve()), entrypoint=ENTRYPOINT
    )
    deployment_id = source.deploy(name=name, work_pool_name=pool, print_next_steps=False)
    log.info("deployment retrain/%s on pool %s (id %s)", name, pool, deployment_id)
    return str(deployment_id)


def main() -> None:
    parser = argparse.ArgumentParser(description="Deploy the retrain flow to a work pool.")
    parser.add_argument("--pool", required=True, help="the work pool (created if missing)")
    parser.add_argument("--name", default="retrain", help="the deployment's name")
    args = parser.parse_args()
    url = api_url()
    deploy(args.pool, args.name)
    print(
        f"deployed retrain/{args.name} to {url}: start `prefect worker start --pool "
        f"{args.pool}`, then `prefect deployment run retrain/{args.name} --watch`"
    )


if __name__ == "__main__":
    run_entry("flows.deploy")
