"""Shared fixtures: a quiet, offline environment and throw-away project checkouts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tasks.runtime import UserError, server_process

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = (
    "tasks",
    "flows",
    "dvc.yaml",
    "params.yaml",
    "uv.lock",
    "expectations",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    "data/source/README.md",
)

# Before any library reads them: quiet, no telemetry, writable homes inside the test run.
_HOME = Path(os.environ.get("RETRAIN_TEST_HOME", "/tmp/retrain-tests"))
for key, value in {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_HOME": str(_HOME / "prefect"),
    "KERAS_HOME": str(_HOME / "keras"),
    "MPLCONFIGDIR": str(_HOME / "matplotlib"),
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}.items():
    os.environ.setdefault(key, value)
os.environ.pop("MLFLOW_TRACKING_URI", None)

# Small enough for a 2-core CI machine, large enough to learn digits.
FAST_PARAMS = {
    "tune": {"epochs": 2, "grid": {"train.learning_rate": [0.001, 0.003]}},
    "train": {"epochs": 8},
    "register": {"model_name": "digits-test", "thresholds": {"accuracy": 0.8}},
}


def run_cli(
    args: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with the project's Python first on PATH (as DVC stages need); `env` adds
    to the environment."""
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    environment = {**os.environ, "PATH": path, **(env or {})}
    result = subprocess.run(
        args, cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def update_params(project: Path, changes: dict[str, dict[str, object]]) -> None:
    """Merge section-level changes into the project's params.yaml."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        params[section] = {**params.get(section, {}), **values}
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def make_project(target: Path, params: dict[str, dict[str, object]] | None = None) -> Path:
    """A fresh git + DVC checkout of the pipeline (code and params only, no outputs)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    update_params(target, params or {})
    run_cli(["git", "init", "-q"], target)
    run_cli(["git", "add", "-A"], target)
    run_cli(["git", "commit", "-q", "-m", "project"], target)
    return target


@pytest.fixture(autouse=True)
def _no_tracking_store_leaks() -> Iterator[None]:
    """mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI: without
    this, a test's store would become the next test's, and that of the commands it runs."""
    yield
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(key, None)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throw-away checkout with fast params, as the working directory."""
    path = make_project(tmp_path / "project", FAST_PARAMS)
    monkeypatch.chdir(path)
    # mlflow.set_tracking_uri() exports these; a previous test's store must not leak in
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield path


@contextmanager
def started(
    args: list[str],
    health: str,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 90,
) -> Iterator[subprocess.Popen[bytes]]:
    """`tasks.runtime.server_process` for a test: the server's own output in the failure
    when it does not start."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    answered = False
    with tempfile.TemporaryFile() as log:
        try:
            with server_process(
                args,
                health,
                f"{args} did not start",
                env={**environment, **(env or {})},
                cwd=cwd,
                output=log,
                timeout_s=timeout_s,
            ) as process:
                answered = True
                yield process
        except UserError as error:
            if answered:  # the test's own error
                raise
            log.seek(0)
            raise AssertionError(f"{error}:\n{log.read().decode()[-3000:]}") from None


# The files whose tests take minutes (`make test` lists the slowest 20), longest first, so
# that the two xdist workers of `make test` (a file each) do not end on one of them while the
# other idles. `make test` passes --no-loadscope-reorder: by default xdist hands out files by
# their number of tests, which put these (one to a few tests each) last.
LONGEST_FIRST = (
    "test_lineage.py",
    "test_scale_out.py",
    "test_dvc.py",
    "test_evaluation.py",
    "test_outputs_survive.py",
    "test_train_resume.py",
    "test_pipeline.py",
    "test_retrain_cli.py",
    "test_remote.py",
    "test_train_replicas.py",
    "test_tune_dask.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: number for number, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))
