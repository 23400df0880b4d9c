"""Children die with their parent: a run killed by SIGKILL or SIGTERM leaves no Prefect
server (or any other child process) behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import FAST_PARAMS, make_project

pytestmark = pytest.mark.slow


def _started_run(project: Path) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """`python -m flows.retrain`, once its Prefect server answers; with its descendants."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.Popen(
        [sys.executable, "-m", "flows.retrain"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert run.stderr is not None
    deadline = time.monotonic() + 90
    for line in run.stderr:
        if "Prefect server (UI and API) on" in line or time.monotonic() > deadline:
            break
    children = psutil.Process(run.pid).children(recursive=True)
    assert children, "the run started its Prefect server"
    return run, children


@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_leaves_no_process_behind(tmp_path: Path, sent: signal.Signals) -> None:
    project = make_project(tmp_path / "project", FAST_PARAMS)
    run, children = _started_run(project)
    try:
        run.send_signal(sent)
        run.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
    finally:
        for process in psutil.Process().children(recursive=True):
            if process.pid == run.pid or process in children:
                process.kill()
