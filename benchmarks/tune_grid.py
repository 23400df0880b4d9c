"""Benchmark the tune step on digits: parallel trials vs one by one, halving vs the full grid.

    flock /tmp/heavy.lock python benchmarks/tune_grid.py [--epochs 16] [--workers 2]

Builds the processed digits arrays with the pipeline's own pure functions (ingest, clean,
split, standardize), runs an 8-point CNN grid (the default model) in one process:
  1. one by one (runner sequential),
  2. in parallel (runners processes and threads; worker start-up included, Prefect's
     temporary server started beforehand since a flow run has it already),
  3. successive halving one by one,
and writes benchmarks/results/tune_grid.json. Trials are 16 epochs (--epochs) so that the
workers' start-up (importing TF in each process) is a fair share of a real search.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = {
    "train.learning_rate": [0.001, 0.003],
    "model.dropout": [0.1, 0.3],
    "model.conv_filters": [[16, 32], [32, 64]],
}


def digits_splits() -> tuple[Any, Any]:
    from tasks.clean import clean_data
    from tasks.config import load_params
    from tasks.ingest import load_sklearn
    from tasks.split import split_data
    from tasks.standardize import fit_preprocessor, transform_split
    from tasks.train import Split

    params = load_params(ROOT / "params.yaml")
    data = load_sklearn("digits", params.dataset.label)
    kept = clean_data(data, params.clean, params.dataset).data
    splits, _ = split_data(kept, params.split, params.dataset)
    pre = fit_preprocessor(splits["train"], params.standardize, params.clean, params.dataset)
    return tuple(Split(*transform_split(pre, splits[name])) for name in ("train", "val"))


def timed(params: Any, splits: Any) -> dict[str, Any]:
    from tasks.tune import grid_points, open_runner, pick_best, search

    started = time.perf_counter()
    with open_runner(params.tune) as run:
        trials, epochs = search(params, grid_points(params.tune), splits, run)
    best = pick_best(trials, params.tune.metric)
    return {
        "runner": params.tune.runner,
        "pruning": params.tune.pruning,
        "seconds": round(time.perf_counter() - started, 2),
        "epochs_trained": epochs,
        "best_point": best.point,
        "best_score": best.score,
        "failed": sum(t.status != "ok" for t in trials),
    }


def warm_prefect() -> None:
    """Start Prefect's temporary server once, as a flow run would have it."""
    from prefect import task
    from prefect.task_runners import ThreadPoolTaskRunner

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        runner.submit(task(name="warm-up")(_pid), parameters={}).result()


def _pid() -> int:
    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runners", default="processes,threads", help="comma-separated")
    args = parser.parse_args()

    from tasks.config import load_params, with_overrides
    from tasks.runtime import configure, import_tensorflow

    configure()
    import_tensorflow()
    base = load_params(ROOT / "params.yaml")
    data = base.model_dump(by_alias=True)
    data["tune"] = {**data["tune"], "grid": GRID, "epochs": args.epochs, "workers": args.workers}
    from tasks.config import parse_params

    base = parse_params(data)
    splits = digits_splits()
    warm_prefect()
    runs = {"sequential": timed(with_overrides(base, {"tune.runner": "sequential"}), splits)}
    for runner in args.runners.split(","):
        runs[runner] = timed(with_overrides(base, {"tune.runner": runner}), splits)
    runs["halving"] = timed(
        with_overrides(base, {"tune.runner": "sequential", "tune.pruning": "halving"}), splits
    )
    seq, halv = runs["sequential"], runs["halving"]
    summary = {
        "grid_points": 8,
        "tune_epochs": args.epochs,
        "workers": args.workers,
        "cores": len(os.sched_getaffinity(0)),
        "speedup": {
            r: round(seq["seconds"] / runs[r]["seconds"], 2) for r in args.runners.split(",")
        },
        "halving_epoch_ratio": round(seq["epochs_trained"] / halv["epochs_trained"], 2),
        "halving_time_ratio": round(seq["seconds"] / halv["seconds"], 2),
        "halving_same_best": halv["best_point"] == seq["best_point"],
        "runs": runs,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tune_grid.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, result in runs.items():
        print(
            f"{name:>10}: {result['seconds']:7.1f} s, {result['epochs_trained']:3d} epochs, "
            f"best {result['best_point']} = {result['best_score']:.4f}"
        )
    print(
        f"parallel speed-up with {args.workers} workers {summary['speedup']} (target >= 1.6); "
        f"halving: {summary['halving_epoch_ratio']}x fewer epochs, "
        f"{summary['halving_time_ratio']}x less time (target >= 2), same best point: "
        f"{summary['halving_same_best']}"
    )


if __name__ == "__main__":
    main()
