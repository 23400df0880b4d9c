"""Benchmark the tune step: parallel trials vs one by one, halving vs the full grid.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/tune_grid.py            # digits, 48 epochs
    flock /tmp/heavy.lock .venv/bin/python benchmarks/tune_grid.py --data mnist --rows 6000 \
        --epochs 16 --early-stopping --out tune_grid_mnist
    flock /tmp/heavy.lock .venv/bin/python benchmarks/tune_grid.py --grid optimizers \
        --seeds 42,1,2,3,4 --out tune_grid_optimizers

Builds the processed arrays with the pipeline's own pure functions (ingest with
`ingest.max_rows`, clean, split, standardize) from scikit-learn's digits (default) or the
first --rows images of MNIST's IDX files, then runs one 8-point CNN grid (the default model;
--grid picks one of GRIDS) in one process:
  1. one by one (runner sequential, TF's default threading: the user's default path),
  2. in parallel (runners processes and threads; the workers' start-up, TF import included,
     is inside the time; Prefect's temporary server is started beforehand, since a flow run
     has it already),
  3. successive halving, one by one,
  4. for each further --seeds value (train.seed), the full grid and halving one by one again,
  5. for each seed, the full grid's best point and halving's pick trained to full length as the
     train step trains them (params.yaml's train section: train.epochs with its early
     stopping; that seed; deterministic), and scored on the test split,
and writes benchmarks/results/<--out>.json. What halving is held to: over the seeds, the test
accuracy of its pick lies within the spread of the full grid's best point's, at >= 2x less
training (epochs). `--runners ""` skips step 2. By default every trial trains exactly --epochs
(early stopping off), so that every run does the same work: worker processes train with
fewer TF threads than the sequential run, which changes the floating-point results and so
where early stopping would end a trial. --early-stopping keeps params.yaml's. Training is
deterministic (`train.deterministic`), and halving continues a point on the very batches the
full grid trains it on, so a finalist of halving ends with exactly its full-grid score. "Total
training" of halving vs the full grid is reported both as epochs and as wall time, and the
rank halving's pick has in the full grid.

Worker start-up depends on whether Python may cache bytecode: with PYTHONDONTWRITEBYTECODE
set and no cached .pyc files, every worker compiles TensorFlow's sources again (about 10 s
instead of about 4 s). The result records the setting; set PYTHONPYCACHEPREFIX to a
writable folder (and PYTHONDONTWRITEBYTECODE empty) to measure with a cache.
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
MNIST = ROOT.parent / "shared/data/mnist"  # read-only, never copied into the repository
sys.path.insert(0, str(ROOT))

GRIDS = {
    # every point a good one: all eight reach about the same validation accuracy, so which is
    # "best" comes down to differences in validation loss smaller than a seed's effect
    "flat": {
        "train.learning_rate": [0.001, 0.003],
        "model.dropout": [0.1, 0.3],
        "model.conv_filters": [[16, 32], [32, 64]],
    },
    # the optimizers of classic practice at two learning rates a decade apart, as a user would
    # first grid them: some points are good, others clearly worse (what pruning is for)
    "optimizers": {
        "train.optimizer": ["adam", "sgd", "rmsprop", "adagrad"],
        "train.learning_rate": [0.001, 0.01],
    },
}


def processed_splits(data: str, rows: int) -> tuple[Any, Any, Any]:
    """(train, val, test) as the standardize stage writes them, for digits or MNIST's first
    rows."""
    from tasks.clean import clean_data
    from tasks.config import load_params, with_overrides
    from tasks.datafiles import Split
    from tasks.ingest import load_source
    from tasks.preprocessing import fit_preprocessor, transform_split
    from tasks.split import split_data

    params = load_params(ROOT / "params.yaml")
    if data == "mnist":
        source = {"ingest.source": "idx", "ingest.path": str(MNIST), "ingest.max_rows": rows}
        params = with_overrides(params, source)
    loaded = load_source(params.ingest, params.dataset)
    kept = clean_data(loaded, params.clean, params.dataset).data
    splits, _ = split_data(kept, params.split, params.dataset)
    pre = fit_preprocessor(splits["train"], params.standardize, params.clean, params.dataset)
    return tuple(Split(*transform_split(pre, splits[name])) for name in ("train", "val", "test"))


def timed(params: Any, splits: Any) -> dict[str, Any]:
    from tasks.runners import open_runner
    from tasks.search import TrialLog, grid_points, pick_best, rank_key, search

    started = time.perf_counter()
    log = TrialLog()
    with open_runner(params.tune, splits) as run:
        trials, epochs = search(params, grid_points(params.tune), splits, run, log)
    seconds = time.perf_counter() - started
    best = pick_best(trials, params.tune.metric)
    ranked = sorted((t for t in trials if t.status == "ok"), key=rank_key(params.tune.metric))
    return {
        "runner": params.tune.runner,
        "pruning": params.tune.pruning,
        "seconds": round(seconds, 2),
        "epochs_trained": epochs,
        "best_point": best.point,
        "best_score": best.score,
        "best_val_loss": round(best.val_loss, 5),
        "failed": sum(t.status != "ok" for t in trials),
        "trials": [
            {
                **t.point,
                "score": t.score,
                "val_loss": round(t.val_loss, 5),
                "epochs": t.epochs,
                "rank": ranked.index(t) + 1 if t in ranked else None,
            }
            for t in trials
        ],
        # per-epoch validation curves, written to <--out>_curves.json
        "curves": {
            str(t.point): {
                name: [round(v, 5) for v in log.curves.get(str(t.point), {}).get(name, [])]
                for name in (params.tune.metric, "val_loss")
            }
            for t in trials
        },
    }


def warm_prefect() -> None:
    """Start Prefect's temporary server once, as a flow run would have it."""
    from prefect import task
    from prefect.task_runners import ThreadPoolTaskRunner

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        runner.submit(task(name="warm-up")(_pid), parameters={}).result()


