"""`python -m flows.retrain`, the command `make run` calls: its own Prefect server, then none."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from flows.server import healthy
from tasks.runtime import free_port
from tests.conftest import FAST_PARAMS, ROOT, make_project, run_cli, started, update_params

pytestmark = pytest.mark.slow

SERVER_LINE = re.compile(r"Prefect server \(UI and API\) on (http://127\.0\.0\.1:\d+)")


def _server_url(stderr: str) -> str:
    found = SERVER_LINE.search(stderr)
    assert found, f"no server line in:\n{stderr}"
    return found.group(1)


def test_the_command_runs_the_flow_on_its_own_server_and_stops_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", FAST_PARAMS)

    result = run_cli(["python", "-m", "flows.retrain"], project)

    assert "steps run: ingest, validate, clean, split, standardize, tune, train" in result.stdout
    assert "registered: digits-test v1, now @champion" in result.stdout
    assert "prefect.flow_runs: Finished in state Completed()" in result.stderr
    assert "httpx" not in result.stderr, "no line per Prefect API call"
    assert "Successfully registered" not in result.stderr, "MLflow's prints are not shown"
    # logs reached the server before it stopped: no retries against a stopped server
    assert "Error logging to API" not in result.stderr and "Traceback" not in result.stderr
    assert not healthy(f"{_server_url(result.stderr)}/api"), "the server outlived the command"
    assert run_cli(["dvc", "status"], project).stdout.strip().endswith("up to date.")

    # the run stays visible after the command: `make prefect-ui` serves its record
    flow_run_id = re.search(
        r"Prefect run: make prefect-ui, then \S+/runs/flow-run/(\S+)", result.stdout
    )
    assert flow_run_id, result.stdout
    port = free_port()
    ui = ["make", "--no-print-directory", "-C", str(ROOT), "prefect-ui", f"PREFECT_PORT={port}"]
    with started(ui, f"http://127.0.0.1:{port}/api/health"):
        url = f"http://127.0.0.1:{port}/api/flow_runs/{flow_run_id.group(1)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.load(response)["state"]["type"] == "COMPLETED"

    again = run_cli(["python", "-m", "flows.retrain"], project)  # nothing changed
    assert "decision: skip: nothing changed since the last run" in again.stdout
    assert "steps run: none" in again.stdout and "registered: digits-test v1" in again.stdout
    assert "no Prefect run started" in again.stderr and not SERVER_LINE.search(again.stderr)

    # DVC's plots as one page that needs no network (`make plots`)
    run_cli(["python", "-m", "flows.plots"], project)
    page = (project / "dvc_plots/index.html").read_text()
    assert page.count("<svg") == 3 and page.count('src="data:image/png;base64,') == 4
    assert "<script" not in page and "cdn" not in page

    (project / "mlruns/mlflow.db").unlink()  # a store that lost its records: the flow reruns
    rerun = run_cli(["python", "-m", "flows.retrain"], project)
    assert "steps run: tune, train, evaluate, register" in rerun.stdout, rerun.stdout


def test_a_failed_expectation_ends_the_command_with_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", FAST_PARAMS)
    source = project / "data/source/bad.csv"
    pd.DataFrame({"a": [1.0, None, 3.0] * 10, "label": [0, 1, 2] * 10}).to_csv(source, index=False)
    update_params(
        project, {"ingest": {"source": "csv", "path": str(source)}, "validate": {"labels": [0, 1]}}
    )

    result = run_cli(["python", "-m", "flows.retrain"], project, check=False)

    assert result.returncode == 1
    error = result.stderr[result.stderr.index("error: ingest: ") :].splitlines()
    assert error[0].endswith(
        "bad.csv: rejected, 3 problems (data/raw is unchanged; the batch and its report "
        "are in data/rejected/validation-failed.html):"
    )
    assert len(error) == 4, "then one line per failing expectation"
    assert any("column 'a'" in line for line in error[1:])
    assert any("column 'label'" in line for line in error[1:])
    assert "Traceback" not in result.stderr and "NoneType: None" not in result.stderr
    assert not healthy(f"{_server_url(result.stderr)}/api")
    assert not (project / "data/clean").exists() and not (project / "mlruns").exists()
