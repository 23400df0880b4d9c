"""Unreachable services (an MLflow tracking server, a Prefect API, a Dask scheduler, a DVC
remote), a second run in one checkout, a busy port: one line naming what is wrong, a non-zero
exit, within 30 s, and nothing changed."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.runtime import free_port
from tests.conftest import FAST_PARAMS, ROOT, make_project, run_cli, update_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("services") / "project", FAST_PARAMS)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _last_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and lines, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[-1]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:{port}", "the MLflow tracking server"),
        ("PREFECT_API_URL", "http://127.0.0.1:{port}/api", "the Prefect API"),
    ],
)
def test_a_dead_service_is_named_in_one_line_within_30_s(
    project: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    address = value.format(port=free_port())  # nothing listens there
    monkeypatch.setenv(variable, address)
    started = time.monotonic()
    result = run_cli(["python", "-m", "flows.retrain"], project, check=False)
    assert time.monotonic() - started < 30
    assert _last_error(result) == next(
        line for line in result.stderr.splitlines() if line.startswith("error: ")
    )
    assert message in _last_error(result) and address in _last_error(result)
    assert not (project / "data/raw").exists(), "nothing ran"


def test_a_dead_dask_scheduler_is_named_in_one_line() -> None:
    from tasks.runners import check_scheduler
    from tasks.runtime import UserError

    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(UserError, match=f"the Dask scheduler {address} does not answer"):
        check_scheduler(address)


@pytest.mark.parametrize("door", ["flows.retrain", "flows.repro"])
def test_a_dead_dvc_remote_is_named_in_one_line_within_30_s(project: Path, door: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/dvc-store"  # nothing listens there
    good = (project / "params.yaml").read_text()
    run_cli(["dvc", "remote", "add", "-f", "dead", url], project)
    update_params(project, {"dvc": {"remote": "dead"}})
    try:
        started = time.monotonic()
        result = run_cli(["python", "-m", door], project, check=False)
        seconds = time.monotonic() - started
    finally:
        (project / "params.yaml").write_text(good)
        run_cli(["dvc", "remote", "remove", "dead"], project)
    assert seconds < 30, seconds
    assert _last_error(result).startswith(f"error: the DVC remote 'dead' ({url}) does not answer")
    assert not (project / "data/raw").exists(), "nothing ran"


def test_a_second_run_in_one_checkout_refuses_in_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.runtime import project_lock

    monkeypatch.chdir(project)
    with project_lock():
        result = run_cli(["python", "-m", "flows.retrain"], project, check=False)
    line = _last_error(result)
    assert line.startswith("error: another run of this project is in progress (pid ")
    assert str(os.getpid()) in line and not (project / "data/raw").exists()


def test_make_ui_on_a_busy_port_stops_at_once(busy_port: int) -> None:
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "ui", f"PORT={busy_port}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert time.monotonic() - started < 30 and result.returncode != 0
    assert f"error: port {busy_port} on 127.0.0.1 is in use" in result.stderr
    assert "PORT=" in result.stderr