def _pid() -> int:
    return os.getpid()


def base_params(
    epochs: int, workers: int, fixed_length: bool, deterministic: bool = True, grid: str = "flat"
) -> Any:
    from tasks.config import load_params, parse_params

    data = load_params(ROOT / "params.yaml").model_dump(by_alias=True)
    data["tune"] = {**data["tune"], "grid": GRIDS[grid], "epochs": epochs, "workers": workers}
    # op determinism: in one process a point trains to the very same curves in the full grid
    # and in halving, so "halving found the full grid's best point" compares like with like
    data["train"]["deterministic"] = deterministic
    if fixed_length:  # early stopping never fires within tune.epochs
        data["train"]["early_stopping"] = {**data["train"]["early_stopping"], "patience": epochs}
    return parse_params(data)


def full_grid_rank(point: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """Where `point` stands in the full grid's ranking (1 = its best), and its scores there."""
    trial = next(t for t in full["trials"] if all(t[k] == v for k, v in point.items()))
    return {key: trial[key] for key in ("rank", "score", "val_loss")}


def top_two(full: dict[str, Any]) -> list[dict[str, Any]]:
    """The full grid's best and second-best trials (point, score, validation loss)."""
    return sorted((t for t in full["trials"] if t["rank"] in (1, 2)), key=lambda t: t["rank"])


def test_accuracy(params: Any, point: dict[str, Any], seed: int, splits: Any) -> float:
    """`point` trained as the train step would (params' train section, this seed), on the test
    split."""
    import numpy as np

    from tasks.config import with_overrides
    from tasks.fitting import train_model

    network, _ = train_model(with_overrides(params, {**point, "train.seed": seed}), *splits[:2])
    predicted = np.argmax(network.predict(splits[2].x, verbose=0), axis=1)
    return round(float(np.mean(predicted == splits[2].y)), 5)


def spread(values: list[float]) -> dict[str, float]:
    import statistics

    return {
        "min": min(values),
        "max": max(values),
        "mean": round(statistics.mean(values), 5),
        "sd": round(statistics.stdev(values), 5) if len(values) > 1 else 0.0,
    }


def picks_on_test(params: Any, seed_runs: dict[int, Any], splits: Any) -> dict[str, Any]:
    """Per seed, the test accuracy of the full grid's best point and of halving's pick (one
    training when they are the same point); their spreads over the seeds."""
    per_seed = {}
    for seed, pair in seed_runs.items():
        full, halving = pair["sequential"]["best_point"], pair["halving"]["best_point"]
        full_accuracy = test_accuracy(params, full, seed, splits)
        same = halving == full
        per_seed[seed] = {
            "full_grid_best": full_accuracy,
            "halving_pick": full_accuracy if same else test_accuracy(params, halving, seed, splits),
            "same_point": same,
        }
    full_spread = spread([s["full_grid_best"] for s in per_seed.values()])
    halving_spread = spread([s["halving_pick"] for s in per_seed.values()])
    return {
        "test_rows": len(splits[2].y),
        "per_seed": per_seed,
        "full_grid_best": full_spread,
        "halving_pick": halving_spread,
        "halving_within_full_spread": full_spread["min"] <= halving_spread["min"]
        and halving_spread["max"] <= full_spread["max"],
    }


def summarize(args: argparse.Namespace, runs: dict[str, Any], splits: Any) -> dict[str, Any]:
    runners = [runner for runner in args.runners.split(",") if runner]
    seq, halv = runs["sequential"], runs["halving"]
    return {
        "data": args.data,
        "grid": GRIDS[args.grid],
        "train_rows": len(splits[0].y),
        "val_rows": len(splits[1].y),
        "grid_points": len(seq["trials"]),
        "tune_epochs": args.epochs,
        "early_stopping": args.early_stopping,
        "deterministic": args.deterministic,
        "workers": args.workers,
        "cores": len(os.sched_getaffinity(0)),
        "bytecode": {
            "dont_write_bytecode": sys.dont_write_bytecode,
            "pycache_prefix": sys.pycache_prefix,
        },
        "speedup": {r: round(seq["seconds"] / runs[r]["seconds"], 2) for r in runners},
        "parallel_same_best": {r: runs[r]["best_point"] == seq["best_point"] for r in runners},
        "halving_epoch_ratio": round(seq["epochs_trained"] / halv["epochs_trained"], 2),
        "halving_time_ratio": round(seq["seconds"] / halv["seconds"], 2),
        "halving_same_best": halv["best_point"] == seq["best_point"],
        "halving_pick_in_full_grid": full_grid_rank(halv["best_point"], seq),
        "targets": {
            "speedup": 1.6,
            "halving_epoch_ratio": 2.0,
            "halving_within_full_spread": True,  # test accuracy of the picks, over the seeds
        },
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--rows", type=int, default=6000, help="MNIST images (ingest.max_rows)")
    parser.add_argument("--epochs", type=int, default=48)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="flat", help="see GRIDS")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop trials early as params.yaml says (by default each trains exactly --epochs)",
    )
    parser.add_argument("--runners", default="processes,threads", help="comma-separated")
    parser.add_argument(
        "--no-deterministic",
        dest="deterministic",
        action="store_false",
        help="params.yaml's train.deterministic: false (halving's scores may then differ a "
        "little from the full grid's)",
    )
    parser.add_argument(
        "--seeds",
        default="42",
        help="train.seed values, comma-separated: the first runs everything, each further one "
        "only the full grid and halving one by one, to see how often halving finds its best",
    )
    parser.add_argument("--out", default="tune_grid", help="result file name, without .json")
    args = parser.parse_args()

    from tasks.config import load_params, with_overrides
    from tasks.runtime import configure, import_tensorflow

    configure()
    import_tensorflow()
    base = base_params(
        args.epochs,
        args.workers,
        not args.early_stopping,
        deterministic=args.deterministic,
        grid=args.grid,
    )
    splits = processed_splits(args.data, args.rows)
    warm_prefect()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    base = with_overrides(base, {"train.seed": seeds[0]})
    runs = {"sequential": timed(with_overrides(base, {"tune.runner": "sequential"}), splits[:2])}
    for runner in [runner for runner in args.runners.split(",") if runner]:
        runs[runner] = timed(with_overrides(base, {"tune.runner": runner}), splits[:2])
    halving = {"tune.runner": "sequential", "tune.pruning": "halving"}
    runs["halving"] = timed(with_overrides(base, halving), splits[:2])
    other_seeds = {}
    for seed in seeds[1:]:
        seeded = with_overrides(base, {"train.seed": seed, "tune.runner": "sequential"})
        full, halved = timed(seeded, splits[:2]), timed(with_overrides(seeded, halving), splits[:2])
        other_seeds[seed] = {"sequential": full, "halving": halved}
    summary = summarize(args, runs, splits)
    summary["seeds"] = {
        seed: {
            "halving_same_best": pair["halving"]["best_point"] == pair["sequential"]["best_point"],
            "halving_pick_in_full_grid": full_grid_rank(
                pair["halving"]["best_point"], pair["sequential"]
            ),
            "halving_epoch_ratio": round(
                pair["sequential"]["epochs_trained"] / pair["halving"]["epochs_trained"], 2
            ),
            # the seed moves the full grid's own pick when its top points are this close
            "full_grid_top_two": top_two(pair["sequential"]),
        }
        for seed, pair in {seeds[0]: runs, **other_seeds}.items()
    }
    summary["other_seed_runs"] = other_seeds
    final = with_overrides(
        load_params(ROOT / "params.yaml"), {"train.deterministic": args.deterministic}
    )
    summary["picks_on_test"] = picks_on_test(final, {seeds[0]: runs, **other_seeds}, splits)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    curves = {
        f"seed {seed} {name}": run.pop("curves")
        for seed, pairs in {seeds[0]: runs, **other_seeds}.items()
        for name, run in pairs.items()
    }
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from projects import measured_at

    summary["commit"] = measured_at()
    (out / f"{args.out}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / f"{args.out}_curves.json").write_text(json.dumps(curves) + "\n")
    for name, result in runs.items():
        print(
            f"{name:>10}: {result['seconds']:7.1f} s, {result['epochs_trained']:3d} epochs, "
            f"best {result['best_point']} = {result['best_score']:.4f} "
            f"(val_loss {result['best_val_loss']:.4f})"
        )
    for seed, result in summary["seeds"].items():
        print(
            f"seed {seed}: halving's pick ranks {result['halving_pick_in_full_grid']['rank']} "
            f"in the full grid, {result['halving_epoch_ratio']}x fewer epochs"
        )
    test = summary["picks_on_test"]
    print(
        f"parallel speed-up with {args.workers} workers {summary['speedup']} (target >= 1.6); "
        f"halving: {summary['halving_epoch_ratio']}x fewer epochs, "
        f"{summary['halving_time_ratio']}x less time (target >= 2); test accuracy over "
        f"{len(seeds)} seeds: halving's pick {test['halving_pick']}, the full grid's best "
        f"{test['full_grid_best']}, within its spread: {test['halving_within_full_spread']}"
    )


if __name__ == "__main__":
    main()
