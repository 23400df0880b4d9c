"""The split step on a million rows: keyed hash bucketing against the positional split it
replaced, side by side in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/split_keys.py [--rows N] [--baseline REV]

Generates the data benchmark's table (20 features, nulls, duplicates), writes it once as
the cleaned data, then times `tasks.split.run(params)` in fresh processes, alternating: the
current code, and the code of `--baseline` (default: the last commit before keyed splits,
extracted with `git archive`). Writes `benchmarks/results/split_keys.json` with both times,
the ratio (target <= 1.2) and the commit measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "split_keys.json"
BASELINE = "3133e3e"  # positional train_test_split, before keyed splits
TARGET = 1.2

CHILD = r"""
import os, sys, time
os.chdir(sys.argv[1])
from tasks import split
from tasks.config import parse_params
params = parse_params({})
started = time.perf_counter()
split.run(params)
print(time.perf_counter() - started)
"""


def extract(rev: str, folder: Path) -> Path:
    """The `tasks/` package as it was at rev."""
    archive = subprocess.run(
        ["git", "archive", rev, "tasks"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def time_split(code: Path, project: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(project)],
        cwd=project,  # not this checkout: `tasks` must come from PYTHONPATH
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from data_pipeline import generate

    with tempfile.TemporaryDirectory(prefix="split-keys-") as folder:
        project, old = Path(folder) / "project", extract(args.baseline, Path(folder) / "old")
        (project / "data/clean").mkdir(parents=True)
        generate(args.rows).drop_duplicates().to_parquet(
            project / "data/clean/data.parquet", index=False
        )
        times: dict[str, list[float]] = {"ours": [], "baseline": []}
        for _ in range(args.rounds):
            times["ours"].append(time_split(ROOT, project))
            times["baseline"].append(time_split(old, project))
            print(json.dumps({k: round(v[-1], 2) for k, v in times.items()}), flush=True)
    ours, baseline = (statistics.median(times[k]) for k in ("ours", "baseline"))
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    result = {
        "rows": args.rows,
        "ours_seconds": [round(t, 2) for t in times["ours"]],
        "baseline_seconds": [round(t, 2) for t in times["baseline"]],
        "baseline": args.baseline,
        "ratio": round(ours / baseline, 3),
        "target": TARGET,
        "met": ours / baseline <= TARGET,
        "commit": commit,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
