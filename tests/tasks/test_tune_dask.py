"""Tuning on a Dask cluster started on its own, as a user starts one (`dask scheduler`, `dask
worker`), from a folder outside the repository: the scheduler and workers import the project
from its installed package, each trial's MLflow run names the worker that trained it, and a
cluster that cannot run trials is named in one line before anything runs."""

from __future__ import annotations

import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from tasks.config import parse_params
from tasks.runners import check_cluster
from tasks.runtime import UserError, free_port, free_ports
from tests.conftest import FAST_PARAMS, make_project, run_cli, started

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).parent / "dask")
# A Python of this environment that skips its .pth files, the project's editable install
# among them: an environment where the project is not installed.
WITHOUT_PROJECT = [
    sys.executable,
    "-S",
    "-c",
    f"import sys; sys.path.append({sysconfig.get_paths()['purelib']!r}); "
    "from distributed.cli import dask_scheduler, dask_worker; "
    "command = {'scheduler': dask_scheduler, 'worker': dask_worker}[sys.argv[1]]; "
    "sys.argv = sys.argv[1:]; command.main()",
]
# trials run outside a flow here: Prefect's task logs have no flow run to go to
WORKER_ENV = {"PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}


class Cluster:
    """Dask processes on 127.0.0.1, started from a folder outside the repository, each
    stopped with the test (`started`: whatever happens)."""

    def __init__(self, stack: ExitStack, folder: Path) -> None:
        # chosen together: two free_port() calls in a row may return the same port
        self.port, self.dashboard = free_ports(2)
        self.stack, self.folder = stack, folder
        self.address = f"tcp://127.0.0.1:{self.port}"

    def _start(self, command: list[str], http: int | None = None) -> None:
        """Start command with its HTTP server (the dashboard's, /health) on a free port."""
        http = http or free_port()
        command = [*command, "--dashboard-address", f"127.0.0.1:{http}"]
        health = f"http://127.0.0.1:{http}/health"
        self.stack.enter_context(started(command, health, cwd=self.folder, env=WORKER_ENV))

    def scheduler(self, python: list[str] | None = None) -> None:
        self._start(
            [*(python or [DASK]), "scheduler", "--host", "127.0.0.1", "--port", str(self.port)],
            self.dashboard,
        )

    def workers(self, count: int, python: list[str] | None = None) -> list[str]:
        """Start count worker processes; return every worker's address once all have joined."""
        nanny = ["--nworkers", str(count)] if python is None else ["--no-nanny"]
        self._start([*(python or [DASK]), "worker", self.address, *nanny, "--nthreads", "1"])
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=60)
            return sorted(client.scheduler_info()["workers"])


@pytest.fixture
def new_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Cluster]]:
    """Clusters to start in a test; every process they started is stopped afterwards."""
    with ExitStack() as stack:
        yield lambda: Cluster(stack, tmp_path_factory.mktemp("dask"))


@pytest.fixture(scope="module")
def prefect() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_each_trial_runs_on_a_worker_of_the_cluster_and_names_it(
    new_cluster: Callable[[], Cluster],
    prefect: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    from tasks.tune import run as tune_run

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    cluster = new_cluster()
    cluster.scheduler()
    workers = cluster.workers(2)
    processed = tmp_path / "processed"
    processed.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    np.savez(processed / "train.npz", x=x[:48], y=y[:48])
    np.savez(processed / "val.npz", x=x[48:], y=y[48:])
    folders = {"processed": processed, "reports": tmp_path / "reports", "mlruns": tmp_path / "m"}
    grid = {"train.learning_rate": [0.05, 0.01, 0.003, 0.001]}
    params = parse_params(
        {
            "paths": {name: str(path) for name, path in folders.items()},
            "model": {"type": "dense", "hidden_units": [8]},
            "train": {"batch_size": 16},
            "tune": {"epochs": 2, "grid": grid, "runner": "dask"}
            | {"dask_address": cluster.address, "workers": 2},
        }
    )
    report = tune_run(params)
    assert [t["status"] for t in report["trials"]] == ["ok"] * 4
    trials = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{report['mlflow_run_id']}'"
    )
    assert len(trials) == 4 and set(trials["tags.tune.worker"]) <= set(workers), trials


def test_a_cluster_without_the_project_is_named_in_one_line(
    new_cluster: Callable[[], Cluster],
) -> None:
    cluster = new_cluster()
    cluster.scheduler(WITHOUT_PROJECT)
    (worker,) = cluster.workers(1, WITHOUT_PROJECT)
    tune = parse_params({"tune": {"runner": "dask", "dask_address": cluster.address}}).tune
    with pytest.raises(UserError) as error:
        check_cluster(tune)
    assert str(error.value).startswith(
        f"the Dask cluster {cluster.address} cannot import this project (its scheduler, "
        f"worker {worker}): install it there (uv sync)"
    )


def test_a_cluster_without_workers_is_named_in_one_line(
    new_cluster: Callable[[], Cluster],
) -> None:
    cluster = new_cluster()
    cluster.scheduler()
    tune = parse_params({"tune": {"runner": "dask", "dask_address": cluster.address}}).tune
    with pytest.raises(UserError, match=f"the Dask scheduler {cluster.address} has no workers"):
        check_cluster(tune)


def test_a_dead_scheduler_stops_a_run_before_any_step(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    tune = {**FAST_PARAMS["tune"], "runner": "dask", "dask_address": address}
    project = make_project(tmp_path / "project", {**FAST_PARAMS, "tune": tune})
    began = time.monotonic()
    result = run_cli(["python", "-m", "flows.repro"], project, check=False)
    assert time.monotonic() - began < 30 and result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: the Dask scheduler {address} does not answer: start it (dask scheduler --host "
        f"127.0.0.1 --port {address.rpartition(':')[2]}), or set tune.dask_address: null for a "
        "local cluster"
    ]
    assert not (project / "data/raw").exists() and not (project / "dvc.lock").exists()
