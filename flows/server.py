"""A Prefect server for as long as a command runs, when no PREFECT_API_URL is set.

Prefect needs an API for every flow run. Without one configured, Prefect itself starts a
temporary server inside `flow()`, after importing its server code into the flow's own
process (about 3 s) and waiting for it (about 6 s). Starting `prefect server start` here
instead lets that start-up overlap with work the command does anyway (importing
TensorFlow, MLflow, GX).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tasks.databases import blocks_registered, prefect_database_path, seed
from tasks.runtime import UserError, answers, free_port, run_entry, server_process

log = logging.getLogger(__name__)

# `python -m prefect ...` that first asks the kernel for SIGTERM when its parent dies, even by
# SIGKILL (Linux's parent-death signal), so a killed run leaves no server behind; a parent
# already gone by then (argv[1] is its pid) ends it at once.
ORPHANLESS_PREFECT = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(0); "
    "from prefect.cli import app; sys.argv = ['prefect', *sys.argv[2:]]; app()"
)


def healthy(api_url: str) -> bool:
    """Whether a Prefect API answers its health check."""
    return answers(f"{api_url}/health", timeout_s=2)


@contextmanager
def prefect_server(
    host: str,
    port: int,
    *,
    while_starting: Callable[[], None] | None = None,
    timeout_s: float = 60,
) -> Iterator[str]:
    """`prefect server start` for the duration of the block; yields its API URL.

    `while_starting` runs while the server starts in its own process; the block begins
    once the server answers its health check.
    """
    api_url = f"http://{host}:{port}/api"
    command = ["server", "start", "--host", host, "--port", str(port)]
    # the UI asks for its API at PREFECT_UI_API_URL, which does not follow --port
    settings = {"PREFECT_UI_API_URL": os.environ.get("PREFECT_UI_API_URL") or api_url}
    database = prefect_database_path()
    if database is not None and seed("prefect", database) and blocks_registered(database):
        # a new PREFECT_HOME from the template: no migrations, and no block types to register
        settings["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] = "false"
    with server_process(
        [sys.executable, "-c", ORPHANLESS_PREFECT, str(os.getpid()), *command],
        f"{api_url}/health",
        f"Prefect server on {host}:{port} did not start (is the port in use?)",
        env={**os.environ, **settings},
        while_starting=while_starting,
        timeout_s=timeout_s,
    ):
        log.info(
            "Prefect server (UI and API) on http://%s:%d, for as long as this runs", host, port
        )
        yield api_url


@contextmanager
def prefect_api(
    *, port: int | None = None, while_starting: Callable[[], None] | None = None
) -> Iterator[str]:
    """The configured PREFECT_API_URL, or a server started for the block and used by it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured and not healthy(configured.rstrip("/")):
        raise UserError(
            f"the Prefect API {configured} does not answer: start that server "
            "(prefect server start), or unset PREFECT_API_URL to start one for this run"
        )
    if configured:
        if while_starting is not None:
            while_starting()
        yield configured
        return
    with (
        prefect_server("127.0.0.1", port or free_port(), while_starting=while_starting) as url,
        temporary_settings({PREFECT_API_URL: url}),
    ):
        try:
            yield url
        finally:
            drain_to_api()


def drain_to_api(timeout_s: float = 10) -> None:
    """Send the logs and events Prefect still holds, before the server they go to stops.

    What Prefect's own test harness does before stopping its server; without it, the
    process retries against the stopped server at exit and prints connection errors.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout_s)
    EventsWorker.drain_all(timeout=timeout_s)


def check_port(host: str, port: int) -> None:
    """A port already taken is named in one line, before a server tries to bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise UserError(
                f"port {port} on {host} is in use: stop what holds it, or pick another (PORT=...)"
            ) from None


def main() -> None:
    parser = argparse.ArgumentParser(description="Check that a port is free before serving.")
    parser.add_argument("--check-port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    check_port(args.host, args.check_port)


if __name__ == "__main__":
    run_entry("flows.server")
