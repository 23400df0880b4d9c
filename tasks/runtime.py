"""Process set-up for entry points: quiet libraries, logging, and one-line user errors."""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO, Any

QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
    "ABSL_MIN_LOG_LEVEL": "3",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "tasks,flows",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# Every retry of a remote service, bounded here: MLflow's REST client would otherwise retry a
# dead tracking server 7 times with backoff (about 4 minutes); Prefect's client 5 times.
RETRIES_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "PREFECT_CLIENT_MAX_RETRIES": "2",
}
SERVICE_TIMEOUT_S = 5  # a service that does not answer its health check in this long is down
# A flow step that lost its connection to a service mid-run is run again, after these pauses
STEP_RETRY_DELAYS_S = [10.0, 30.0]
PIPELINE_LOGGERS = ("tasks", "flows")
NOISY_LOGGERS = (
    "absl",
    "tensorflow",
    "h5py",
    "matplotlib",
    "PIL",
    "great_expectations",
    "dvc",
    "mlflow",
    "alembic",
    "httpx",  # Prefect's client: a line per API call
    "httpcore",
    "urllib3",
)


class UserError(Exception):
    """An error the user caused (bad params, bad data); shown as one line, no traceback."""


def is_transient(error: BaseException | None) -> bool:
    """Whether an error is a lost connection to a service (worth retrying the step), seen
    through the chain of causes: MLflow's client wraps urllib3's and requests' errors."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ConnectionError | TimeoutError):
            return True
        name = type(error).__name__
        if name in {"ConnectionError", "MaxRetryError", "ReadTimeout", "ConnectTimeout"}:
            return True
        if "Max retries exceeded" in str(error) or "Connection refused" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def configure() -> None:
    """Quiet TensorFlow, MLflow, DVC and Prefect and set up logging; call before heavy imports."""
    for key, value in {**QUIET_ENV, **RETRIES_ENV}.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(
        level=os.environ.get("RETRAIN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for name in PIPELINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def importing() -> Iterator[None]:
    """No garbage collection while heavy libraries import; what they built is then frozen.

    Imports allocate millions of objects that live until exit, and each full collection
    rescans them all: about 2.5 s of a digits flow run went to that. Nested uses (a step that
    imports TensorFlow inside another import) keep collection off until the outermost ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def import_tensorflow() -> Any:
    """Import TensorFlow with its C++ start-up banner (oneDNN, CUDA probing) kept off stderr."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull, importing():
            os.dup2(devnull.fileno(), 2)
            import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tensorflow


def answers(url: str, timeout_s: float = SERVICE_TIMEOUT_S) -> bool:
    """Whether an HTTP health endpoint answers 200 within the timeout."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def reachable(host: str, port: int, timeout_s: float = SERVICE_TIMEOUT_S) -> bool:
    """Whether a TCP service accepts connections within the timeout."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """count distinct free ports: all are held open together while chosen, so two calls in a
    row cannot hand out the same port twice before either is bound."""
    import socket

    with ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


@contextmanager
def server_process(
    args: list[str],
    health: str,
    failed: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    output: IO[bytes] | None = None,
    while_starting: Callable[[], None] | None = None,
    timeout_s: float = 90,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server (its own process group) for the block, once `health` answers 200: UserError
    `failed` when it exits or does not answer within timeout_s. `env` is its whole environment
    (None: this one's); its output goes to `output` (None: nowhere); `while_starting` runs
    while it starts. The whole group is stopped afterwards (SIGTERM, SIGKILL after 30 s), also
    when the block fails."""
    import signal

    process = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=output or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if while_starting is not None:
            while_starting()
        deadline = time.monotonic() + timeout_s
        while not answers(health, timeout_s=2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise UserError(failed)
            time.sleep(0.1)
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


_HELD: list[Path] = []  # the project lock this process holds


@contextmanager
def project_lock(path: Path = Path(".retrain.lock")) -> Iterator[None]:
    """One run per checkout: a second run refuses at once, naming the first one."""
    from filelock import FileLock, Timeout

    if _HELD:  # already this process's (a flow run under `python -m flows.retrain`)
        yield
        return
    holder = path.with_suffix(".pid")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = holder.read_text().strip() if holder.is_file() else "another process"
        raise UserError(
            f"another run of this project is in progress ({who}); wait for it to end, "
            "or run in another clone"
        ) from None
    try:
        holder.write_text(f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}")
        _HELD.append(path)
        yield
    finally:
        _HELD.pop()
        holder.unlink(missing_ok=True)
        lock.release()


def no_options(module: str, doc: str | None) -> None:
    """A step takes its settings from params.yaml, never from the command line: `--help` shows
    the module's docstring and exits 0; any other argument is an error (exit 2)."""
    lines = (doc or "").strip().splitlines()
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=lines[0] if lines else None,
        epilog="\n".join(lines[1:]).strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args()


def run_entry(module: str) -> None:
    """Run `module.main()`; a UserError ends the process with one line on stderr and exit 1.

    The module is imported by its package name rather than run as `__main__`, so the types it
    writes by name (a skops file names each object's module) load in every other step.
    """
    configure()
    # Registered first, so it runs last: the objects TensorFlow, MLflow, GX and Prefect leave
    # behind are frozen instead of garbage-collected one by one at interpreter shutdown, which
    # took about 3.5 s after a flow run. Files are closed by the steps themselves.
    atexit.register(gc.freeze)
    try:
        with importing():
            entry = importlib.import_module(module)
        entry.main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
