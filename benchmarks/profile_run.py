"""Where a full `make run` spends its time: a fresh digits run under pyinstrument (a sampling
profiler, 1 ms), its frames summed into the costs issue 21 names.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/profile_run.py

A fresh project copy (default params, digits) runs `python -m flows.retrain` once with the
profiler on in the command's own process (the Prefect server is a separate process: its
start-up shows as the wait for it). Writes `benchmarks/results/profile_run.json`: wall time,
each cost in seconds and share, and the commit. Costs overlap where one calls another (e.g.
"MLflow: opening the store" happens inside the steps); the table says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from projects import PROJECT_FILES, QUIET, fresh_project, measured_at  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "profile_run.json"
DRIVER = """
import sys
from pyinstrument import Profiler
from tasks.runtime import run_entry
out, sys.argv = sys.argv[1], sys.argv[:1]
profiler = Profiler(interval=0.001)
profiler.start()
try:
    run_entry("flows.retrain")
finally:
    profiler.stop()
    profiler.last_session.save(out)
"""
# (label, file suffix, function): every frame of that function, outermost occurrences only
COSTS = [
    ("tuning: the trials' training", "tasks/trials.py", "train_trial"),
    ("final training (Keras fit)", "tasks/fitting.py", "train_model"),
    (
        "imports while the Prefect server starts (TF, MLflow, GX)",
        "flows/retrain.py",
        "preload_libraries",
    ),
    ("Prefect server start, all of it", "flows/server.py", "prefect_server"),
    ("DVC: is each stage current (status per step)", "flows/stages.py", "stage_is_current"),
    ("DVC: recording each stage (commit per step)", "flows/stages.py", "record_stage"),
    ("Great Expectations checks", "tasks/checks.py", "_run_gx"),
    ("MLflow: opening the store, the experiment", "tasks/tracking.py", "start_tracking"),
    ("MLflow: logging the model bundle", "tasks/bundle.py", "log_bundle"),
    ("register: re-scoring the champion (gate)", "tasks/register.py", "run_gate"),
    ("register: the whole step (registry calls)", "tasks/register.py", "run"),
    ("evaluate: the whole step", "tasks/evaluate.py", "run"),
    ("evaluate: figures", "tasks/evaluate.py", "build_figures"),
    ("decide: retrain or skip", "flows/decide.py", "decide"),
    ("lineage tags", "tasks/lineage.py", "lineage_tags"),
    ("Prefect artifacts (publish)", "flows/publish.py", "publish"),
    ("ingest, validate, clean, split, standardize", "tasks/split.py", "run"),
]


def outermost(frame: Any, suffix: str, function: str) -> float:
    """Seconds in frames of that function, not counting calls nested in one another."""
    if frame.function == function and (frame.file_path or "").endswith(suffix):
        return float(frame.time)
    return sum(outermost(child, suffix, function) for child in frame.children)


def data_steps(root: Any) -> float:
    steps = ("ingest", "validate", "clean", "split", "standardize")
    return sum(outermost(root, f"tasks/{step}.py", "run") for step in steps)


def main() -> None:
    from pyinstrument.session import Session

    with tempfile.TemporaryDirectory(prefix="profile-") as folder:
        project = fresh_project(ROOT, Path(folder) / "project", PROJECT_FILES)
        (Path(folder) / "driver.py").write_text(DRIVER)
        env = {**os.environ, **QUIET, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        env["PREFECT_HOME"] = str(project / ".prefect")
        env.pop("MLFLOW_TRACKING_URI", None)
        saved = Path(folder) / "session.pyisession"
        command = [sys.executable, str(Path(folder) / "driver.py"), str(saved)]
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
        session = Session.load(str(saved))
    root = session.root_frame()
    assert root is not None
    wall = float(session.duration)
    costs = {label: outermost(root, suffix, function) for label, suffix, function in COSTS[:-1]}
    costs[COSTS[-1][0]] = data_steps(root)
    rows = [
        {"cost": label, "seconds": round(seconds, 2), "share": round(seconds / wall, 3)}
        for label, seconds in sorted(costs.items(), key=lambda item: -item[1])
    ]
    result = {"wall_seconds": round(wall, 1), "costs": rows, "commit": measured_at()}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['seconds']:6.2f} s  {row['share']:6.1%}  {row['cost']}")
    print(f"{wall:6.2f} s  wall (the command's own process)")


if __name__ == "__main__":
    main()
