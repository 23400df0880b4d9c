"""What lineage costs a run, and how long rebuilding a version takes, on digits.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/lineage_cost.py

In a fresh project (a git commit of the code and params, `train.deterministic: true`, its own
MLflow store): `python -m flows.retrain` once, timed; then, against that run's store, the
lineage work a run does (the tags of tune, train and evaluate; the version's and run's
lineage at register), timed in-process (median of 5), as a share of the run (goal <= 2%);
then `python -m tasks.reproduce models:/<name>/1`, timed (goal < 180 s). Writes
`benchmarks/results/lineage_cost.json` with the commit measured.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lineage_cost.json"
sys.path.insert(0, str(ROOT / "benchmarks"))

from projects import run_in  # noqa: E402
from retraining_scenario import make_project  # noqa: E402


def run(args: list[str], project: Path) -> float:
    return run_in(project, args)[1]


def lineage_seconds(project: Path) -> float:
    """The lineage work of one run, in this process, against the project's store."""
    os.chdir(project)
    sys.path.insert(0, str(project))
    from mlflow import MlflowClient

    from tasks.config import load_params
    from tasks.lineage import lineage_tags
    from tasks.register import lineage_of
    from tasks.tracking import start_tracking

    params = load_params()
    start_tracking(params)
    client = MlflowClient()
    version = client.get_model_version(params.register_.model_name, "1")
    started = time.perf_counter()
    for stage in ("tune", "train", "evaluate"):
        lineage_tags(params, stage)
    for key, value in lineage_of(client, version.run_id).items():
        client.set_model_version_tag(version.name, version.version, key, value)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lineage-") as folder:
        project = make_project(Path(folder) / "project", source="sklearn", deterministic=True)
        run_seconds = run([sys.executable, "-m", "flows.retrain"], project)
        lineage = statistics.median(lineage_seconds(project) for _ in range(5))
        name = "digits-cnn"
        uri = f"models:/{name}/1"
        rebuild = run([sys.executable, "-m", "tasks.reproduce", uri], project)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    result = {
        "run_seconds": round(run_seconds, 1),
        "lineage_seconds": round(lineage, 3),
        "lineage_share": round(lineage / run_seconds, 4),
        "lineage_goal": 0.02,
        "reproduce_seconds": round(rebuild, 1),
        "reproduce_goal": 180,
        "met": lineage / run_seconds <= 0.02 and rebuild < 180,
        "commit": commit,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
