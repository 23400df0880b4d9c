"""A Prefect server for as long as a command runs, when no PREFECT_API_URL is set.

Prefect needs an API for every flow run. Without one configured, Prefect itself starts a
temporary server inside `flow()`, after importing its server code into the flow's own
process (about 3 s) and waiting for it (about 6 s). Starting `prefect server start` here
instead lets that start-up overlap with work the command does anyway (importing
TensorFlow, MLflow, GX).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tasks.runtime import UserError

log = logging.getLogger(__name__)


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        if while_starting is not None:
            while_starting()
        deadline = time.monotonic() + timeout_s
        while not healthy(api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise UserError(
                    f"Prefect server on {host}:{port} did not start (is the port in use?)"
                )
            time.sleep(0.1)
        log.info(
            "Prefect server (UI and API) on http://%s:%d, for as long as this runs", host, port
        )
        yield api_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def prefect_api(
    *, port: int | None = None, while_starting: Callable[[], None] | None = None
) -> Iterator[str]:
    """The configured PREFECT_API_URL, or a server started for the block and used by it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
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
