"""Serve the retraining flow as a Prefect deployment on a cron schedule.

    python -m flows.schedule [--cron "0 3 * * *"]

The cron defaults to `schedule.cron` in params.yaml. Schedules need a real Prefect server:
with PREFECT_API_URL set, that server is used; otherwise one is started on 127.0.0.1 for as
long as this command runs (its UI shows the deployment and its runs). Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tasks.config import load_params
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def prefect_server(host: str, port: int, timeout_s: float = 60) -> Iterator[str]:
    """A Prefect server started for the duration of the block; yields its API URL."""
    api_url = f"http://{host}:{port}/api"
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise UserError(
                    f"Prefect server on {host}:{port} did not start (is the port in use?)"
                )
            time.sleep(0.5)
        log.info("Prefect server (UI and API) on http://%s:%d", host, port)
        yield api_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def serve(cron: str, name: str) -> None:
    """Register the deployment with its schedule and run scheduled flow runs until stopped."""
    from prefect.schedules import Cron

    from flows.retrain import retrain

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
    if os.environ.get("PREFECT_API_URL"):
        serve(args.cron, params.schedule.name)
        return
    with prefect_server("127.0.0.1", args.port) as api_url:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api_url}):
            serve(args.cron, params.schedule.name)


if __name__ == "__main__":
    run_entry("flows.schedule")
