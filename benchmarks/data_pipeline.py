"""Benchmark the data steps against a bare pandas + scikit-learn script, in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/data_pipeline.py [--rows 1000000]

Generates a table (numeric and categorical columns, with nulls and duplicate rows), then
measures, each in a fresh child process: (a) our ingest -> validate -> clean -> split ->
standardize through the real `run(params)` adapters in a temporary project, and (b) a bare
script doing the same de-duplication, dropping, splitting, imputing, scaling and encoding
(and writing its outputs). Prints and writes `benchmarks/results/data_pipeline.json`: both
times, their ratio (target <= 1.5), our absolute time (target <= 60 s), our peak memory
(target <= 4 GiB), and our peak memory at a quarter, half and all of the rows (growth
should be linear).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NUMERIC, CATEGORICAL = 15, 5
TARGETS = {"ratio": 1.5, "seconds": 60.0, "peak_gib": 4.0}


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    """rows x 20 features + label: floats and ints, categories, 2% nulls, 1% duplicate rows."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(NUMERIC):
        values = rng.normal(i, 1 + i, rows)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i}"] = values
    for i in range(CATEGORICAL):
        values = rng.choice(np.array([f"c{i}_{k}" for k in range(8)], dtype=object), rows)
        values[rng.random(rows) < 0.02] = None
        data[f"cat_{i}"] = pd.array(values, dtype="str")
    data["label"] = rng.integers(0, 5, rows)
    frame = pd.DataFrame(data)
    pairs = rng.choice(rows, 2 * (rows // 100), replace=False).reshape(2, -1)
    frame.iloc[pairs[0]] = frame.iloc[pairs[1]].to_numpy()  # 1% of rows are exact duplicates
    return frame


def ours(source: str, workdir: str) -> None:
    """(a) The pipeline's own adapters, in a temporary project."""
    import os

    from tasks import clean, ingest, split, standardize, validate
    from tasks.config import parse_params
    from tasks.runtime import configure

    os.chdir(workdir)  # a throw-away project: data/, reports/, expectations/ land here
    configure()
    params = parse_params(
        {
            "ingest": {"source": "parquet", "path": source},
            "validate": {"labels": None, "value_range": None, "max_null_fraction": 0.05},
            "clean": {"missing": "mean", "drop_duplicates": True},
            "standardize": {"scaler": "standard", "categorical": "onehot"},
        }
    )
    start = time.perf_counter()
    for step in (ingest, validate, clean, split, standardize):
        began = time.perf_counter()
        step.run(params)  # type: ignore[attr-defined]
        print(f"  {step.__name__}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
    _report(time.perf_counter() - start)


def bare(source: str, workdir: str) -> None:
    """(b) The same cleaning, splitting, scaling and encoding in plain pandas + scikit-learn."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    start = time.perf_counter()
    frame = pd.read_parquet(source)
    frame = frame[frame["label"].notna()].drop_duplicates().reset_index(drop=True)
    frame.to_parquet(Path(workdir) / "clean.parquet")
    rest, test = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["label"])
    train, val = train_test_split(rest, test_size=0.125, random_state=42, stratify=rest["label"])
    numeric = [c for c in frame.columns if c.startswith("num_")]
    categorical = [c for c in frame.columns if c.startswith("cat_")]
    transformer = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ]
    ).fit(train.drop(columns="label"))
    for name, part in (("train", train), ("val", val), ("test", test)):
        part.to_parquet(Path(workdir) / f"{name}.parquet")
        x = transformer.transform(part.drop(columns="label")).astype("float32")
        np.savez(Path(workdir) / f"{name}.npz", x=x, y=part["label"].to_numpy())
    _report(time.perf_counter() - start)


def _report(seconds: float) -> None:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": round(seconds, 2), "peak_gib": round(peak_kib / 2**20, 3)}))


def measure(kind: str, source: Path) -> dict[str, float]:
    """Run one side in a fresh child process; return its time and peak memory."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as workdir:
        code = f"from benchmarks.data_pipeline import {kind}; {kind}({str(source)!r}, {workdir!r})"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    sys.stderr.write(done.stderr[-2000:] if kind == "ours" else "")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "data_pipeline.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as folder:
        full = generate(args.rows)
        sources = {}
        for share in (4, 2, 1):
            sources[args.rows // share] = Path(folder) / f"rows-{args.rows // share}.parquet"
            full.iloc[: args.rows // share].to_parquet(sources[args.rows // share], index=False)
        del full
        base = measure("bare", sources[args.rows])
        mine = measure("ours", sources[args.rows])
        growth = {
            str(n): measure("ours", path)["peak_gib"]
            for n, path in sources.items()
            if n < args.rows
        }
    growth[str(args.rows)] = mine["peak_gib"]
    ratio = mine["seconds"] / base["seconds"]
    result = {
        "rows": args.rows,
        "columns": NUMERIC + CATEGORICAL,
        "ours_seconds": mine["seconds"],
        "bare_seconds": base["seconds"],
        "ratio": round(ratio, 2),
        "ours_peak_gib": mine["peak_gib"],
        "bare_peak_gib": base["peak_gib"],
        "ours_peak_gib_by_rows": growth,
        "targets": TARGETS,
        "met": {
            "ratio": ratio <= TARGETS["ratio"],
            "seconds": mine["seconds"] <= TARGETS["seconds"],
            "peak_gib": mine["peak_gib"] <= TARGETS["peak_gib"],
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
