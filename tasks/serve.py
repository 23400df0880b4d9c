"""serve: the registered model over HTTP, with MLflow's own scoring server.

    python -m tasks.serve [--host 127.0.0.1] [--port 5001] [--version 3]     (or `make serve`)

Serves `models:/<register.model_name>@champion` (or the given version) from the project's
store (`MLFLOW_TRACKING_URI`, else `mlruns/mlflow.db`) with `mlflow models serve
--env-manager local`, in this environment. POST JSON to /invocations: `inputs` (nested
lists), `dataframe_split` or `dataframe_records`; the bundle takes them as it takes Python
inputs (`tasks.inputs`) and answers a bad request with HTTP 400 and a short message. The store,
the model and its champion are checked first, so their absence is one line, not a server that
starts and fails with a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tasks.config import Params, load_params
from tasks.registry import current_champion, model_uri
from tasks.runtime import UserError, run_entry
from tasks.tracking import check_server, tracking_uri

log = logging.getLogger(__name__)


def served_version(store: str, name: str, version: int | None) -> str:
    """The version that `version` (or `@champion`) names in the store; a UserError if none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).is_file():
        raise UserError(f"no MLflow store at {store}: run the pipeline first (make run)")
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    try:
        if version is not None:
            return str(client.get_model_version(name, str(version)).version)
        client.get_registered_model(name)
    except MlflowException as error:
        first = error.message.splitlines()[0][:200] if error.message else type(error).__name__
        raise UserError(f"cannot serve {model_uri(name, version)} from {store}: {first}") from None
    champion = current_champion(client, name)
    if champion is None:
        raise UserError(
            f"{name} has no @champion in {store}: run the pipeline (make run), promote a version "
            "(python -m tasks.promote --version N) or pass --version"
        )
    return str(champion.version)


def serve_command(uri: str, host: str, port: int) -> list[str]:
    """`mlflow models serve` for uri, with this environment's Python and packages."""
    return [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", uri),
        *("--env-manager", "local", "--host", host, "--port", str(port)),
    ]


def run(params: Params, host: str, port: int, version: int | None = None) -> None:
    """Check the registry, then replace this process with MLflow's scoring server."""
    store = tracking_uri(params.paths.mlruns)
    check_server(store)  # one line at once; the retries are runtime.RETRIES_ENV's, inherited
    name = params.register_.model_name
    served = served_version(store, name, version)
    uri = model_uri(name, version)
    # the scoring server runs `uvicorn` by name: this environment's, whatever PATH says
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    log.info("serve: %s (version %s) on http://%s:%d/invocations", uri, served, host, port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, serve_command(uri, host, port), env)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the registered model over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine)")
    parser.add_argument("--port", type=int, default=5001, help="default 5001")
    parser.add_argument("--version", type=int, help="a registered version (default @champion)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(load_params(), args.host, args.port, args.version)


if __name__ == "__main__":
    run_entry("tasks.serve")
