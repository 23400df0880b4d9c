"""What the end-to-end benchmarks share: a fresh git checkout of the project's files, and a
command run in it, quietly, against the project's own stores, timed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# the project's code and configuration, without outputs: what a fresh clone runs from
PROJECT_FILES = (
    "tasks",
    "flows",
    "dvc.yaml",
    "params.yaml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    "expectations",
    "data/source/README.md",
    "uv.lock",
)
QUIET = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "tasks,flows",
}


def fresh_project(tree: Path, target: Path, files: tuple[str, ...]) -> Path:
    """The files of tree (no outputs, no DVC cache) as a fresh git checkout at target."""
    skip = shutil.ignore_patterns("__pycache__", "tmp", "cache")
    for name in files:
        if (tree / name).is_dir():
            shutil.copytree(tree / name, target / name, ignore=skip)
        elif (tree / name).exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tree / name, target / name)
    (target / "data/source").mkdir(parents=True, exist_ok=True)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "p"]):
        subprocess.run(command, cwd=target, check=True, capture_output=True)
    return target


def run_in(
    project: Path, args: list[str], extra: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a command in the project (its own MLflow store and Prefect home, unless `extra`
    environment says otherwise); exit on failure."""
    env = {**os.environ, **QUIET, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PREFECT_HOME"] = str(project / ".prefect")
    env.update(extra or {})
    started = time.perf_counter()
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{args} failed in {project}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done, seconds


def measured_at() -> str:
    """The commit measured, with `+dirty` when tracked files differed from it."""
    root = Path(__file__).resolve().parents[1]
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "tasks", "flows"], check=False)
    return head.stdout.strip() + ("+dirty" if dirty.returncode else "")
