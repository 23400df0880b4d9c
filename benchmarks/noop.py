"""Issue 21's no-op figure: `python -m flows.retrain` with nothing to do against `dvc repro`
with nothing to do, side by side in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/noop.py [--rounds 5]

A fresh project copy (fast params: a one-point grid, 8 epochs) runs the flow once; then the
two commands alternate, `--rounds` times each, on the unchanged project. Writes
`benchmarks/results/noop.json`: each side's wall and CPU seconds (median), the ratio of wall
times (goal <= 2.5) and the commit measured.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from projects import PROJECT_FILES, fresh_project, measured_at, run_in  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "noop.json"
GOAL = 2.5
FAST = {"tune": {"epochs": 2, "grid": {"train.learning_rate": [0.003]}}, "train": {"epochs": 8}}
COMMANDS = {"flow": [sys.executable, "-m", "flows.retrain"], "dvc": ["dvc", "repro"]}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def project(folder: Path) -> Path:
    path = fresh_project(ROOT, folder, PROJECT_FILES)
    params = yaml.safe_load((path / "params.yaml").read_text())
    for section, values in FAST.items():
        params[section] = {**params[section], **values}
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(path, COMMANDS["flow"])  # the first run: every step
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[dict[str, float]]] = {"flow": [], "dvc": []}
    with tempfile.TemporaryDirectory(prefix="noop-") as folder:
        path = project(Path(folder) / "project")
        for _ in range(args.rounds):
            for side, command in COMMANDS.items():
                cpu = cpu_seconds()
                done, seconds = run_in(path, command)
                assert side == "dvc" or "steps run: none" in done.stdout, done.stdout
                times[side].append(
                    {"wall": round(seconds, 3), "cpu": round(cpu_seconds() - cpu, 3)}
                )
    medians = {
        side: {k: statistics.median(r[k] for r in rounds) for k in ("wall", "cpu")}
        for side, rounds in times.items()
    }
    ratio = round(medians["flow"]["wall"] / medians["dvc"]["wall"], 3)
    commit = measured_at()
    result = {
        "rounds": times,
        "medians": medians,
        "ratio": ratio,
        "goal": GOAL,
        "met": ratio <= GOAL,
        "commit": commit,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))


if __name__ == "__main__":
    main()
