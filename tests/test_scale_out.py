"""Scale-out on real engines started here: an MLflow tracking server (`make tracking-server`)
shared by two clones running at once, and a Prefect server with a work pool, a process worker
and the `retrain/retrain` deployment (`python -m flows.deploy`), its artifacts and its
failure webhook."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tasks.runtime import free_port
from tests.conftest import FAST_PARAMS, ROOT, make_project, run_cli, started, update_params

pytestmark = pytest.mark.slow

ONE_POINT = {**FAST_PARAMS, "tune": {"epochs": 2, "grid": {"train.learning_rate": [0.003]}}}


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make tracking-server` on a free port: SQLite database, proxied artifacts."""
    port, store = free_port(), tmp_path_factory.mktemp("tracking")
    command = ["make", "--no-print-directory", "-C", str(ROOT), "tracking-server"]
    uri = f"http://127.0.0.1:{port}"
    with started([*command, f"PORT={port}", f"TRACKING_DIR={store}"], f"{uri}/health"):
        yield uri


@pytest.fixture(scope="module")
def clones(tmp_path_factory: pytest.TempPathFactory, tracking_server: str) -> list[Path]:
    """Two clones of the project, each run once, both at the same time, against the server."""
    root = tmp_path_factory.mktemp("clones")
    projects = [make_project(root / name, ONE_POINT) for name in ("a", "b")]
    env = {"MLFLOW_TRACKING_URI": tracking_server}

    def run(project: Path) -> subprocess.CompletedProcess[str]:
        return run_cli(["python", "-m", "flows.retrain"], project, check=False, env=env)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, projects))
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    return projects


def test_two_clones_at_once_are_both_recorded_on_the_server(
    clones: list[Path], tracking_server: str
) -> None:
    from mlflow import MlflowClient

    # the registry too: an earlier test in this process may have set another registry URI
    client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    run_ids = [
        json.loads((p / "models/model/run.json").read_text())["mlflow_run_id"] for p in clones
    ]
    assert len(set(run_ids)) == 2
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert "test_accuracy" in run.data.metrics
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), "artifacts go via the server"
        assert client.list_artifacts(run_id, "keras"), "the network reached the artifact store"
    versions = client.search_model_versions("name = 'digits-test'")
    assert sorted(v.run_id for v in versions) == sorted(run_ids), "every version present"
    model = client.get_registered_model("digits-test")
    assert list(model.aliases) == ["champion"] or set(model.aliases) == {"champion", "challenger"}
    champion = client.get_model_version_by_alias("digits-test", "champion")
    assert champion.run_id in run_ids


class _Hook(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` on a free port, with its own database."""
    port, home = free_port(), tmp_path_factory.mktemp("prefect")
    command = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    api = f"http://127.0.0.1:{port}/api"
    with started(command, f"{api}/health", env={"PREFECT_HOME": str(home)}):
        yield api


def _prefect(project: Path, api: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), project, check=False, env={"PREFECT_API_URL": api})


def test_the_deployment_runs_on_a_process_worker_and_publishes_artifacts(
    clones: list[Path], tracking_server: str, prefect_api: str
) -> None:
    project = clones[0]
    deployed = _prefect(project, prefect_api, "python", "-m", "flows.deploy", "--pool", "local")
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed retrain/retrain" in deployed.stdout
    worker_env = {"PREFECT_API_URL": prefect_api, "MLFLOW_TRACKING_URI": tracking_server}
    worker = ["prefect", "worker", "start", "--pool", "local", "--type", "process"]
    with started(worker, f"{prefect_api}/health", cwd=project, env=worker_env):
        watched = _prefect(
            project, prefect_api, "prefect", "deployment", "run", "retrain/retrain", "--watch"
        )
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "Completed" in watched.stdout
    assert {"test-metrics", "promotion", "mlflow-run"} <= _artifact_keys(prefect_api)


def _artifact_keys(api: str) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        return {a.key for a in client.read_artifacts() if a.key}


def test_a_failed_run_posts_one_line_of_json_to_the_webhook(
    tmp_path: Path, prefect_api: str
) -> None:
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        project = make_project(tmp_path / "project", FAST_PARAMS)
        url = f"http://127.0.0.1:{hook.server_address[1]}/retrain"
        update_params(project, {"notify": {"webhook": url}, "ingest": {"source": "csv"}})
        update_params(project, {"ingest": {"path": "data/source/missing.csv"}})
        result = _prefect(project, prefect_api, "python", "-m", "flows.retrain")
    finally:
        hook.shutdown()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(_Hook.received) == 1 and b"\n" not in _Hook.received[0]
    message = json.loads(_Hook.received[0])
    assert message["state"] == "Failed" and message["project"] == str(project)
    assert "missing.csv" in message["message"] and message["flow"] == "retrain"


def test_deploy_without_a_server_says_what_to_start(tmp_path: Path) -> None:
    result = run_cli(["python", "-m", "flows.deploy", "--pool", "p"], ROOT, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: PREFECT_API_URL is not set")
