"""Serve the retraining flow as a Prefect deployment on a cron schedule.

    python -m flows.schedule [--cron "0 3 * * *"]

The cron defaults to `schedule.cron` in params.yaml. Schedules need a real Prefect server:
with PREFECT_API_URL set, that server is used; otherwise one is started on 127.0.0.1 for as
long as this command runs (its UI shows the deployment and its runs). Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal

from flows.server import prefect_api
from tasks.config import load_params
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


def serve(cron: str, name: str) -> None:
    """Register the deployment with its schedule and run scheduled flow runs until stopped."""
    from prefect.schedules import Cron

    from flows.pipeline import retrain

    try:
        schedule = Cron(cron)
    except ValueError as error:
        raise UserError(
            f"schedule.cron: {cron!r} is not a valid cron expression ({error})"
        ) from None
    log.info("serving deployment retrain/%s on cron %r", name, cron)
    retrain.serve(name=name, schedules=[schedule])


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwind, so the Prefect server this command started is stopped


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    params = load_params()
    parser = argparse.ArgumentParser(description="Retrain on a cron schedule (Prefect).")
    parser.add_argument("--cron", default=params.schedule.cron, help="overrides schedule.cron")
    parser.add_argument("--port", type=int, default=4200, help="port of the started server")
    args = parser.parse_args()
    with prefect_api(port=args.port):
        serve(args.cron, params.schedule.name)


if __name__ == "__main__":
    run_entry("flows.schedule")
