"""Issue 2's figures on a fresh clone: `make run` end to end, the pipeline alone, a no-op
`dvc repro`, and the test accuracy on digits.

    python benchmarks/spine.py [--repo .]

Clones the repository's committed HEAD into a temporary folder (uv's package cache stays
warm, as on a developer machine), times `make install` and `make run` there, then `dvc
repro` with nothing changed (median of 5), and writes benchmarks/results/spine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "spine.json"


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "MLFLOW_"))}
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        install_s = timed(["make", "install"], clone, env)
        pipeline_s = timed(["make", "run"], clone, env)
        dvc = str(clone / ".venv" / "bin" / "dvc")
        env_dvc = {**env, "PATH": f"{clone / '.venv' / 'bin'}:{env['PATH']}"}
        status = subprocess.run(
            [dvc, "status"], cwd=clone, env=env_dvc, capture_output=True, text=True, check=True
        ).stdout.strip()
        noop = [timed([dvc, "repro"], clone, env_dvc) for _ in range(5)]
        second_run_s = timed(["make", "run"], clone, env)
        metrics = json.loads((clone / "reports" / "metrics.json").read_text())
    result = {
        "make_run_fresh_clone_s": round(install_s + pipeline_s, 1),
        "install_s": round(install_s, 1),
        "pipeline_s": round(pipeline_s, 1),
        "second_make_run_s": round(second_run_s, 1),
        "dvc_status_after_run": status,
        "dvc_repro_noop_median_s": round(statistics.median(noop), 2),
        "test_accuracy": round(metrics["accuracy"], 4),
        "targets": {
            "make_run_fresh_clone_s": 300,
            "pipeline_s": 120,
            "dvc_repro_noop_median_s": 3,
            "test_accuracy": 0.97,
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from projects import measured_at

    result["commit"] = measured_at()
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
