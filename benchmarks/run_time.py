"""`make run`'s time against an earlier commit's, side by side in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/run_time.py [--baseline REV] [--rounds 2]

For each side (this checkout, and `--baseline` extracted with `git archive`), a fresh project
copy (code, params.yaml, dvc.yaml, expectations; no outputs, its own MLflow store) runs
`python -m flows.retrain` twice: `first` on a fresh clone (every step), then `again` after
`train.epochs` changes (train, evaluate and register: with a champion to compare with, the
current code's promotion gate and retrain decision run too). Sides alternate, round by
round. Writes `benchmarks/results/run_time.json`: each time, the medians, their ratio (goal
<= 1.1) and the commits measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from projects import fresh_project, run_in  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "run_time.json"
BASELINE = "3133e3e"  # the last commit before this stage (keyed splits, gate, decision)
GOAL = 1.1
FILES = ("tasks", "flows", "dvc.yaml", "params.yaml", "expectations", ".dvc", ".dvcignore")


def extract(rev: str, folder: Path) -> Path:
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", rev, *FILES], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def timed_run(project: Path) -> float:
    return run_in(project, [sys.executable, "-m", "flows.retrain"])[1]


def one_round(tree: Path, folder: Path) -> dict[str, float]:
    project = fresh_project(tree, folder, FILES)
    first = timed_run(project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  epochs: 30 ", "  epochs: 29 ", 1))
    return {"first": first, "again": timed_run(project)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sides: dict[str, list[dict[str, float]]] = {"ours": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="run-time-") as folder:
        trees = {"ours": ROOT, "baseline": extract(args.baseline, Path(folder) / "old")}
        for number in range(args.rounds):
            for side, tree in trees.items():
                times = one_round(tree, Path(folder) / f"{side}-{number}")
                sides[side].append({k: round(v, 1) for k, v in times.items()})
                print(side, sides[side][-1], flush=True)
    medians = {
        side: {run: statistics.median(r[run] for r in rounds) for run in ("first", "again")}
        for side, rounds in sides.items()
    }
    ratios = {
        run: round(medians["ours"][run] / medians["baseline"][run], 3) for run in medians["ours"]
    }
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    result = {
        "rounds": sides,
        "medians": medians,
        "ratio": ratios,
        "goal": GOAL,
        "met": all(r <= GOAL for r in ratios.values()),
        "baseline": args.baseline,
        "commit": commit,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
