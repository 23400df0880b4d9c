"""How steady is one process's training speed here? The same trial in fresh processes.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/process_speed.py --runs 8

Trains the default CNN on MNIST's first --rows images for --epochs epochs, with one
TensorFlow thread and the same seed, in --runs fresh processes one after another (run it
with nothing else running), and writes each process's training time to
benchmarks/results/process_speed.json with the ratio of the slowest to the fastest.

Why: the parallel-trial figures on MNIST (benchmarks/tune_grid.py --data mnist) vary far
more between identical runs than on digits. If a fresh process sometimes trains at a
fraction of the usual speed from its start, whatever else runs beside it, a grid run's
speed depends on which speed its worker processes drew, not only on the runner.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def one_trial(rows: int, epochs: int) -> float:
    """Train one trial in this process (one TF thread); return its seconds."""
    from tune_grid import base_params, processed_splits

    from tasks.config import with_overrides
    from tasks.fitting import train_model
    from tasks.runtime import configure
    from tasks.trials import limit_threads

    configure()
    limit_threads(1)  # as a `processes` worker of a 2-worker grid on 2 cores
    splits = processed_splits("mnist", rows)
    params = with_overrides(base_params(epochs, 1, True), {"train.epochs": epochs})
    started = time.perf_counter()
    train_model(params, *splits)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(one_trial(args.rows, args.epochs))
        return
    command = [
        sys.executable,
        __file__,
        "--child",
        f"--rows={args.rows}",
        f"--epochs={args.epochs}",
    ]
    seconds = []
    for _ in range(args.runs):
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT)
        seconds.append(round(float(done.stdout.split()[-1]), 2))
    result = {
        "rows": args.rows,
        "epochs": args.epochs,
        "seconds": seconds,
        "median": round(statistics.median(seconds), 2),
        "slowest_over_fastest": round(max(seconds) / min(seconds), 2),
    }
    out = ROOT / "benchmarks" / "results" / "process_speed.json"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from projects import measured_at

    result["commit"] = measured_at()
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.runs} fresh processes, one trial each: {seconds} s; slowest/fastest "
        f"{result['slowest_over_fastest']}"
    )


if __name__ == "__main__":
    main()
