"""Process set-up for entry points: quiet libraries, logging, and one-line user errors."""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
)


class UserError(Exception):
    """An error the user caused (bad params, bad data); shown as one line, no traceback."""


def configure() -> None:
    """Quiet TensorFlow, MLflow, DVC and Prefect and set up logging; call before heavy imports."""
    for key, value in QUIET_ENV.items():
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


def run_entry(module: str) -> None:
    """Run `module.main()`; a UserError ends the process with one line on stderr and exit 1.

    The module is imported by its package name rather than run as `__main__`, so what it
    pickles (the preprocessor) can be unpickled by every other step.
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
