"""`python -m flows.schedule` serves a cron deployment, and the server schedules its runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tasks.runtime import free_port
from tests.conftest import make_project

pytestmark = pytest.mark.slow


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _wait_for(predicate: Any, timeout_s: float, what: str, process: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"schedule exited early: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            result = predicate()
            if result:
                return result
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_schedule_serves_the_cron_deployment(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "project", {"schedule": {"cron": "*/5 * * * *", "name": "test-nightly"}}
    )
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.schedule", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deployments = _wait_for(
            lambda: _post(f"{api}/deployments/filter", {}), 120, "the deployment", process
        )
        assert [d["name"] for d in deployments] == ["test-nightly"]
        assert deployments[0]["schedules"][0]["schedule"]["cron"] == "*/5 * * * *"
        runs = _wait_for(
            lambda: _post(
                f"{api}/flow_runs/filter", {"deployments": {"id": {"any_": [deployments[0]["id"]]}}}
            ),
            60,
            "scheduled runs",
            process,
        )
        assert all(run["state_type"] == "SCHEDULED" for run in runs)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{api}/health", timeout=2)
